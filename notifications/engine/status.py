"""A notification's status, derived from its deliveries' in one place: the delivery batch,
provider reports, retries, cancels, releases and subscriber changes all refresh it here."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from notifications.enums import (
    DELIVERY_FAILURE_STATUSES,
    DELIVERY_SUCCESS_STATUSES,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.engine.bulk import bulk_update_rows
from notifications.models import (
    Notification,
    NotificationDelivery,
)


_IN_FLIGHT = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})
_NOT_SENDABLE = frozenset({DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED})


def notification_status_derive(statuses: Iterable[str], *, current: str = NotificationStatus.PENDING) -> str:
    """A notification's status from its deliveries' statuses.

    Skipped and cancelled deliveries do not count. Anything still pending or being sent →
    PROCESSING; all sendable ones succeeded → DELIVERED; all failed → FAILED; some of each
    → PARTIALLY_DELIVERED; the rest held (quiet hours, rate limit) → HELD, or
    PARTIALLY_DELIVERED when others already went out.
    """
    statuses = list(statuses)
    sendable = [s for s in statuses if s not in _NOT_SENDABLE]
    if not sendable:
        if statuses and all(s == DeliveryStatus.CANCELLED for s in statuses):
            return NotificationStatus.CANCELLED
        return NotificationStatus.SKIPPED if statuses else current
    if any(s in _IN_FLIGHT for s in sendable):
        return NotificationStatus.PROCESSING
    succeeded = sum(1 for s in sendable if s in DELIVERY_SUCCESS_STATUSES)
    failed = sum(1 for s in sendable if s in DELIVERY_FAILURE_STATUSES)
    held = sum(1 for s in sendable if s == DeliveryStatus.HELD)
    digested = sum(1 for s in sendable if s == DeliveryStatus.DIGESTED)
    expired = sum(1 for s in sendable if s == DeliveryStatus.EXPIRED)
    if succeeded == len(sendable):
        return NotificationStatus.DELIVERED
    if held:
        return NotificationStatus.PARTIALLY_DELIVERED if succeeded else NotificationStatus.HELD
    if succeeded:
        return NotificationStatus.PARTIALLY_DELIVERED
    if digested and digested + failed + expired == len(sendable):
        return NotificationStatus.DIGESTED
    if expired == len(sendable):
        return NotificationStatus.EXPIRED
    return NotificationStatus.FAILED


def notifications_status_refresh(*, notification_ids: Iterable[int], now: datetime | None = None) -> dict[int, str]:
    """Re-derive and store the status of these notifications (call inside a transaction).

    The notification rows are locked first (in id order), so when two batches finish
    deliveries of the same notification, the later one derives from both outcomes.
    """
    ids = sorted(set(notification_ids))
    if not ids:
        return {}
    now = now or timezone.now()
    locked = {
        n.pk: n
        for n in Notification.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .only("pk", "status", "channels_delivered", "processed_at", "completed_at")
    }
    by_notification: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for notification_id, channel, status in NotificationDelivery.objects.filter(notification_id__in=ids).values_list(
        "notification_id", "channel", "status"
    ):
        by_notification[notification_id].append((channel, status))
    changed: list[Notification] = []
    result: dict[int, str] = {}
    for pk, notification in locked.items():
        rows = by_notification.get(pk, [])
        status = notification_status_derive([s for _, s in rows], current=notification.status)
        delivered = sorted({c for c, s in rows if s in DELIVERY_SUCCESS_STATUSES})
        result[pk] = status
        final = status not in (NotificationStatus.PROCESSING, NotificationStatus.PENDING, NotificationStatus.HELD)
        completed_at = notification.completed_at or (now if final else None)
        if (status, delivered, completed_at) != (notification.status, notification.channels_delivered, notification.completed_at):
            notification.status = status
            notification.channels_delivered = delivered
            notification.completed_at = completed_at
            notification.processed_at = notification.processed_at or now
            notification.updated_at = now
            changed.append(notification)
    bulk_update_rows(Notification, changed, ["status", "channels_delivered", "completed_at", "processed_at", "updated_at"])
    return result
