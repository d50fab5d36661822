"""Retries, dead letters and channel fallback: what happens after a delivery failed.

The delivery engine (``notifications.engine.delivery``) records each attempt: a transient
failure puts the row back to PENDING with ``next_retry_at`` (5 min, 15 min, 1 h with jitter,
``delivery.retry_at``); a permanent one, or the last transient one, makes it FAILED. This
module is the other half, run from beat:

- ``deliveries_requeue_due`` queues the rows whose ``next_retry_at`` has come, in batches.
  It clears ``next_retry_at`` as it queues them, so the next beat run does not queue them
  again; a message lost on the way is the sweeper's business (PENDING, no retry time).
- ``deliveries_dead_letter`` ends rows that ran out of attempts: FAILED plus a
  ``DeadLetter`` holding the payload, the error history and the provider responses.
- ``deliveries_failed_follow_up`` visits every newly FAILED row once: it makes sure a dead
  letter exists and, when the organization configured a fallback chain for the channel,
  creates ONE delivery on the next channel, explaining why in the notification's trace.

"Once" is enforced by the data, not by hope: a DEAD_LETTERED audit row newer than the
failure marks a row as visited, and the (notification, channel, escalation level) unique
constraint of NotificationDelivery makes a second fallback on the same channel impossible.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from common import sealing
from common.exceptions import Conflict, NotFound, ValidationError
from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.routing import notification_address
from notifications.enums import (
    DELIVERY_SUCCESS_STATUSES,
    AuditAction,
    AuditActorType,
    AuditOutcome,
    Channel,
    DeadLetterStatus,
    DeliveryStatus,
)
from notifications.models import (
    ChannelConfiguration,
    DeadLetter,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
)
from providers.models import NotificationProvider

logger = logging.getLogger(__name__)

REQUEUE_BATCH = 500
# How far back the follow-up looks for failed rows; older ones were visited long ago.
FOLLOW_UP_WINDOW = timedelta(days=7)


# --- due retries -------------------------------------------------------------------------------


def deliveries_requeue_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Queue PENDING deliveries whose ``next_retry_at`` has passed (at most ``limit``).

    Rows claimed by a concurrent run are skipped (SKIP LOCKED), so two beat runs overlapping
    split the work instead of doubling it.
    """
    now = now or timezone.now()
    queued = 0
    while queued < limit:
        with transaction.atomic():
            ids = list(
                NotificationDelivery.objects.select_for_update(skip_locked=True)
                .filter(status=DeliveryStatus.PENDING, next_retry_at__lte=now)
                .filter(attempts__lt=F("max_attempts"))
                .order_by("next_retry_at", "pk")
                .values_list("pk", flat=True)[: min(REQUEUE_BATCH, limit - queued)]
            )
            if not ids:
                break
            NotificationDelivery.objects.filter(pk__in=ids).update(next_retry_at=None, updated_at=now)
            deliveries_enqueue(delivery_ids=ids)
        queued += len(ids)
    return queued


