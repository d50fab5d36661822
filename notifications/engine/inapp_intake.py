"""In-app deliveries of the per-recipient intake path, recorded SENT at intake.

The set-based path (engine.fanout) renders in-app content once per situation; events it
leaves to the per-recipient path (a per-recipient data override, rate limits, digests, an
in-app template that names the recipient) still record their in-app deliveries here, inside
the intake transaction, one render per notification — the inbox row is the send, and it is
handed to the in-app bus after commit. No in-app delivery waits for a deliver_batch task;
one whose content cannot be rendered stays PENDING and the worker records its failure.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from common import sealing
from common.exceptions import ProviderTransientError, ValidationError
from notifications.enums import AuditAction, Channel, DeliveryStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

from .bulk import bulk_insert, bulk_update_rows


def inapp_record_at_intake(pairs: Sequence[tuple[NotificationDelivery, Notification]]) -> set[int]:
    """Render and record these PENDING in-app deliveries as SENT; returns the delivery ids recorded."""
    from .delivery import IN_APP_PROVIDER, inapp_message_id
    from .delivery_content import Templates, delivery_render, notification_context, notification_secrets
    from .payload import PayloadError, delivery_payload_prepare, inbox_fields, organization_channel_settings
    from .realtime import inapp_publish_after_commit
    from .status import notifications_status_refresh

    pairs = [(d, n) for d, n in pairs if n.recipient_id]
    if not pairs:
        return set()
    notifications = {n.pk: n for _, n in pairs}
    templates = Templates.load(notifications.values())
    channel_settings = organization_channel_settings({n.organization_id for n in notifications.values()})
    with_ack = templates.reads_ack_url or "ack_url" in repr(channel_settings) or any(
        "ack_url" in repr(n.channel_options) for n in notifications.values() if n.channel_options)
    now = timezone.now()
    sent: list[NotificationDelivery] = []
    rows: list[Notification] = []
    delivery_ids: dict[int, int] = {}
    audits: list[NotificationAuditLog] = []
    cache: dict[tuple, dict] = {}
    for delivery, n in pairs:
        data, secrets = notification_secrets(n)
        context = notification_context(n, variable_mapping=templates.mapping_for(n), data=data, with_ack_url=with_ack)
        try:
            content: dict[str, Any] = delivery_render(notification=n, channel=Channel.IN_APP, locale=delivery.locale or n.recipient_locale,
                                      templates=templates, context=context, cache=cache)
            delivery_payload_prepare(content, channel=Channel.IN_APP, organization_id=n.organization_id,
                                     event_options=(n.channel_options or {}).get(Channel.IN_APP),
                                     all_settings=channel_settings, context=context)
        except (ValidationError, PayloadError, ProviderTransientError):
            continue
        if secrets:
            content = sealing.scrub(content, secrets)
        delivery.status, delivery.provider, delivery.provider_message_id = DeliveryStatus.SENT, IN_APP_PROVIDER, inapp_message_id()
        delivery.rendered = {k: v for k, v in content.items() if k != "extra"}
        delivery.sent_at, delivery.attempts, delivery.updated_at = now, 1, now
        sent.append(delivery)
        n.title = content.get("title") or n.title
        n.body = content.get("body") or n.body
        n.body_html = content.get("body_html") or n.body_html
        n.action_url = content.get("action_url") or ""
        n.action_label = content.get("action_label") or n.action_label
        for name, value in inbox_fields(n, content.get("options") or {}).items():
            setattr(n, name, value)
        rows.append(n)
        delivery_ids[n.pk] = delivery.pk
        audits.append(NotificationAuditLog(
            organization_id=n.organization_id, notification_id=n.pk, delivery_id=delivery.pk, actor_label=IN_APP_PROVIDER,
            action=AuditAction.DELIVERY_SENT,
            details={"channel": Channel.IN_APP, "attempt": 1, "provider": IN_APP_PROVIDER,
                     "provider_message_id": delivery.provider_message_id},
        ))
    if not sent:
        return set()
    bulk_update_rows(NotificationDelivery, sent, ["status", "provider", "provider_message_id", "rendered", "sent_at",
                                                  "attempts", "updated_at"])
    bulk_update_rows(Notification, rows, ["title", "body", "body_html", "action_url", "action_label", "channel_options",
                                          "group_key", "inbox_expires_at", "image_url"])
    bulk_insert(NotificationAuditLog, audits)
    statuses = notifications_status_refresh(notification_ids=[n.pk for n in rows], now=now)
    for n in rows:
        n.status = statuses.get(n.pk, n.status)
    inapp_publish_after_commit(notifications=rows, delivery_ids=delivery_ids)
    return {d.pk for d in sent}
