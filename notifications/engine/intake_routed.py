"""The per-recipient intake path: one routing decision and one model instance per recipient.

engine.intake takes an event in set-based (engine.fanout) whenever it can; this path is for
what needs a decision per recipient: a per-recipient data override, per-user rate limits,
digest preferences, an in-app template naming the recipient, databases other than
PostgreSQL. Rows are still written with COPY (engine.bulk) and a fixed number of queries.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus
from notifications.models import EventType, Notification, NotificationAuditLog, NotificationDelivery

from .audit import AuditActor
from .bulk import bulk_insert
from .intake_input import RecipientOverride
from .routing import Recipient, RecipientRoute, RoutingContext, route_recipients

# Events that may start an escalation chain or stop one (engine.escalation); others skip the hook.
ESCALATION_CRITICALITIES = ("HIGH", "CRITICAL")
RESOLVING_EVENT_TYPES = ("incident.resolved",)


def _result_recipient_id(n: Notification | Mapping[str, Any]) -> str | None:
    get = n.get if isinstance(n, Mapping) else lambda k: getattr(n, k)
    rid = get("recipient_id")
    return str(rid) if rid else None


def _notification_status(route: RecipientRoute, *, scheduled: bool) -> str:
    if route.any_pending:
        return NotificationStatus.SCHEDULED if scheduled else NotificationStatus.PENDING
    if route.any_held:
        return NotificationStatus.HELD
    return NotificationStatus.SKIPPED


def _with_override(
    common: Mapping[str, Any], override: RecipientOverride, *, resource: Mapping[str, Any], action_url: str | None,
    default_title: str,
) -> dict[str, Any]:
    """The notification fields of one recipient whose data or resource differ from the event's."""
    payload = {**common["data"], **override.data}
    own_resource = {**resource, **override.resource}
    url = action_url or payload.get("action_url") or payload.get("actionUrl") or ""
    return {
        **common,
        "data": payload,
        "resource_type": str(own_resource.get("type") or "")[:50],
        "resource_id": str(own_resource.get("id") or "")[:100],
        "resource_name": str(own_resource.get("name") or "")[:255],
        "title": str(payload.get("title") or own_resource.get("name") or default_title)[:255],
        "body": str(payload.get("body") or payload.get("message") or ""),
        "action_url": str(url)[:500],
    }


def emit_routed(
    *, ctx: RoutingContext, recipients: list[Recipient], overrides: list[RecipientOverride | None],
    common: Mapping[str, Any], resource: Mapping[str, Any], action_url: str | None, event_type: EventType,
    audit_actor: AuditActor, source: str,
) -> list[tuple[int, str | None, str]]:
    """The per-recipient path: overrides, scheduled, escalating, digest or rate-limited events."""
    organization, criticality, now = common["organization"], ctx.criticality, ctx.now
    event_id, scheduled_at, scheduled = common["event_id"], ctx.send_at, ctx.scheduled
    routes = route_recipients(ctx=ctx, recipients=recipients)
    notifications = [
        Notification(
            **(common if override is None else _with_override(common, override, resource=resource, action_url=action_url,
                                                              default_title=event_type.name)),
            recipient_id=route.recipient.user_id,
            recipient_email=route.recipient.email,
            recipient_phone=route.recipient.phone,
            recipient_locale=route.recipient.locale,
            recipient_timezone=route.recipient.timezone,
            status=_notification_status(route, scheduled=scheduled),
            trace=route.trace(ctx),
        )
        for route, override in zip(routes, overrides, strict=True)
    ]
    bulk_insert(Notification, notifications)

    deliveries: list[NotificationDelivery] = []
    for n, route in zip(notifications, routes):
        for ch in route.channels:
            if ch.status is None:
                continue
            next_at = ch.hold_until if ch.status == DeliveryStatus.HELD else (scheduled_at if scheduled else None)
            deliveries.append(
                NotificationDelivery(
                    notification=n, organization=organization, channel=ch.channel, status=ch.status,
                    recipient_address=ch.address[:320], locale=route.recipient.locale,
                    next_retry_at=next_at,
                    skip_reason=(ch.detail if ch.status == DeliveryStatus.SKIPPED else ch.reason)[:255]
                    if ch.status != DeliveryStatus.PENDING else "",
                )
            )
    if not scheduled:
        from .digest import digest_items_for_routes

        digested_notifications = digest_items_for_routes(
            organization_id=organization.pk, notifications=notifications, routes=routes, deliveries=deliveries,
            criticality=criticality, now=now,
        )
    bulk_insert(NotificationDelivery, deliveries)

    audit: list[NotificationAuditLog] = []
    for n, route in zip(notifications, routes):
        summary = {c.channel: c.trace()["decision"] for c in route.channels}
        base = {"organization": organization, "notification": n, "actor_type": audit_actor.type,
                "actor_id": audit_actor.id[:100], "actor_label": audit_actor.label[:200], "user_id": n.recipient_id}
        audit.append(NotificationAuditLog(
            **base, action=AuditAction.NOTIFICATION_CREATED,
            details={"event_id": str(event_id), "event_type": event_type.key, "source": source, "status": n.status,
                     "channels": summary, "correlation_id": n.correlation_id},
        ))
        if n.status == NotificationStatus.HELD:
            audit.append(NotificationAuditLog(
                **base, action=AuditAction.NOTIFICATION_HELD,
                details={c.channel: {"reason": c.reason, "until": c.hold_until.isoformat() if c.hold_until else None}
                         for c in route.channels if c.status == DeliveryStatus.HELD},
            ))
    bulk_insert(NotificationAuditLog, audit)

    if not scheduled and digested_notifications:
        Notification.objects.filter(pk__in=digested_notifications).update(status=NotificationStatus.DIGESTED)
    if criticality in ESCALATION_CRITICALITIES or event_type.key in RESOLVING_EVENT_TYPES:
        from .escalation import escalation_after_intake

        escalation_after_intake(notifications=notifications, event_type=event_type.key)

    if not scheduled:
        from .inapp_intake import inapp_record_at_intake

        by_pk = {n.pk: n for n in notifications}
        recorded = inapp_record_at_intake([(d, by_pk[d.notification_id]) for d in deliveries
                                           if d.channel == Channel.IN_APP and d.status == DeliveryStatus.PENDING])
        pending = [d.pk for d in deliveries if d.status == DeliveryStatus.PENDING and d.pk not in recorded]
        if pending:
            from .delivery import deliveries_enqueue

            deliveries_enqueue(delivery_ids=pending)
    from .webhooks_outgoing import intake_events, webhooks_enqueue

    webhooks_enqueue(events=intake_events((n.pk, n.status) for n in notifications),
                     organization_ids=[organization.pk])
    return [(n.pk, _result_recipient_id(n), n.status) for n in notifications]