def deliveries_exhausted_dead_letter(*, now: datetime | None = None, limit: int = 1000) -> int:
    """PENDING rows due for another attempt they are not allowed: FAILED + dead letter."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_retry_at__lte=now, attempts__gte=F("max_attempts"))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            deliveries_dead_letter(delivery_ids=ids, reason="attempts exhausted", now=now)
    return len(ids)


# --- dead letters ----------------------------------------------------------------------------------


def _provider_responses(delivery: NotificationDelivery) -> list[Any]:
    responses: list[Any] = []
    for entry in delivery.error_history or []:
        if isinstance(entry, dict) and entry.get("provider_response") is not None:
            responses.append({"attempt": entry.get("attempt"), "provider": entry.get("provider"),
                              "response": entry["provider_response"]})
    if delivery.provider_response is not None:
        responses.append({"attempt": delivery.attempts, "provider": delivery.provider, "response": delivery.provider_response})
    return responses


def _payload(delivery: NotificationDelivery) -> dict[str, Any]:
    """Everything needed to understand (and replay) the message without the live rows."""
    n = delivery.notification
    return {
        "notification_id": n.pk,
        "delivery_id": delivery.pk,
        "event_id": str(n.event_id),
        "event_type": n.event_type,
        "category": n.category,
        "criticality": n.criticality,
        "channel": delivery.channel,
        "recipient_id": n.recipient_id,
        "recipient_address": delivery.recipient_address,
        "locale": delivery.locale or n.recipient_locale,
        "title": n.title,
        "body": n.body,
        "data": sealing.data_mask(n.data),  # a sealed link stays in the notification, never here
        "resource": {"type": n.resource_type, "id": n.resource_id, "name": n.resource_name},
        "rendered": delivery.rendered or {},
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
    }


def _dead_letters_write(*, deliveries: list[NotificationDelivery], reason_for: dict[int, str]) -> None:
    """Create the open dead letter of each delivery, or complete the one that already exists."""
    existing = {
        dl.delivery_id: dl
        for dl in DeadLetter.objects.filter(delivery_id__in=[d.pk for d in deliveries], status=DeadLetterStatus.OPEN)
    }
    to_create: list[DeadLetter] = []
    to_update: list[DeadLetter] = []
    for d in deliveries:
        payload, responses = _payload(d), _provider_responses(d)
        letter = existing.get(d.pk)
        if letter is None:
            to_create.append(DeadLetter(
                organization_id=d.organization_id, delivery_id=d.pk, channel=d.channel,
                reason=reason_for.get(d.pk) or d.error or "failed", payload=payload,
                error_history=d.error_history or [], provider_responses=responses,
            ))
        else:
            # Written in the middle of a batch by the delivery engine: add what it does not keep.
            letter.payload = {**payload, **(letter.payload or {})}
            letter.provider_responses = letter.provider_responses or responses
            letter.error_history = d.error_history or letter.error_history
            to_update.append(letter)
    if to_create:
        DeadLetter.objects.bulk_create(to_create, ignore_conflicts=True)
    if to_update:
        DeadLetter.objects.bulk_update(to_update, ["payload", "provider_responses", "error_history"])


def deliveries_dead_letter(*, delivery_ids: Iterable[int], reason: str, now: datetime | None = None) -> list[int]:
    """Mark deliveries FAILED and dead-letter them; then their fallback (call in a transaction).

    Only rows still PENDING or SENDING are touched: a row that meanwhile got sent stays sent.
    """
    now = now or timezone.now()
    deliveries = list(
        NotificationDelivery.objects.select_for_update(of=("self",))
        .select_related("notification", "notification__recipient")
        .filter(pk__in=list(delivery_ids), status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
        .order_by("pk")
    )
    if not deliveries:
        return []
    for d in deliveries:
        d.status = DeliveryStatus.FAILED
        d.failed_at = now
        d.next_retry_at = None
        d.claimed_at = None
        d.error = f"{reason} after {d.attempts} attempt(s)" + (f": {d.error}" if d.error else "")
        d.error_history = [*(d.error_history or []), {"at": now.isoformat(), "attempt": d.attempts, "error": reason,
                                                        "code": "exhausted", "transient": False}]
        d.updated_at = now
    NotificationDelivery.objects.bulk_update(
        deliveries, ["status", "failed_at", "next_retry_at", "claimed_at", "error", "error_history", "updated_at"]
    )
    _follow_up(deliveries=deliveries, now=now, reason_for={d.pk: d.error for d in deliveries})
    return [d.pk for d in deliveries]


# --- follow-up of failed rows: dead letter + channel fallback ----------------------------------------


@dataclass
class FollowUpReport:
    visited: int = 0
    fallbacks: list[int] = field(default_factory=list)


def deliveries_failed_follow_up(*, now: datetime | None = None, limit: int = 500) -> FollowUpReport:
    """Visit FAILED rows not visited since they failed: dead letter + fallback, once each."""
    now = now or timezone.now()
    visited_marker = NotificationAuditLog.objects.filter(
        delivery_id=OuterRef("pk"), action=AuditAction.DEAD_LETTERED, created_at__gte=OuterRef("failed_at")
    )
    report = FollowUpReport()
    with transaction.atomic():
        deliveries = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("notification", "notification__recipient")
            .filter(status=DeliveryStatus.FAILED, failed_at__gte=now - FOLLOW_UP_WINDOW)
            .filter(~Exists(visited_marker))
            .order_by("failed_at", "pk")[:limit]
        )
        if deliveries:
            report.fallbacks = _follow_up(deliveries=deliveries, now=now, reason_for={})
            report.visited = len(deliveries)
    return report


def _follow_up(*, deliveries: list[NotificationDelivery], now: datetime, reason_for: dict[int, str]) -> list[int]:
    _dead_letters_write(deliveries=deliveries, reason_for=reason_for)
    created = _fallbacks_create(failed=deliveries, now=now)
    by_failed = {d.fallback_from_id: d for d in created}
    audits = []
    for d in deliveries:
        fallback = by_failed.get(d.pk)
        details: dict[str, Any] = {"channel": d.channel, "attempts": d.attempts, "error": d.error}
        if fallback is not None:
            details["fallback_channel"] = fallback.channel
            details["fallback_delivery_id"] = fallback.pk
        audits.append(NotificationAuditLog(
            organization_id=d.organization_id, notification_id=d.notification_id, delivery_id=d.pk,
            action=AuditAction.DEAD_LETTERED, outcome=AuditOutcome.FAILURE, error_message=d.error[:2000],
            details=details, created_at=now,
        ))
    NotificationAuditLog.objects.bulk_create(audits)
    if created:
        deliveries_enqueue(delivery_ids=[d.pk for d in created])
    return [d.pk for d in created]


def _fallbacks_create(*, failed: list[NotificationDelivery], now: datetime) -> list[NotificationDelivery]:
    """One delivery on the next usable channel of each failed row's fallback chain."""
    org_ids = {d.organization_id for d in failed}
    channels = {d.channel for d in failed}
    configs: dict[tuple[int | None, str], ChannelConfiguration] = {
        (c.organization_id, c.channel): c
        for c in ChannelConfiguration.objects.filter(Q(organization_id__in=org_ids) | Q(organization__isnull=True))
    }
    if not any(c.fallback_channels for c in configs.values() if c.channel in channels):
        return []
    notification_ids = {d.notification_id for d in failed}
    taken = set(
        NotificationDelivery.objects.filter(notification_id__in=notification_ids).values_list(
            "notification_id", "channel", "escalation_level"
        )
    )

    def enabled(org_id: int, channel: str) -> bool:
        config = configs.get((org_id, channel)) or configs.get((None, channel))
        return config is None or config.enabled

    new: list[NotificationDelivery] = []
    notes: dict[int, list[dict[str, Any]]] = {}
    for d in failed:
        config = configs.get((d.organization_id, d.channel)) or configs.get((None, d.channel))
        chain = list(config.fallback_channels or []) if config else []
        if not chain:
            continue
        notification = d.notification
        tried: list[dict[str, str]] = []
        chosen: str | None = None
        for channel in chain:
            if channel == d.channel or channel not in Channel.values:
                continue
            if (d.notification_id, channel, d.escalation_level) in taken:
                tried.append({"channel": channel, "skipped": "already used for this notification"})
                continue
            if not enabled(d.organization_id, channel):
                tried.append({"channel": channel, "skipped": "disabled by the organization"})
                continue
            address = notification_address(notification, channel)
            if not address:
                tried.append({"channel": channel, "skipped": "no address for this channel"})
                continue
            chosen = channel
            taken.add((d.notification_id, channel, d.escalation_level))
            new.append(NotificationDelivery(
                notification_id=d.notification_id, organization_id=d.organization_id, channel=channel,
                status=DeliveryStatus.PENDING, recipient_address=address, locale=d.locale,
                escalation_level=d.escalation_level, fallback_from_id=d.pk,
            ))
            break
        notes.setdefault(d.notification_id, []).append({
            "at": now.isoformat(), "from_channel": d.channel, "from_delivery_id": d.pk,
            "reason": f"{d.channel} failed for good: {d.error or 'failed'}",
            "to_channel": chosen, "skipped": tried,
        })
    created = NotificationDelivery.objects.bulk_create(new, ignore_conflicts=False) if new else []
    if notes:
        _trace_fallbacks(notes=notes)
    return list(created)


