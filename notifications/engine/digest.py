"""Digests: notifications collected into the user's open batch and sent as one message.

At routing time a channel whose effective preference has a digest frequency (HOURLY,
DAILY, WEEKLY) does not send: ``digest_collect`` puts the delivery in the user's OPEN
``NotificationBatch`` for that channel and frequency (status DIGESTED, ``batch`` set).
CRITICAL notifications never wait for a digest.

There is at most one OPEN batch per (user, organization, channel, frequency): a partial
unique constraint. Batches are opened with INSERT … ON CONFLICT DO NOTHING and read back,
so several events in the same second share one batch instead of racing to two digests.

``digests_send_due`` (beat) closes every batch whose ``scheduled_for`` has come: an empty
one is cancelled (nothing sent); otherwise ONE digest notification is created for the user
with ONE delivery on the batch's channel, its body rendered from the digest templates with
the items grouped by category. The quiet-hours release reuses the same path for a burst of
held deliveries (``digest_send_now``).
"""
from __future__ import annotations

import logging
import zoneinfo
from common.links import link_safe_or_empty
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.routing import notification_address
from notifications.enums import (
    AuditAction,
    BatchFrequency,
    BatchStatus,
    BatchType,
    Criticality,
    DeliveryStatus,
    DigestFrequency,
    EventCategory,
    NotificationStatus,
)
from notifications.models import (
    ChannelPreference,
    Notification,
    NotificationAuditLog,
    NotificationBatch,
    NotificationDelivery,
)

logger = logging.getLogger(__name__)

DIGEST_EVENT_TYPE = "notification.digest"
DEFAULT_DIGEST_HOUR = 8
DEFAULT_DIGEST_DAY = 0  # Monday
FREQUENCY_LABEL: dict[str, str] = {BatchFrequency.HOURLY: "hourly", BatchFrequency.DAILY: "daily", BatchFrequency.WEEKLY: "weekly"}


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def digest_next_send_at(
    *, frequency: str, now: datetime, timezone_name: str | None, hour: int | None = None, day_of_week: int | None = None
) -> datetime:
    """When a batch opened at ``now`` is sent: the next hour, or the user's local hour (and day)."""
    if frequency == BatchFrequency.HOURLY:
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    zone = _zone(timezone_name)
    local = now.astimezone(zone)
    hour = DEFAULT_DIGEST_HOUR if hour is None else hour
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if frequency == BatchFrequency.WEEKLY:
        day = DEFAULT_DIGEST_DAY if day_of_week is None else day_of_week
        candidate += timedelta(days=(day - local.weekday()) % 7)
        if candidate <= local:
            candidate += timedelta(days=7)
    elif candidate <= local:
        candidate += timedelta(days=1)
    # Re-attach the zone so a DST change between now and then lands on the right local hour.
    candidate = candidate.replace(tzinfo=None).replace(tzinfo=zone)
    return candidate.astimezone(zoneinfo.ZoneInfo("UTC"))


# --- collecting (routing hook) -------------------------------------------------------------


@dataclass
class DigestItem:
    """One delivery routing wants to put in a digest (the delivery is not saved yet)."""

    delivery: NotificationDelivery
    user_id: int
    frequency: str  # DigestFrequency
    criticality: str
    timezone: str = "UTC"
    preference_id: int | None = None  # the ChannelPreference's preference, for its digest hour/day


