"""Provider reports applied to the notification platform: delivery statuses (webhooks and
polling), the suppressions they imply, and acknowledgements by phone.

The provider layer normalizes what a provider says into `DeliveryEvent`s and hands them to
`providers.hooks`; the notifications app connects the functions below there in `ready()`.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from common.channels import Channel
from common.exceptions import PermissionDenied, ProviderPermanentError, ProviderTransientError
from notifications.engine.ack import AckSource, notification_acknowledge
from notifications.engine.status import notifications_status_refresh
from notifications.enums import (
    DELIVERY_SUCCESS_STATUSES,
    AuditAction,
    AuditActorType,
    AuditOutcome,
    DeliveryStatus,
)
from notifications.models import NotificationAuditLog, NotificationDelivery
from providers.base import BaseProvider, DeliveryEvent, DeliveryEventType
from providers.models import SuppressedAddress, SuppressionReason
from providers.registry import registry
from providers.selectors import ProviderBinding, binding_for_record, deliveries_sent_by_q
from providers.services import provider_instantiate

logger = logging.getLogger(__name__)

_EVENT_STATUS = {
    DeliveryEventType.DELIVERED: DeliveryStatus.DELIVERED,
    DeliveryEventType.OPENED: DeliveryStatus.OPENED,
    DeliveryEventType.CLICKED: DeliveryStatus.CLICKED,
    DeliveryEventType.BOUNCED: DeliveryStatus.BOUNCED,
    DeliveryEventType.COMPLAINED: DeliveryStatus.COMPLAINED,
    DeliveryEventType.FAILED: DeliveryStatus.FAILED,
    DeliveryEventType.UNSUBSCRIBED: DeliveryStatus.UNSUBSCRIBED,
}
# Progress only moves forward: a late "delivered" must not undo "opened".
_PROGRESS_RANK: dict[str, int] = {DeliveryStatus.PENDING: 0, DeliveryStatus.SENDING: 1, DeliveryStatus.SENT: 2, DeliveryStatus.DELIVERED: 3,
                  DeliveryStatus.OPENED: 4, DeliveryStatus.CLICKED: 5}
_EVENT_AUDIT = {
    DeliveryEventType.DELIVERED: AuditAction.DELIVERY_DELIVERED,
    DeliveryEventType.OPENED: AuditAction.DELIVERY_OPENED,
    DeliveryEventType.CLICKED: AuditAction.DELIVERY_CLICKED,
    DeliveryEventType.BOUNCED: AuditAction.DELIVERY_BOUNCED,
    DeliveryEventType.COMPLAINED: AuditAction.DELIVERY_BOUNCED,
    DeliveryEventType.FAILED: AuditAction.DELIVERY_FAILED,
    DeliveryEventType.UNSUBSCRIBED: AuditAction.DELIVERY_FAILED,
}


def _apply_event(delivery: NotificationDelivery, event: DeliveryEvent) -> bool:
    """Mutate `delivery` for one event; True when something changed."""
    changed = False
    when = event.timestamp or timezone.now()
    if event.cost_amount is not None and delivery.cost_amount is None:
        delivery.cost_amount, delivery.cost_currency = event.cost_amount, event.cost_currency[:3]
        changed = True
    target = _EVENT_STATUS.get(event.event)
    if target is None:
        return changed
    stamp = {DeliveryStatus.DELIVERED: "delivered_at", DeliveryStatus.OPENED: "opened_at", DeliveryStatus.CLICKED: "clicked_at"}.get(target, "failed_at")
    if getattr(delivery, stamp) is None:
        setattr(delivery, stamp, when)
        changed = True
    if target in _PROGRESS_RANK:
        if target in (DeliveryStatus.OPENED, DeliveryStatus.CLICKED) and delivery.delivered_at is None:
            delivery.delivered_at = when
        current = _PROGRESS_RANK.get(delivery.status)
        if current is not None and _PROGRESS_RANK[target] > current:
            delivery.status = target
            changed = True
    else:
        # A complaint or unsubscribe may follow a delivery; a bounce or failure replaces it.
        if delivery.status != target:
            delivery.status = target
            delivery.error = event.reason or f"provider reported {event.event.lower()}"
            changed = True
    return changed


REDIAL_REASONS = ("call no-answer", "call busy")


def voice_redial_schedule(delivery: NotificationDelivery, event: DeliveryEvent) -> bool:
    """A call nobody answered (or busy) is placed again after `retry_delay`, up to `max_retries`
    times (seed 004 §4.8): the delivery goes back to PENDING and the retry sweep sends it."""
    if delivery.channel != Channel.VOICE or event.event != DeliveryEventType.FAILED or event.reason not in REDIAL_REASONS:
        return False
    plan = (delivery.rendered or {}).get("voice_retry") or {}
    max_retries = int(plan.get("max_retries") or 0)
    if delivery.attempts > max_retries:  # attempts counts the calls placed so far
        return False
    delay = int(plan.get("retry_delay") or 120)
    now = timezone.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.failed_at = None
    delivery.next_retry_at = now + timedelta(seconds=delay)
    delivery.max_attempts = max(delivery.max_attempts, delivery.attempts + 1)
    delivery.error = f"{event.reason}: calling again in {delay} s (retry {delivery.attempts} of {max_retries})"
    delivery.provider_message_id = ""  # the next call has its own sid; a late report of this one changes nothing
    return True


def delivery_status_apply(*, provider_code: str, events: Iterable[DeliveryEvent], provider_id: int | None,
                          unbound_codes: Iterable[str] = ()) -> int:
    """Apply normalized provider events to the deliveries **the reporting provider sent**.

    A provider's report may only touch its own deliveries: they are matched on (provider
    record, provider message id) — `provider_id` is the record whose credentials
    authenticated the report — never on the message id alone. `unbound_codes` also admits
    deliveries sent without a record (the platform's environment configuration) by those
    provider codes; only a caller that verified the platform's own credentials passes it.

    Unknown ids are ignored. Hard bounces, complaints and unsubscribes suppress the
    delivery's own address (never one named in the event): a hard bounce reported by a
    platform provider suppresses it for every organization, one reported by an
    organization's provider for that organization only; complaints and unsubscribes
    concern the sending organization. Writes one audit row per status change and refreshes
    the parent notifications' status. Query count does not depend on the number of events.
    Returns the number of deliveries changed."""
    events = [e for e in events if e.provider_message_id]
    unbound_codes = tuple(unbound_codes)
    scope = deliveries_sent_by_q(provider_ids=[provider_id] if provider_id is not None else [], unbound_codes=unbound_codes)
    if not events or (provider_id is None and not unbound_codes):
        return 0
    events.sort(key=lambda e: e.timestamp or timezone.now())
    with transaction.atomic():
        deliveries = {
            d.provider_message_id: d
            for d in NotificationDelivery.objects.select_for_update(of=("self",)).select_related("provider_record")
            .filter(scope, provider_message_id__in={e.provider_message_id for e in events})
            .order_by("pk")
        }
        changed: dict[int, NotificationDelivery] = {}
        redials: list[int] = []
        audits: list[NotificationAuditLog] = []
        suppressions: list[SuppressedAddress] = []
        for event in events:
            delivery = deliveries.get(event.provider_message_id)
            if delivery is None:
                continue
            before = delivery.status
            if _apply_event(delivery, event):
                changed[delivery.pk] = delivery
                if voice_redial_schedule(delivery, event):
                    redials.append(delivery.pk)
                    audits.append(NotificationAuditLog(
                        organization_id=delivery.organization_id, action=AuditAction.DELIVERY_RETRY_SCHEDULED,
                        outcome=AuditOutcome.FAILURE, actor_type=AuditActorType.PROVIDER, actor_label=provider_code,
                        delivery_id=delivery.pk, notification_id=delivery.notification_id,
                        details={"event": event.event, "reason": event.reason, "next_retry_at": delivery.next_retry_at.isoformat() if delivery.next_retry_at else None},
                        error_message=event.reason[:500],
                    ))
                    continue
                if delivery.status != before and event.event in _EVENT_AUDIT:
                    audits.append(NotificationAuditLog(
                        organization_id=delivery.organization_id, action=_EVENT_AUDIT[event.event],
                        outcome=AuditOutcome.SUCCESS if delivery.status in DELIVERY_SUCCESS_STATUSES else AuditOutcome.FAILURE,
                        actor_type=AuditActorType.PROVIDER, actor_label=provider_code, delivery_id=delivery.pk,
                        notification_id=delivery.notification_id,
                        details={"event": event.event, "from": before, "to": delivery.status, "provider_message_id": event.provider_message_id},
                        error_message=event.reason[:500],
                    ))
            reason = None
            if event.event == DeliveryEventType.BOUNCED and event.hard:
                reason = SuppressionReason.HARD_BOUNCE
            elif event.event == DeliveryEventType.COMPLAINED:
                reason = SuppressionReason.COMPLAINT
            elif event.event == DeliveryEventType.UNSUBSCRIBED:
                reason = SuppressionReason.UNSUBSCRIBE
            address = delivery.recipient_address
            if reason and address:
                suppressions.append(SuppressedAddress(
                    organization_id=_suppression_scope(delivery, reason), address=address.strip().lower(), channel=delivery.channel,
                    reason=reason, provider_code=provider_code, detail=event.reason[:500],
                ))
        if changed:
            now = timezone.now()
            for d in changed.values():
                d.updated_at = now
            NotificationDelivery.objects.bulk_update(
                list(changed.values()),
                ["status", "delivered_at", "opened_at", "clicked_at", "failed_at", "error", "cost_amount", "cost_currency", "updated_at",
                 "next_retry_at", "max_attempts", "provider_message_id"],
            )
            notifications_status_refresh(notification_ids={d.notification_id for d in changed.values()})
        if audits:
            NotificationAuditLog.objects.bulk_create(audits)
        if suppressions:
            SuppressedAddress.objects.bulk_create(suppressions, ignore_conflicts=True)
    if redials:
        from providers.journal import journal_forget

        journal_forget(keys=[str(pk) for pk in redials])  # the next call is placed on purpose
    return len(changed)


def _suppression_scope(delivery: NotificationDelivery, reason: str) -> int | None:
    """Organization of a suppression, None for everyone. A dead mailbox is dead for every
    sender, but only the platform's own provider (a platform record, or the environment's)
    may say so for everyone: an organization's provider speaks for its organization only.
    Complaints and unsubscribes always concern the sending organization."""
    platform_sent = delivery.provider_record is None or delivery.provider_record.organization_id is None
    if reason == SuppressionReason.HARD_BOUNCE and platform_sent:
        return None
    return delivery.organization_id


def delivery_statuses_poll(*, max_age_hours: int = 48, limit: int = 500) -> int:
    """Ask providers that support polling about deliveries still SENT (no webhook came)."""
    since = timezone.now() - timedelta(hours=max_age_hours)
    pollable = [cls.code for cls in registry.all() if cls.supports_status_polling]
    rows = list(
        NotificationDelivery.objects.filter(status=DeliveryStatus.SENT, sent_at__gte=since, provider__in=pollable)
        .exclude(provider_message_id="").select_related("provider_record").order_by("sent_at")[:limit]
    )
    events_by_sender: dict[tuple[str, int | None], list[DeliveryEvent]] = {}
    instances: dict[tuple, BaseProvider | None] = {}
    for delivery in rows:
        key = (delivery.provider, delivery.provider_record_id)
        if key not in instances:
            binding = binding_for_record(delivery.provider_record) if delivery.provider_record else ProviderBinding(
                key=f"env-{delivery.provider}", code=delivery.provider, channel=delivery.channel)
            try:
                instances[key] = provider_instantiate(binding)
            except ImproperlyConfigured as exc:
                # One record's bad configuration (undecryptable, refused endpoint) skips its rows only.
                logger.warning("status poll: provider %s unusable: %s", delivery.provider_record_id, exc.__class__.__name__)
                instances[key] = None
        provider = instances[key]
        if provider is None:
            continue
        try:
            event = provider.get_delivery_status(delivery.provider_message_id)
        except (ProviderTransientError, ProviderPermanentError) as exc:
            logger.warning("status poll of delivery %s failed: %s", delivery.pk, exc.code)
            continue
        if event is not None:
            # The answer of one provider account applies to what that account sent, nothing else.
            events_by_sender.setdefault(key, []).append(event)
    return sum(delivery_status_apply(provider_code=code, events=events, provider_id=record_id, unbound_codes=() if record_id else (code,))
               for (code, record_id), events in events_by_sender.items())


def deliveries_unconfirmed_note(*, max_age_hours: int = 48, limit: int = 500) -> int:
    """Deliveries still SENT `max_age_hours` after sending get the reason in their trace
    (`provider_response.status_note`): no report came, or the provider gives none. Polling
    stops at that age, so nothing else would ever explain them. Returns how many were noted."""
    before = timezone.now() - timedelta(hours=max_age_hours)
    rows = list(NotificationDelivery.objects.filter(status=DeliveryStatus.SENT, sent_at__lt=before)
                .exclude(provider_response__has_key="status_note").order_by("sent_at").only("pk", "provider", "provider_response")[:limit])
    for row in rows:
        cls = registry.get(row.provider) if row.provider and row.provider in registry else None
        if cls is None or not (cls.supports_webhooks or cls.supports_status_polling):
            note = f"{row.provider or 'The provider'} reports no delivery status: SENT (handed over) is the last one known."
        else:
            how = " and ".join(w for w, ok in (("by webhook", cls.supports_webhooks), ("to polling", cls.supports_status_polling)) if ok)
            note = (f"No delivery report from {row.provider} within {max_age_hours} h (it answers {how}); "
                    "SENT (handed over) is the last status known.")
        row.provider_response = {**(row.provider_response or {}), "status_note": note}
    NotificationDelivery.objects.bulk_update(rows, ["provider_response"])
    return len(rows)


def voice_acknowledge(*, call_sid: str, digits: str, provider_ids: Iterable[int] = (), unbound_codes: Iterable[str] = ()) -> bool:
    """The callee pressed a key during the Gather: the acknowledgment digit acknowledges the
    notification and its escalation copies (which stops the chain). Only a call placed by
    the provider that authenticated the callback counts. True when it did."""
    if not call_sid:
        return False
    delivery = NotificationDelivery.objects.filter(
        deliveries_sent_by_q(provider_ids=provider_ids, unbound_codes=unbound_codes), provider_message_id=call_sid, channel=Channel.VOICE,
    ).only("pk", "notification_id", "rendered").first()
    if delivery is None:
        return False
    rendered = delivery.rendered or {}
    expected = str((rendered.get("extra") or {}).get("acknowledgment_digit") or rendered.get("acknowledgment_digit") or "1")[:1]
    if (digits or "")[:1] != expected:
        return False
    try:
        notification_acknowledge(notification_id=delivery.notification_id, source=AckSource.VOICE, detail=f"call {call_sid}")
    except PermissionDenied:
        return False  # the callee left the organization since the call was placed
    return True