def _trace_fallbacks(*, notes: dict[int, list[dict[str, Any]]]) -> None:
    notifications = list(
        Notification.objects.select_for_update(of=("self",)).filter(pk__in=list(notes)).order_by("pk").only("pk", "trace")
    )
    for n in notifications:
        trace = dict(n.trace or {})
        for note in notes[n.pk]:
            trace.setdefault("fallbacks", []).append(note)
            if note["to_channel"]:
                trace[note["to_channel"]] = {
                    "used": True, "decision": "fallback", "reason": "channel_fallback",
                    "detail": f"Fallback: {note['reason']}", "fallback_from_delivery_id": note["from_delivery_id"],
                }
        n.trace = trace
    Notification.objects.bulk_update(notifications, ["trace"])


# --- the beat entry point ----------------------------------------------------------------------------


def retries_run(*, now: datetime | None = None) -> dict[str, int]:
    """One beat tick: dead-letter exhausted rows, follow up failures, queue due retries."""
    now = now or timezone.now()
    exhausted = deliveries_exhausted_dead_letter(now=now)
    follow_up = deliveries_failed_follow_up(now=now)
    queued = deliveries_requeue_due(now=now)
    if exhausted or follow_up.visited or queued:
        logger.info("retries: %s queued, %s exhausted, %s failures followed up (%s fallbacks)",
                    queued, exhausted, follow_up.visited, len(follow_up.fallbacks))
    return {"queued": queued, "exhausted": exhausted, "followed_up": follow_up.visited,
            "fallbacks": len(follow_up.fallbacks)}