def digest_collect(*, organization_id: int, items: Iterable[DigestItem], now: datetime | None = None) -> list[NotificationDelivery]:
    """Put the deliveries in their users' open batches: status DIGESTED with ``batch_id`` set.

    Call before the deliveries are bulk-created (they are mutated in place) and leave the
    returned ones out of the delivery queue. Fixed number of queries whatever the count.
    CRITICAL notifications and NONE frequencies are left untouched.
    """
    now = now or timezone.now()
    wanted = [
        item for item in items
        if item.frequency and item.frequency != DigestFrequency.NONE and item.criticality != Criticality.CRITICAL
        and item.user_id
    ]
    if not wanted:
        return []
    schedule: dict[tuple[int | None, str], tuple[int | None, int | None]] = {}
    preference_ids = {item.preference_id for item in wanted if item.preference_id}
    if preference_ids:
        for pref_id, channel, hour, day in ChannelPreference.objects.filter(preference_id__in=preference_ids).values_list(
            "preference_id", "channel", "digest_hour", "digest_day_of_week"
        ):
            schedule[(pref_id, channel)] = (hour, day)
    keys: dict[tuple[int, str, str], DigestItem] = {}
    for item in wanted:
        keys.setdefault((item.user_id, item.delivery.channel, item.frequency), item)
    batches = []
    for (user_id, channel, frequency), item in keys.items():
        hour, day = schedule.get((item.preference_id, channel), (None, None))
        send_at = digest_next_send_at(frequency=frequency, now=now, timezone_name=item.timezone, hour=hour, day_of_week=day)
        batches.append(NotificationBatch(
            user_id=user_id, organization_id=organization_id, channel=channel, frequency=frequency,
            batch_type=BatchType.DIGEST, status=BatchStatus.OPEN, window_start=now, window_end=send_at,
            scheduled_for=send_at,
        ))
    # ON CONFLICT DO NOTHING against the partial unique index: a concurrent event that opened
    # the same batch first wins, and both read the same row back below.
    NotificationBatch.objects.bulk_create(batches, ignore_conflicts=True)
    condition = Q()
    for user_id, channel, frequency in keys:
        condition |= Q(user_id=user_id, channel=channel, frequency=frequency)
    open_ids = {
        (b.user_id, b.channel, b.frequency): b.pk
        for b in NotificationBatch.objects.filter(condition, organization_id=organization_id, status=BatchStatus.OPEN)
    }
    collected = []
    for item in wanted:
        batch_id = open_ids.get((item.user_id, item.delivery.channel, item.frequency))
        if batch_id is None:  # closed between the insert and the read: send normally
            continue
        item.delivery.status = DeliveryStatus.DIGESTED
        item.delivery.batch_id = batch_id
        item.delivery.skip_reason = f"collected into the {FREQUENCY_LABEL.get(item.frequency, item.frequency)} digest"
        collected.append(item.delivery)
    return collected


# --- sending -------------------------------------------------------------------------------------


def _items_context(rows: list[Notification]) -> list[dict[str, Any]]:
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    labels = dict(EventCategory.choices)
    for n in sorted(rows, key=lambda n: (n.category, n.created_at)):
        groups.setdefault(n.category, []).append({
            "id": n.pk, "title": n.title or n.resource_name or n.event_type, "body": n.body,
            "event_type": n.event_type, "criticality": n.criticality, "created_at": n.created_at,
            "action_url": link_safe_or_empty(n.action_url),
        })
    return [{"category": cat, "label": labels.get(cat, cat.title()), "items": items, "count": len(items)}
            for cat, items in groups.items()]


def _digest_notification(batch: NotificationBatch, rows: list[Notification], *, reason: str) -> Notification:
    user = batch.user
    groups = _items_context(rows)
    label = FREQUENCY_LABEL.get(batch.frequency, "") if batch.batch_type == BatchType.DIGEST else ""
    title = (f"Your {label} digest: " if label else "While you were away: ") + (
        f"{len(rows)} notification" + ("s" if len(rows) != 1 else "")
    )
    context = {"title": title, "groups": groups, "total": len(rows), "user": user, "reason": reason}
    return Notification(
        organization_id=batch.organization_id, recipient=user, recipient_email=user.email, recipient_phone=user.phone,
        recipient_locale=user.locale, recipient_timezone=user.timezone, event_type=DIGEST_EVENT_TYPE,
        category=groups[0]["category"] if len({g["category"] for g in groups}) == 1 else EventCategory.SYSTEM_ADMIN,
        criticality=max((n.criticality for n in rows), key=lambda c: Criticality.rank_of(c)),
        title=title[:255],
        body=render_to_string("reliability/digest.txt", context).strip(),
        body_html=render_to_string("reliability/digest.html", context),
        data={"batch_id": batch.pk, "notification_ids": [n.pk for n in rows],
              "categories": {g["category"]: g["count"] for g in groups}},
        metadata={"digest_batch_id": batch.pk, "reason": reason},
        channels_requested=[batch.channel], status=NotificationStatus.PROCESSING, batch=batch,
        trace={batch.channel: {"used": True, "reason": reason}},
    )


