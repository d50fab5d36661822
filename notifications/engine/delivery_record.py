"""Recording a delivery batch's outcomes: delivery rows, notification status, audit trail,
dead letters, outgoing webhooks and the in-app hand-over, in one short transaction."""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import logging

from django.db import transaction
from django.utils import timezone

from common import sealing
from notifications.engine.bulk import bulk_insert, bulk_update_rows
from notifications.engine.failover import failover_audit_rows
from notifications.engine.payload import NOT_STORED, inbox_fields
from notifications.engine.status import notifications_status_refresh
from notifications.enums import (
    DELIVERY_SUCCESS_STATUSES,
    AuditAction,
    AuditOutcome,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.models import DeadLetter, Notification, NotificationAuditLog, NotificationDelivery

logger = logging.getLogger(__name__)

# Waits before the 2nd, 3rd and 4th attempt; later attempts reuse the last one.
RETRY_BACKOFF = (timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
RETRY_JITTER = 0.1  # ±10 %, so a burst of failures does not come back as a burst


@dataclass
class Outcome:
    delivery: NotificationDelivery
    status: str  # a DeliveryStatus
    provider: str = ""
    provider_id: int | None = None  # the provider record that sent (or refused) it
    provider_message_id: str = ""
    provider_response: Any = None
    cost_amount: Decimal | None = None
    cost_currency: str = ""
    error: str = ""
    error_code: str = ""
    transient: bool = False
    retry_after: float | None = None
    rendered: dict[str, Any] = field(default_factory=dict)
    attempts: list[Any] = field(default_factory=list)  # the provider layer's SendAttempts


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0


def _safe_response(value: Any) -> Any:
    """JSON-safe copy of a provider answer (providers already strip secrets from it)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _safe_response(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe_response(v) for v in value]
    if hasattr(value, "as_dict"):
        return _safe_response(value.as_dict())
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _safe_response(asdict(value))
    return str(value)


def retry_at(*, attempts: int, now: datetime, retry_after: float | None = None) -> datetime:
    """When attempt ``attempts + 1`` may run: 5 min, 15 min, 1 h (±10 %), or later if the provider asked."""
    base = RETRY_BACKOFF[min(max(attempts, 1), len(RETRY_BACKOFF)) - 1]
    wait = base.total_seconds() * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if retry_after:
        wait = max(wait, float(retry_after))
    return now + timedelta(seconds=wait)


def _outcomes_scrub(outcomes: list[Outcome], in_app_content: dict[int, dict[str, Any]],
                    secrets: Mapping[int, list[str]]) -> None:
    """Nothing stored after a send holds a sealed value in clear: content, answers, errors."""
    for outcome in outcomes:
        found = secrets.get(outcome.delivery.notification_id)
        if found:
            outcome.rendered = sealing.scrub(outcome.rendered, found)
            outcome.provider_response = sealing.scrub(outcome.provider_response, found)
            outcome.error = sealing.scrub(outcome.error, found)
    for pk, content in in_app_content.items():
        if secrets.get(pk):
            in_app_content[pk] = sealing.scrub(content, secrets[pk])


def _record(
    *, outcomes: list[Outcome], notifications: dict[int, Notification], in_app_content: dict[int, dict[str, Any]],
    report: BatchReport, secrets: Mapping[int, list[str]] | None = None,
    in_app_deliveries: dict[int, int] | None = None,
) -> None:
    """Store every outcome, the notifications' derived status and the audit trail: one short transaction."""
    _outcomes_scrub(outcomes, in_app_content, secrets or {})
    now = timezone.now()
    updated: list[NotificationDelivery] = []
    audits: list[NotificationAuditLog] = []
    dead_letters: list[DeadLetter] = []
    waiting: list[tuple[int, datetime]] = []  # rate limited: (delivery id, when its slot comes)
    for outcome in outcomes:
        d = outcome.delivery
        d.updated_at = now
        if outcome.rendered:
            d.rendered = {k: v for k, v in outcome.rendered.items() if k not in NOT_STORED}
        if outcome.provider:
            d.provider = outcome.provider
        if outcome.provider_id is not None:
            d.provider_record_id = outcome.provider_id
        if outcome.provider_response is not None:
            d.provider_response = outcome.provider_response
        # Providers passed over on the way (written with the delivery, in its transaction).
        audits.extend(failover_audit_rows(organization_id=d.organization_id, channel=d.channel, attempts=outcome.attempts,
                                          delivery_id=d.pk, notification_id=d.notification_id))
        audit = NotificationAuditLog(
            organization_id=d.organization_id, notification_id=d.notification_id, delivery_id=d.pk,
            actor_label=outcome.provider or d.provider, details={"channel": d.channel, "attempt": d.attempts},
        )
        if outcome.status in DELIVERY_SUCCESS_STATUSES:
            d.status = outcome.status
            d.provider_message_id = outcome.provider_message_id
            d.sent_at = now
            if outcome.status == DeliveryStatus.DELIVERED:
                d.delivered_at = now
            d.cost_amount = outcome.cost_amount
            d.cost_currency = outcome.cost_currency
            d.next_retry_at = None
            d.error = ""
            audit.action = AuditAction.DELIVERY_SENT
            audit.details.update(provider=d.provider, provider_message_id=d.provider_message_id)
            report.sent += 1
        else:
            d.error = outcome.error
            d.error_history = [
                *(d.error_history or []),
                {"at": now.isoformat(), "attempt": d.attempts, "error": outcome.error, "code": outcome.error_code,
                 "transient": outcome.transient, "provider": outcome.provider or d.provider},
            ]
            audit.error_message = outcome.error
            audit.outcome = AuditOutcome.FAILURE
            if outcome.status == DeliveryStatus.EXPIRED:
                d.status = DeliveryStatus.EXPIRED
                audit.action = AuditAction.DELIVERY_SKIPPED
                report.expired += 1
            elif outcome.transient and outcome.error_code == "rate_limited":
                # Every provider was at its rate limit: nothing was tried, so the attempt is
                # given back — waiting for a slot never exhausts the retries.
                d.attempts = max(d.attempts - 1, 0)
                d.status = DeliveryStatus.PENDING
                d.next_retry_at = now + timedelta(seconds=float(outcome.retry_after or 60) * random.uniform(1, 1 + RETRY_JITTER))
                audit.action = AuditAction.DELIVERY_RETRY_SCHEDULED
                audit.details["next_retry_at"] = d.next_retry_at.isoformat()
                report.retried += 1
                waiting.append((d.pk, d.next_retry_at))
            elif outcome.transient and d.attempts < d.max_attempts:
                d.status = DeliveryStatus.PENDING
                d.next_retry_at = retry_at(attempts=d.attempts, now=now, retry_after=outcome.retry_after)
                audit.action = AuditAction.DELIVERY_RETRY_SCHEDULED
                audit.details["next_retry_at"] = d.next_retry_at.isoformat()
                report.retried += 1
            else:
                d.status = DeliveryStatus.FAILED
                d.failed_at = now
                d.next_retry_at = None
                audit.action = AuditAction.DELIVERY_FAILED
                report.failed += 1
                if outcome.transient:
                    # Every attempt failed transiently: park it where an operator can replay it.
                    dead_letters.append(DeadLetter(
                        organization_id=d.organization_id, delivery_id=d.pk, channel=d.channel,
                        reason=f"{d.attempts} attempts failed: {outcome.error}", error_history=d.error_history,
                        payload={"notification_id": d.notification_id, "channel": d.channel,
                                 "recipient_address": d.recipient_address},
                    ))
        updated.append(d)
        audits.append(audit)

    in_app_rows: list[Notification] = []
    for pk, content in in_app_content.items():
        n = notifications[pk]
        n.title = content.get("title") or n.title
        n.body = content.get("body") or n.body
        n.body_html = content.get("body_html") or n.body_html
        n.action_url = content.get("action_url") or ""  # already the safe one (delivery_render)
        n.action_label = content.get("action_label") or n.action_label
        for name, value in inbox_fields(n, content.get("options") or {}).items():
            setattr(n, name, value)
        in_app_rows.append(n)

    with transaction.atomic():
        bulk_update_rows(
            NotificationDelivery,
            updated,
            ["status", "provider", "provider_record", "provider_message_id", "provider_response", "rendered", "sent_at", "delivered_at",
             "failed_at", "next_retry_at", "error", "error_history", "cost_amount", "cost_currency",
             "attempts", "updated_at"],
        )
        bulk_update_rows(Notification, in_app_rows, ["title", "body", "body_html", "action_url", "action_label",
                                                     "channel_options", "group_key", "inbox_expires_at", "image_url"])
        statuses = notifications_status_refresh(notification_ids=notifications.keys(), now=now)
        # Sealed values (invitation links) are kept only until every delivery went out.
        unsealed = [n for pk, n in notifications.items()
                    if statuses.get(pk) == NotificationStatus.DELIVERED and sealing.has_sealed(n.data)]
        for n in unsealed:
            n.data = sealing.data_drop_sealed(n.data)
        bulk_update_rows(Notification, unsealed, ["data"])
        for pk, status in statuses.items():
            if status in (NotificationStatus.DELIVERED, NotificationStatus.PARTIALLY_DELIVERED, NotificationStatus.FAILED):
                if notifications[pk].status != status:
                    audits.append(NotificationAuditLog(
                        organization_id=notifications[pk].organization_id, notification_id=pk,
                        action=AuditAction.NOTIFICATION_FAILED if status == NotificationStatus.FAILED
                        else AuditAction.NOTIFICATION_DELIVERED,
                        outcome={NotificationStatus.DELIVERED: AuditOutcome.SUCCESS,
                                 NotificationStatus.PARTIALLY_DELIVERED: AuditOutcome.PARTIAL}.get(NotificationStatus(status),
                                                                                     AuditOutcome.FAILURE),
                        details={"status": status},
                    ))
        bulk_insert(NotificationAuditLog, audits, with_ids=False)
        if waiting:
            _rate_limited_requeue(waiting, now=now)
        if dead_letters:
            DeadLetter.objects.bulk_create(dead_letters, ignore_conflicts=True)
        from notifications.engine.webhooks_outgoing import STATUS_EVENTS, webhooks_enqueue

        # Organizations' outgoing webhooks hear about final statuses, after commit.
        webhooks_enqueue(
            events=[(pk, STATUS_EVENTS[s]) for pk, s in statuses.items()
                    if s in STATUS_EVENTS and notifications[pk].status != s],
            organization_ids={n.organization_id for n in notifications.values()},
        )
        if in_app_rows:
            from notifications.engine.realtime import inapp_publish_after_commit

            inapp_publish_after_commit(notifications=in_app_rows, delivery_ids=in_app_deliveries or {})


def _rate_limited_requeue(waiting: list[tuple[int, datetime]], *, now: datetime) -> None:
    """Deliveries handed back by a rate limit come back by themselves when their slot is due
    (a task with a countdown, after commit), not only at the next retry sweep."""
    from common.publish import task_publish

    ids = sorted(pk for pk, _ in waiting)
    countdown = max(0.0, (max(at for _, at in waiting) - now).total_seconds())

    def publish() -> None:
        try:
            task_publish("notifications.deliver_batch", args=[ids], countdown=countdown)
        except Exception:  # noqa: BLE001 - the rows are PENDING: the retry sweep takes them anyway
            logger.warning("could not queue %d rate-limited deliveries; the retry sweep will", len(ids))

    transaction.on_commit(publish)