# --- operator actions: replay, discard, retry now ------------------------------------------------------

RETRYABLE_STATUSES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.REJECTED, DeliveryStatus.BOUNCED})


def _audit_actor(user_id: int | None) -> dict[str, Any]:
    return {"actor_type": AuditActorType.USER if user_id else AuditActorType.SYSTEM,
            "actor_id": str(user_id or ""), "user_id": user_id}


def _deliveries_reset(*, delivery_ids: list[int], now: datetime, note: dict[str, Any]) -> None:
    """Give deliveries a fresh set of attempts (status PENDING, counters cleared), history kept.

    Their send-journal entries go too: a bounced delivery the provider once accepted would
    otherwise be recorded as sent again without being sent.
    """
    from providers.journal import journal_forget

    journal_forget(keys=[str(pk) for pk in delivery_ids])
    rows = list(NotificationDelivery.objects.filter(pk__in=delivery_ids).only("pk", "error_history"))
    for d in rows:
        d.error_history = [*(d.error_history or []), {"at": now.isoformat(), **note}]
    NotificationDelivery.objects.bulk_update(rows, ["error_history"])
    NotificationDelivery.objects.filter(pk__in=delivery_ids).update(
        status=DeliveryStatus.PENDING, attempts=0, next_retry_at=None, claimed_at=None, failed_at=None, error="",
        updated_at=now,
    )


def _letters_locked(*, dead_letter_ids: Iterable[int], organization_id: int | None) -> list[DeadLetter]:
    ids = sorted({int(pk) for pk in dead_letter_ids})
    if not ids:
        raise ValidationError({"ids": ["Give at least one dead letter id."]})
    qs = DeadLetter.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    letters = list(qs)
    missing = sorted(set(ids) - {dl.pk for dl in letters})
    if missing:
        raise NotFound({"detail": "Dead letters not found.", "ids": missing})
    return letters


