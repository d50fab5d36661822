"""The outbox sweeper: nothing accepted is lost, nothing loops forever.

Two ways a delivery can get stuck:

- PENDING with no ``next_retry_at`` for a while: its task message never reached a worker
  (the process died between commit and publish, the broker lost it, a retry was queued
  while the broker was down). The sweeper queues it again.
- SENDING past the claim timeout: the worker that claimed it was killed mid-batch. The
  claim is released (back to PENDING) and the row queued again. The provider may already
  have the message (killed after the call, before the record), so this is at-least-once;
  the delivery id travels as the provider idempotency key where the provider supports one.

Every claim increments ``attempts``, so a row that keeps killing its worker runs out of
attempts and is dead-lettered instead of being swept forever.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.retry import deliveries_dead_letter
from notifications.enums import DeliveryStatus, NotificationStatus
from notifications.models import NotificationDelivery

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000


def _setting_seconds(name: str, default: int) -> timedelta:
    return timedelta(seconds=int(getattr(settings, name, default)))


@dataclass
class SweepReport:
    requeued_pending: int = 0
    released_claims: int = 0
    dead_lettered: int = 0


def deliveries_sweep(
    *,
    now: datetime | None = None,
    pending_after: timedelta | None = None,
    claim_timeout: timedelta | None = None,
    limit: int = 10000,
) -> SweepReport:
    """Re-queue stuck deliveries (see the module docstring); returns what it did."""
    now = now or timezone.now()
    pending_after = pending_after if pending_after is not None else _setting_seconds("DELIVERY_PENDING_SWEEP_SECONDS", 600)
    claim_timeout = claim_timeout if claim_timeout is not None else _setting_seconds("DELIVERY_CLAIM_TIMEOUT_SECONDS", 900)
    report = SweepReport()
    while report.requeued_pending + report.released_claims + report.dead_lettered < limit:
        swept = _sweep_batch(now=now, pending_before=now - pending_after, claimed_before=now - claim_timeout, report=report)
        if swept < SWEEP_BATCH:
            break
    if report.requeued_pending or report.released_claims or report.dead_lettered:
        logger.warning(
            "sweeper: %s pending re-queued, %s expired claims released, %s dead-lettered",
            report.requeued_pending, report.released_claims, report.dead_lettered,
        )
    return report


def _sweep_batch(*, now: datetime, pending_before: datetime, claimed_before: datetime, report: SweepReport) -> int:
    stuck_pending = Q(status=DeliveryStatus.PENDING, next_retry_at__isnull=True, updated_at__lt=pending_before)
    expired_claim = Q(status=DeliveryStatus.SENDING, claimed_at__lt=claimed_before)
    # A notification waiting for its scheduled time is not stuck: the scheduler releases it.
    waiting = Q(notification__status=NotificationStatus.SCHEDULED) | Q(notification__scheduled_for__gt=now)
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(stuck_pending | expired_claim)
            .exclude(waiting)
            .order_by("pk")
            .values_list("pk", "status", "attempts", "max_attempts", "error_history")[:SWEEP_BATCH]
        )
        if not rows:
            return 0
        exhausted = [pk for pk, _, attempts, max_attempts, _ in rows if attempts >= max_attempts]
        if exhausted:
            done = deliveries_dead_letter(
                delivery_ids=exhausted, reason="stuck (worker lost or message lost) with no attempts left", now=now
            )
            report.dead_lettered += len(done)
        released = [
            NotificationDelivery(
                pk=pk,
                error_history=[*(history or []), {"at": now.isoformat(), "attempt": attempts, "code": "claim_expired",
                                                  "error": "claim expired: the worker was lost mid-batch",
                                                  "transient": True}],
            )
            for pk, status, attempts, max_attempts, history in rows
            if status == DeliveryStatus.SENDING and attempts < max_attempts
        ]
        pending = [pk for pk, status, attempts, max_attempts, _ in rows
                   if status == DeliveryStatus.PENDING and attempts < max_attempts]
        if released:
            NotificationDelivery.objects.bulk_update(released, ["error_history"])
            NotificationDelivery.objects.filter(pk__in=[d.pk for d in released], status=DeliveryStatus.SENDING).update(
                status=DeliveryStatus.PENDING, claimed_at=None, next_retry_at=None, updated_at=now
            )
        if pending:
            # Touch updated_at so the next sweep gives the new message time to arrive.
            NotificationDelivery.objects.filter(pk__in=pending).update(updated_at=now)
        requeue = [d.pk for d in released] + pending
        if requeue:
            deliveries_enqueue(delivery_ids=requeue)
        report.released_claims += len(released)
        report.requeued_pending += len(pending)
    return len(rows)