def _batch_send(batch: NotificationBatch, *, now: datetime, reason: str) -> int | None:
    """Send one locked batch; returns the digest delivery id (None when the batch was empty)."""
    notification_ids = list(
        NotificationDelivery.objects.filter(batch_id=batch.pk, status=DeliveryStatus.DIGESTED)
        .exclude(notification__status__in=[NotificationStatus.EXPIRED, NotificationStatus.CANCELLED])
        .exclude(notification__expires_at__lte=now)
        .values_list("notification_id", flat=True)
    )
    rows = list(Notification.objects.filter(pk__in=set(notification_ids)).exclude(event_type=DIGEST_EVENT_TYPE))
    if not rows:
        batch.status = BatchStatus.CANCELLED
        batch.sent_at = None
        batch.notification_count = 0
        batch.save(update_fields=["status", "sent_at", "notification_count", "updated_at"])
        return None
    digest = _digest_notification(batch, rows, reason=reason)
    digest.save()
    address = notification_address(digest, batch.channel)
    delivery = NotificationDelivery.objects.create(
        notification=digest, organization_id=batch.organization_id, channel=batch.channel,
        status=DeliveryStatus.PENDING if address else DeliveryStatus.SKIPPED, recipient_address=address,
        locale=digest.recipient_locale, batch=batch, skip_reason="" if address else "no address for this channel",
    )
    Notification.objects.filter(pk__in=[n.pk for n in rows], batch__isnull=True).update(batch=batch)
    batch.status = BatchStatus.SENT
    batch.sent_at = now
    batch.notification_count = len(rows)
    batch.save(update_fields=["status", "sent_at", "notification_count", "updated_at"])
    NotificationAuditLog.objects.create(
        organization_id=batch.organization_id, notification=digest, delivery=delivery,
        action=AuditAction.NOTIFICATION_PROCESSED,
        details={"digest_batch_id": batch.pk, "items": len(rows), "channel": batch.channel, "reason": reason},
    )
    if address:
        deliveries_enqueue(delivery_ids=[delivery.pk])
    return delivery.pk


def digests_send_due(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send every OPEN batch whose time has come (beat). Empty batches are cancelled."""
    now = now or timezone.now()
    sent = cancelled = 0
    while sent + cancelled < limit:
        with transaction.atomic():
            batches = list(
                NotificationBatch.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("user")
                .filter(status=BatchStatus.OPEN, scheduled_for__lte=now)
                .order_by("scheduled_for", "pk")[:50]
            )
            if not batches:
                break
            for batch in batches:
                # Closing it first lets the next event open a fresh batch right away.
                batch.status = BatchStatus.SENDING
                batch.save(update_fields=["status", "updated_at"])
                if _batch_send(batch, now=now, reason=f"{batch.frequency.lower()} digest") is None:
                    cancelled += 1
                else:
                    sent += 1
    if sent or cancelled:
        logger.info("digests: %s sent, %s empty batches cancelled", sent, cancelled)
    return {"sent": sent, "cancelled": cancelled}


def digest_send_now(
    *, user_id: int, organization_id: int, channel: str, delivery_ids: list[int], reason: str, now: datetime | None = None
) -> int | None:
    """Send these deliveries as one digest now (quiet-hours release of a burst); call in a transaction."""
    now = now or timezone.now()
    batch = NotificationBatch.objects.create(
        user_id=user_id, organization_id=organization_id, channel=channel, frequency=BatchFrequency.HOURLY,
        batch_type=BatchType.GROUPED, status=BatchStatus.SENDING, window_start=now, window_end=now, scheduled_for=now,
    )
    NotificationDelivery.objects.filter(pk__in=delivery_ids).update(
        status=DeliveryStatus.DIGESTED, batch=batch, updated_at=now, skip_reason=reason
    )
    return _batch_send(batch, now=now, reason=reason)



def digest_items_for_routes(
    *, organization_id: int, notifications: list[Notification], routes: list[Any], deliveries: list[NotificationDelivery],
    criticality: str, now: datetime,
) -> list[int]:
    """Intake hook: collect the routed deliveries whose channel preference asks for a digest.

    ``routes`` are routing's RecipientRoute objects (one per notification, same order), the
    deliveries not saved yet. Returns the ids of notifications that went entirely to digests.
    No query at all when nobody asked for a digest.
    """
    if criticality == Criticality.CRITICAL:
        return []
    by_key = {(id(d.notification), d.channel): d for d in deliveries}
    items: list[DigestItem] = []
    for n, route in zip(notifications, routes):
        for ch in route.channels:
            frequency = getattr(ch, "digest_frequency", "")
            if ch.status != DeliveryStatus.PENDING or not frequency or frequency == DigestFrequency.NONE:
                continue
            delivery = by_key.get((id(n), ch.channel))
            if delivery is None or not route.recipient.user_id:
                continue
            items.append(DigestItem(
                delivery=delivery, user_id=route.recipient.user_id, frequency=frequency, criticality=criticality,
                timezone=route.recipient.timezone or "UTC", preference_id=getattr(ch, "preference_id", None),
            ))
    if not items:
        return []
    collected = digest_collect(organization_id=organization_id, items=items, now=now)
    touched = {id(d.notification) for d in collected}
    done = []
    for n in notifications:
        if id(n) not in touched:
            continue
        statuses = {d.status for d in deliveries if d.notification is n}
        if DeliveryStatus.DIGESTED in statuses and not statuses & {DeliveryStatus.PENDING, DeliveryStatus.HELD}:
            n.status = NotificationStatus.DIGESTED
            done.append(n.pk)
    return done