def dead_letters_replay(
    *, dead_letter_ids: Iterable[int], organization_id: int | None, user_id: int | None
) -> list[int]:
    """Replay OPEN dead letters: their deliveries start over with fresh attempts. All or nothing.

    ``organization_id`` None means platform staff (any organization). Returns the delivery ids queued.
    """
    now = timezone.now()
    with transaction.atomic():
        letters = _letters_locked(dead_letter_ids=dead_letter_ids, organization_id=organization_id)
        not_open = [dl.pk for dl in letters if dl.status != DeadLetterStatus.OPEN]
        if not_open:
            raise Conflict({"detail": "Only open dead letters can be replayed.", "ids": not_open})
        gone = [dl.pk for dl in letters if dl.delivery_id is None]
        if gone:
            raise Conflict({"detail": "The delivery of these dead letters no longer exists.", "ids": gone})
        delivery_ids = cast(list[int], [dl.delivery_id for dl in letters])  # none is None: checked just above
        busy = list(
            NotificationDelivery.objects.select_for_update()
            .filter(pk__in=delivery_ids, status__in=[DeliveryStatus.SENDING, *DELIVERY_SUCCESS_STATUSES])
            .values_list("pk", flat=True)
        )
        if busy:
            raise Conflict({"detail": "These deliveries are being sent or were sent meanwhile.", "delivery_ids": busy})
        _deliveries_reset(delivery_ids=delivery_ids, now=now, note={"code": "replayed", "by_user_id": user_id})
        DeadLetter.objects.filter(pk__in=[dl.pk for dl in letters]).update(
            status=DeadLetterStatus.REPLAYED, replayed_at=now, resolved_by_id=user_id
        )
        NotificationAuditLog.objects.bulk_create(
            NotificationAuditLog(
                organization_id=dl.organization_id, delivery_id=dl.delivery_id,
                notification_id=(dl.payload or {}).get("notification_id"),
                action=AuditAction.DEAD_LETTER_REPLAYED, details={"dead_letter_id": dl.pk, "channel": dl.channel},
                **_audit_actor(user_id),
            )
            for dl in letters
        )
        deliveries_enqueue(delivery_ids=delivery_ids)
    return delivery_ids


def dead_letters_discard(*, dead_letter_ids: Iterable[int], organization_id: int | None, user_id: int | None) -> int:
    """Discard OPEN dead letters (nothing is sent); all or nothing."""
    now = timezone.now()
    with transaction.atomic():
        letters = _letters_locked(dead_letter_ids=dead_letter_ids, organization_id=organization_id)
        not_open = [dl.pk for dl in letters if dl.status != DeadLetterStatus.OPEN]
        if not_open:
            raise Conflict({"detail": "Only open dead letters can be discarded.", "ids": not_open})
        DeadLetter.objects.filter(pk__in=[dl.pk for dl in letters]).update(
            status=DeadLetterStatus.DISCARDED, discarded_at=now, resolved_by_id=user_id
        )
        NotificationAuditLog.objects.bulk_create(
            NotificationAuditLog(
                organization_id=dl.organization_id, delivery_id=dl.delivery_id,
                notification_id=(dl.payload or {}).get("notification_id"),
                action=AuditAction.DEAD_LETTER_DISCARDED, details={"dead_letter_id": dl.pk, "channel": dl.channel},
                **_audit_actor(user_id),
            )
            for dl in letters
        )
    return len(letters)


