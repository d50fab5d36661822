"""Time-driven releases: quiet hours ending, scheduled sends, expiry (all run from beat).

- ``held_release``: deliveries HELD by quiet hours go out once the recipient's quiet hours
  are over (evaluated in their time zone by ``engine.quiet_hours``). More than
  ``HELD_BURST_THRESHOLD`` held on one channel go out as one digest instead of a burst.
  Deliveries held by a rate limit (recipient not in quiet hours) are retried the same way.
- ``scheduled_release``: notifications whose ``scheduled_for`` has come are sent.
- ``notifications_expire_due``: past ``expires_at``, whatever has not gone out is EXPIRED.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.status import notifications_status_refresh
from notifications.engine.digest import digest_send_now
from notifications.engine.escalation import escalation_start_for
from notifications.engine.quiet_hours import quiet_channel_action, quiet_hours_load, quiet_state_at
from notifications.enums import AuditAction, BatchStatus, DeliveryStatus, NotificationStatus, QuietHoursAction
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

logger = logging.getLogger(__name__)

HELD_BURST_THRESHOLD = 3
HELD_BATCH = 2000
# A rate-limit hold is retried after this long (quiet-hours holds wait for the window's end).
RATE_LIMIT_HOLD_MIN_AGE = timedelta(minutes=1)


# --- quiet hours release -------------------------------------------------------------------------


def held_release(
    *, now: datetime | None = None, burst_threshold: int = HELD_BURST_THRESHOLD, limit: int = 50 * HELD_BATCH,
    batch_size: int = HELD_BATCH,
) -> dict[str, int]:
    """Release HELD deliveries whose recipient is no longer in quiet hours.

    Walks every HELD row (up to ``limit``) in id order, one batch per transaction: rows of
    people still asleep on the other side of the world must not hide, run after run, the
    rows of people whose morning has come.
    """
    now = now or timezone.now()
    totals = {"released": 0, "digests": 0, "expired": 0}
    after_pk, seen = 0, 0
    while seen < limit:
        size = min(batch_size, limit - seen)
        result, last_pk, count = _held_release_batch(now=now, burst_threshold=burst_threshold, after_pk=after_pk, size=size)
        for key, value in result.items():
            totals[key] += value
        seen += count
        if count < size:
            break
        after_pk = last_pk
    if totals["released"] or totals["expired"]:
        logger.info("quiet hours: %s held deliveries released (%s digests), %s expired",
                    totals["released"], totals["digests"], totals["expired"])
    return totals


def _held_release_batch(
    *, now: datetime, burst_threshold: int, after_pk: int, size: int
) -> tuple[dict[str, int], int, int]:
    """One batch of HELD rows after ``after_pk``: (counts, last id seen, rows seen)."""
    released = digests = expired = 0
    with transaction.atomic():
        held = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("notification")
            .filter(status=DeliveryStatus.HELD, pk__gt=after_pk)
            .order_by("pk")[:size]
        )
        if not held:
            return {"released": 0, "digests": 0, "expired": 0}, after_pk, 0
        by_org: dict[int, set[int]] = defaultdict(set)
        for d in held:
            if d.notification.recipient_id:
                by_org[d.organization_id].add(d.notification.recipient_id)
        quiet_sets = {org_id: quiet_hours_load(organization_id=org_id, user_ids=users) for org_id, users in by_org.items()}

        to_expire: list[int] = []
        ready: dict[tuple[int, int | None, str], list[NotificationDelivery]] = defaultdict(list)
        for d in held:
            n = d.notification
            if n.expires_at and n.expires_at <= now:
                to_expire.append(d.pk)
                continue
            quiet = quiet_sets.get(d.organization_id)
            config = quiet.for_user(n.recipient_id) if quiet else None
            state = quiet_state_at(config, now=now)
            if state.active:
                action, _ = quiet_channel_action(state, channel=d.channel, criticality=n.criticality)
                if action != QuietHoursAction.ALLOW:
                    continue  # still quiet for this channel
            elif d.updated_at and now - d.updated_at < RATE_LIMIT_HOLD_MIN_AGE:
                continue  # just held by a rate limit: give its window time to free up
            ready[(d.organization_id, n.recipient_id, d.channel)].append(d)

        expiring = set(to_expire)
        touched: set[int] = {d.notification_id for d in held if d.pk in expiring}
        if to_expire:
            NotificationDelivery.objects.filter(pk__in=to_expire).update(
                status=DeliveryStatus.EXPIRED, updated_at=now, skip_reason="expired while held"
            )
            expired = len(to_expire)
        plain: list[NotificationDelivery] = []
        audits: list[NotificationAuditLog] = []
        for (org_id, user_id, channel), rows in ready.items():
            touched.update(d.notification_id for d in rows)
            if user_id and len(rows) > burst_threshold:
                digest_send_now(
                    user_id=user_id, organization_id=org_id, channel=channel, delivery_ids=[d.pk for d in rows],
                    reason=f"{len(rows)} notifications held during quiet hours", now=now,
                )
                digests += 1
                mode = "digest"
            else:
                plain.extend(rows)
                mode = "individual"
            audits.extend(
                NotificationAuditLog(
                    organization_id=org_id, notification_id=d.notification_id, delivery_id=d.pk,
                    action=AuditAction.NOTIFICATION_RELEASED, details={"channel": channel, "mode": mode, "held": len(rows)},
                )
                for d in rows
            )
        if plain:
            NotificationDelivery.objects.filter(pk__in=[d.pk for d in plain], status=DeliveryStatus.HELD).update(
                status=DeliveryStatus.PENDING, next_retry_at=None, updated_at=now
            )
            deliveries_enqueue(delivery_ids=[d.pk for d in plain])
        released = sum(len(rows) for rows in ready.values())
        NotificationAuditLog.objects.bulk_create(audits)
        if touched:
            notifications_status_refresh(notification_ids=touched, now=now)
    return {"released": released, "digests": digests, "expired": expired}, held[-1].pk, len(held)


# --- scheduled sends ---------------------------------------------------------------------------------


def scheduled_release(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Queue the deliveries of SCHEDULED notifications whose time has come; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=NotificationStatus.SCHEDULED, scheduled_for__lte=now)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("scheduled_for", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not due:
            return 0
        Notification.objects.filter(pk__in=due).update(status=NotificationStatus.PROCESSING, processed_at=now, updated_at=now)
        ids = list(
            NotificationDelivery.objects.filter(notification_id__in=due, status=DeliveryStatus.PENDING)
            .values_list("pk", flat=True)
        )
        NotificationDelivery.objects.filter(pk__in=ids).update(next_retry_at=None, updated_at=now)
        NotificationAuditLog.objects.bulk_create(
            NotificationAuditLog(notification_id=pk, organization_id=org_id, action=AuditAction.NOTIFICATION_RELEASED,
                                 details={"reason": "scheduled time reached"})
            for pk, org_id in Notification.objects.filter(pk__in=due).values_list("pk", "organization_id")
        )
        deliveries_enqueue(delivery_ids=ids)
        # Intake does not start chains for notifications that are not sent yet: start them now.
        escalation_start_for(notification_ids=due, now=now)
    logger.info("scheduled: %s notifications released (%s deliveries)", len(due), len(ids))
    return len(ids)


# --- expiry -----------------------------------------------------------------------------------------------

_OPEN_NOTIFICATION = [
    NotificationStatus.PENDING, NotificationStatus.PROCESSING, NotificationStatus.SCHEDULED, NotificationStatus.HELD,
    NotificationStatus.DIGESTED,
]
# A DIGESTED delivery is unsent only while its batch is open; once the digest went out it
# was delivered (inside the digest) and expiry must leave it, and its notification, alone.
_UNSENT_DELIVERY = Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.HELD]) | Q(
    status=DeliveryStatus.DIGESTED, batch__status=BatchStatus.OPEN
)


def notifications_expire_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """EXPIRE what has not gone out of notifications past ``expires_at``; returns how many notifications."""
    now = now or timezone.now()
    with transaction.atomic():
        waiting_digest = NotificationDelivery.objects.filter(
            notification_id=OuterRef("pk"), status=DeliveryStatus.DIGESTED, batch__status=BatchStatus.OPEN
        )
        in_sent_digest = NotificationDelivery.objects.filter(notification_id=OuterRef("pk"), status=DeliveryStatus.DIGESTED)
        ids = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(expires_at__lte=now, status__in=_OPEN_NOTIFICATION)
            # DIGESTED and its digest already sent: delivered, not expiring (nor picked again each run).
            .exclude(Q(status=NotificationStatus.DIGESTED) & ~Exists(waiting_digest))
            .order_by("expires_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        unsent = list(
            NotificationDelivery.objects.filter(_UNSENT_DELIVERY, notification_id__in=ids).values_list("pk", flat=True)
        )
        NotificationDelivery.objects.filter(pk__in=unsent).update(
            status=DeliveryStatus.EXPIRED, next_retry_at=None, updated_at=now, skip_reason="expired before delivery"
        )
        statuses = notifications_status_refresh(notification_ids=ids, now=now)
        # Nothing sendable at all (e.g. still SCHEDULED with every delivery expired) → EXPIRED;
        # one already part of a sent digest keeps the status that says so.
        Notification.objects.filter(pk__in=ids, status__in=_OPEN_NOTIFICATION).exclude(Exists(in_sent_digest)).update(
            status=NotificationStatus.EXPIRED, next_escalation_at=None, updated_at=now
        )
        Notification.objects.filter(pk__in=ids).update(next_escalation_at=None)
        NotificationAuditLog.objects.bulk_create(
            NotificationAuditLog(notification_id=pk, organization_id=org_id, action=AuditAction.NOTIFICATION_EXPIRED,
                                 details={"status": statuses.get(pk)})
            for pk, org_id in Notification.objects.filter(pk__in=ids).values_list("pk", "organization_id")
        )
    return len(ids)

