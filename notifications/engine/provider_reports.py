"""What the provider layer asks of the notification platform, which owns the deliveries and
the audit log: who sent a message (webhook verification), how a provider's sends went (its
health and cost figures), and the audit rows of provider changes. Connected to
`providers.hooks` in `NotificationsConfig.ready()`, like `provider_events`.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q, Sum

from notifications.enums import DELIVERY_FAILURE_STATUSES, DELIVERY_SUCCESS_STATUSES, DeliveryStatus
from notifications.models import NotificationAuditLog, NotificationDelivery


def deliveries_sent_by(*, provider_message_ids: Iterable[str], codes: Iterable[str] | None = None,
                       channel: str | None = None) -> set[tuple[int | None, str]]:
    ids = [str(i) for i in provider_message_ids if i]
    if not ids:
        return set()
    qs = NotificationDelivery.objects.filter(provider_message_id__in=ids)
    if codes is not None:
        qs = qs.filter(provider__in=list(codes))
    if channel:
        qs = qs.filter(channel=channel)
    return set(qs.values_list("provider_record_id", "provider"))


def deliveries_sent_counts(*, provider_id: int, since: datetime) -> tuple[int, int]:
    # A message refused at once was never sent: it counts by when it failed.
    counts = NotificationDelivery.objects.filter(Q(sent_at__gte=since) | Q(failed_at__gte=since), provider_record_id=provider_id).aggregate(
        ok=Count("pk", filter=Q(status__in=DELIVERY_SUCCESS_STATUSES)),
        failed=Count("pk", filter=Q(status__in=DELIVERY_FAILURE_STATUSES)),
    )
    return counts["ok"], counts["failed"]


def deliveries_sent_summary(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = (
        NotificationDelivery.objects.filter(sent_at__gte=start, sent_at__lt=end).exclude(provider="")
        .values("provider_record_id", "provider", "channel")
        .annotate(
            total=Count("pk"),
            delivered=Count("pk", filter=Q(status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.OPENED, DeliveryStatus.CLICKED])),
            succeeded=Count("pk", filter=Q(status__in=DELIVERY_SUCCESS_STATUSES)),
            failed=Count("pk", filter=Q(status__in=DELIVERY_FAILURE_STATUSES)),
            cost=Sum("cost_amount"),
            priced=Count("pk", filter=Q(cost_amount__isnull=False)),
            currency=Max("cost_currency"),
        )
    )
    return [dict(row) for row in rows]


def provider_audit_write(*, rows: list[dict[str, Any]]) -> None:
    NotificationAuditLog.objects.bulk_create([NotificationAuditLog(**row) for row in rows])