def delivery_retry_now(*, delivery_id: int, organization_id: int | None, user_id: int | None) -> NotificationDelivery:
    """Operator "retry": a failed delivery starts over; one waiting for a retry goes now."""
    now = timezone.now()
    with transaction.atomic():
        qs = NotificationDelivery.objects.select_for_update().filter(pk=delivery_id)
        if organization_id is not None:
            qs = qs.filter(organization_id=organization_id)
        delivery = qs.first()
        if delivery is None:
            raise NotFound("Delivery not found.")
        if delivery.status in RETRYABLE_STATUSES:
            _deliveries_reset(delivery_ids=[delivery.pk], now=now, note={"code": "manual_retry", "by_user_id": user_id})
            DeadLetter.objects.filter(delivery_id=delivery.pk, status=DeadLetterStatus.OPEN).update(
                status=DeadLetterStatus.REPLAYED, replayed_at=now, resolved_by_id=user_id
            )
        elif delivery.status == DeliveryStatus.PENDING:
            NotificationDelivery.objects.filter(pk=delivery.pk).update(next_retry_at=None, updated_at=now)
        else:
            raise Conflict(f"A {delivery.status} delivery cannot be retried.")
        NotificationAuditLog.objects.create(
            organization_id=delivery.organization_id, notification_id=delivery.notification_id, delivery_id=delivery.pk,
            action=AuditAction.DELIVERY_RETRY_SCHEDULED, details={"manual": True, "previous_status": delivery.status},
            **_audit_actor(user_id),
        )
        deliveries_enqueue(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    return delivery


# --- channel configuration (the fallback chain lives there): /api/v1/admin/channel-configurations/ ---

CHANNEL_CONFIGURATION_FIELDS = (
    "enabled", "fallback_channels", "rate_limit_user_per_minute", "rate_limit_user_per_hour", "rate_limit_org_per_minute",
    "rate_limit_org_per_hour", "rate_limit_action", "settings", "default_provider_id",
)


def _configuration_audit(*, config: ChannelConfiguration, user_id: int | None, change: str, before: dict | None) -> None:
    NotificationAuditLog.objects.create(
        organization_id=config.organization_id, action=AuditAction.CHANNEL_CONFIGURATION_CHANGED,
        details={"kind": "channel_configuration", "change": change, "channel_configuration_id": config.pk,
                 "channel": config.channel, "before": before,
                 "after": {f: getattr(config, f) for f in CHANNEL_CONFIGURATION_FIELDS}},
        **_audit_actor(user_id),
    )


@transaction.atomic
def channel_configuration_save(
    *, organization_id: int | None, data: dict[str, Any], user_id: int | None, configuration_id: int | None = None
) -> ChannelConfiguration:
    """Create (one per organization and channel) or update a channel configuration; audited."""
    config: ChannelConfiguration | None
    if configuration_id is None:
        channel = data["channel"]
        if ChannelConfiguration.objects.filter(organization_id=organization_id, channel=channel).exists():  # type: ignore[misc]  # None selects the platform default (organization IS NULL)
            raise Conflict({"channel": [f"{channel} is already configured; change that configuration instead."]})
        config = ChannelConfiguration(organization_id=organization_id, channel=channel)
        before = None
    else:
        config = (ChannelConfiguration.objects.select_for_update()
                  .filter(pk=configuration_id, organization_id=organization_id).first())  # type: ignore[misc]  # None selects the platform default (organization IS NULL)
        if config is None:
            raise NotFound("Channel configuration not found.")
        before = {f: getattr(config, f) for f in CHANNEL_CONFIGURATION_FIELDS}
    for attr in CHANNEL_CONFIGURATION_FIELDS:
        if attr in data:
            setattr(config, attr, data[attr])
    if "settings" in data:
        from notifications.engine.channel_options import channel_settings_clean

        config.settings = channel_settings_clean(config.channel, config.settings or {})
    if config.channel in (config.fallback_channels or []):
        raise ValidationError({"fallback_channels": ["A channel cannot fall back to itself."]})
    _provider_choice_validate(config)
    config.save()
    _configuration_audit(config=config, user_id=user_id, change="created" if before is None else "changed", before=before)
    return config


def _provider_choice_validate(config: ChannelConfiguration) -> None:
    """The selection keys of `settings` (providers.selection) and a default provider this
    organization may use (its own or the platform's) on this channel."""
    from providers.selection import policy_settings_errors

    if not isinstance(config.settings, dict):
        raise ValidationError({"settings": ["Expected an object."]})
    errors = policy_settings_errors(config.settings)
    if errors:
        raise ValidationError({"settings": errors})
    if config.default_provider_id is not None and not NotificationProvider.objects.filter(
            Q(organization__isnull=True) | Q(organization_id=config.organization_id),
            pk=config.default_provider_id, channel=config.channel).exists():
        raise ValidationError({"default_provider_id": [f"No {config.channel} provider {config.default_provider_id} for this organization."]})


@transaction.atomic
def channel_configuration_delete(*, organization_id: int | None, configuration_id: int, user_id: int | None) -> None:
    config = ChannelConfiguration.objects.select_for_update().filter(pk=configuration_id, organization_id=organization_id).first()  # type: ignore[misc]  # None selects the platform default (organization IS NULL)
    if config is None:
        raise NotFound("Channel configuration not found.")
    _configuration_audit(config=config, user_id=user_id, change="deleted",
                         before={f: getattr(config, f) for f in CHANNEL_CONFIGURATION_FIELDS})
    config.delete()
