"""The in-app bus and the live inbox (seed 004 §2.4).

An IN_APP delivery is recorded SENT and, after commit, published to the RabbitMQ exchange
``notification.inapp.deliver`` — one message per delivery batch, whatever its size. The web
tier consumes the durable queue bound to it and pushes each item to every open WebSocket/SSE
connection of its recipient through the channel layer group ``inbox.user.<id>``; the client's
``ack`` frame makes the delivery DELIVERED, reading it in the inbox makes it OPENED.

Without a broker server (the embedded run) the same exchange and queue live on kombu's
filesystem transport, so the worker's publish reaches the web process all the same.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.enums import AuditAction, AuditActorType, Channel, DeliveryStatus
from notifications.models import NotificationAuditLog, NotificationDelivery

from .live import redis_client, user_group  # noqa: F401  (the web tier's names for them)

logger = logging.getLogger(__name__)

ROUTING_KEY = "deliver"
MESSAGE_VERSION = 1
ACK_MAX_PER_USER = 500  # ids acknowledged per user in one flush; the rest waits for the next ack

_bus_connection = None


# --- the bus -----------------------------------------------------------------------------------


def bus_transport_options(*, consumer: bool = False) -> dict[str, Any]:
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    if consumer and settings.CELERY_BROKER_URL.startswith("filesystem"):
        options["polling_interval"] = 0.1  # the embedded transport polls its folder
    return options


def bus_connection(*, consumer: bool = False):
    """A kombu connection to the in-app bus (the Celery broker: RabbitMQ, or the embedded one)."""
    from kombu import Connection

    return Connection(settings.CELERY_BROKER_URL, transport_options=bus_transport_options(consumer=consumer),
                      connect_timeout=5)


def bus_exchange():
    from kombu import Exchange

    return Exchange(settings.INAPP_EXCHANGE, type="direct", durable=True)


def bus_queue():
    """The durable queue the web tier consumes (web processes compete for its messages: whichever
    takes one reaches every process through the shared channel layer)."""
    from kombu import Queue

    return Queue(settings.INAPP_QUEUE, exchange=bus_exchange(), routing_key=ROUTING_KEY, durable=True)


# --- publish (worker side) -------------------------------------------------------------------


def inapp_items(*, notifications: Iterable, delivery_ids: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """One bus item per inbox notification: the inbox item (as the REST inbox shows it) and the
    recipient's unread count, computed for all recipients in one query."""
    from notifications.engine.inbox import inbox_unread_counts
    from notifications.serializers_inbox import InboxNotificationSerializer

    notifications = [n for n in notifications if n.recipient_id]
    if not notifications:
        return []
    counts = inbox_unread_counts(user_ids={n.recipient_id for n in notifications})
    delivery_ids = delivery_ids or {}
    return [
        {
            "user_id": n.recipient_id,
            "delivery_id": delivery_ids.get(n.pk),
            "notification": InboxNotificationSerializer(n).data,
            "unread_count": counts.get(n.recipient_id, 0),
        }
        for n in notifications
    ]


def inapp_publish(*, items: list[dict[str, Any]]) -> int:
    """Publish a batch of in-app items as ONE message on the exchange (publisher confirms on
    RabbitMQ: it returns once the broker has it). Raises when the bus is unreachable."""
    if not items:
        return 0
    global _bus_connection
    from kombu.pools import producers

    if _bus_connection is None:
        _bus_connection = bus_connection()
    body = {"v": MESSAGE_VERSION, "items": items}
    with producers[_bus_connection].acquire(block=True, timeout=10) as producer:
        producer.publish(
            body, exchange=bus_exchange(), routing_key=ROUTING_KEY, declare=[bus_queue()], serializer="json",
            delivery_mode=2, retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
    return len(items)


def inapp_publish_after_commit(*, notifications: list, delivery_ids: dict[int, int]) -> None:
    """Publish the batch once its SENT rows are committed. A bus that cannot take it gives the
    deliveries back (PENDING, due now) so the retry path publishes them again."""

    def _publish() -> None:
        try:
            inapp_publish(items=inapp_items(notifications=notifications, delivery_ids=delivery_ids))
        except Exception as exc:  # noqa: BLE001 - the retry path owns the recovery
            logger.warning("in-app bus unreachable; %d deliveries go back to retry", len(delivery_ids), exc_info=True)
            now = timezone.now()
            NotificationDelivery.objects.filter(pk__in=list(delivery_ids.values()), status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.PENDING, sent_at=None, next_retry_at=now,
                error=f"In-app bus unreachable: {exc.__class__.__name__}"[:500], updated_at=now,
            )

    transaction.on_commit(_publish)


# --- acknowledgements (web tier side) --------------------------------------------------------


def inapp_mark_delivered(*, user_id: int, notification_ids: Iterable[int]) -> list[int]:
    """The client received these inbox items: their IN_APP deliveries SENT → DELIVERED.
    Only the recipient's own; anything else (unknown, someone else's, already further) is ignored.
    Returns the notification ids that changed."""
    return inapp_mark_delivered_many(acks={user_id: notification_ids}).get(user_id, [])


def inapp_mark_delivered_many(*, acks: Mapping[int, Iterable[int]],
                              max_per_user: int = ACK_MAX_PER_USER) -> dict[int, list[int]]:
    """Acknowledgements of many users at once (a web process flushes what its sockets received in
    one transaction): ``{user id: notification ids}``. Each user's ids count only for that user's
    own IN_APP deliveries (at most ``max_per_user`` per call); returns ``{user id: changed ids}``."""
    wanted: dict[int, set[int]] = {}
    for user_id, ids in acks.items():
        chosen = sorted({int(i) for i in ids})[:max_per_user]
        if chosen:
            wanted[int(user_id)] = set(chosen)
    if not wanted:
        return {}
    all_ids = set().union(*wanted.values())
    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(notification_id__in=sorted(all_ids), notification__recipient_id__in=sorted(wanted),
                    channel=Channel.IN_APP, status=DeliveryStatus.SENT)
            .values_list("pk", "notification_id", "organization_id", "notification__recipient_id")
        )
        rows = [r for r in candidates if r[1] in wanted.get(r[3], ())]
        if not rows:
            return {}
        NotificationDelivery.objects.filter(pk__in=[r[0] for r in rows]).update(
            status=DeliveryStatus.DELIVERED, delivered_at=now, updated_at=now
        )
        NotificationAuditLog.objects.bulk_create([
            NotificationAuditLog(organization_id=org_id, notification_id=nid, delivery_id=pk, user_id=uid,
                                 action=AuditAction.DELIVERY_DELIVERED, actor_type=AuditActorType.USER,
                                 actor_id=str(uid), details={"channel": Channel.IN_APP, "via": "websocket"})
            for pk, nid, org_id, uid in rows
        ])
    changed: dict[int, list[int]] = {}
    for _, nid, _, uid in rows:
        changed.setdefault(uid, []).append(nid)
    return changed
