"""The operator dashboard's numbers: a handful of aggregate queries, no per-row work.

Deliveries per channel and per provider over 24 hours and 7 days (volume, success rate,
p50/p95 send latency = created → sent), dead letters, held and scheduled work, provider health
and circuit state, cost per day. PostgreSQL computes percentiles with percentile_cont; SQLite
(`make run`) reads them with one ordered OFFSET query per group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, FloatField, Q, Sum
from django.utils import timezone

from notifications.enums import (
    DELIVERY_FAILURE_STATUSES,
    DELIVERY_SUCCESS_STATUSES,
    DeadLetterStatus,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.models import DeadLetter, Notification, NotificationDelivery
from providers.models import NotificationProvider

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


class Percentile(Aggregate):
    """percentile_cont(fraction) WITHIN GROUP (ORDER BY expression) — PostgreSQL."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass
class DeliveryStats:
    key: str
    total: int = 0
    ok: int = 0
    failed: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def success_rate(self) -> float | None:
        finished = self.ok + self.failed
        return round(100.0 * self.ok / finished, 1) if finished else None


def _latency_seconds():
    if connection.vendor == "postgresql":
        from django.db.models import Func

        return Func(F("sent_at") - F("created_at"), function="EXTRACT", template="EXTRACT(EPOCH FROM %(expressions)s)",
                    output_field=FloatField())
    return ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())


def delivery_stats(*, since: datetime, by: str) -> list[DeliveryStats]:
    """Per `by` ("channel" or "provider"): volume, successes, failures, p50/p95 send latency."""
    rows = (
        NotificationDelivery.objects.filter(created_at__gte=since)
        .values(by)
        .annotate(total=Count("pk"), ok=Count("pk", filter=Q(status__in=DELIVERY_SUCCESS_STATUSES)),
                  failed=Count("pk", filter=Q(status__in=DELIVERY_FAILURE_STATUSES)))
        .order_by("-total")
    )
    stats = {row[by] or "—": DeliveryStats(key=row[by] or "—", total=row["total"], ok=row["ok"], failed=row["failed"]) for row in rows}
    sent = NotificationDelivery.objects.filter(created_at__gte=since, sent_at__isnull=False)
    if connection.vendor == "postgresql":
        latency = _latency_seconds()
        for row in sent.values(by).annotate(p50=Percentile(latency, 0.5), p95=Percentile(latency, 0.95)).order_by():
            item = stats.get(row[by] or "—")
            if item is not None:
                item.p50_ms, item.p95_ms = row["p50"] * 1000, row["p95"] * 1000
    else:
        for key, item in stats.items():
            group = sent.filter(**{by: "" if key == "—" else key}).annotate(latency=_latency_seconds()).order_by("latency")
            n = group.count()
            if n:
                for attr, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95)):
                    value = group.values_list("latency", flat=True)[min(n - 1, int(fraction * n))]
                    setattr(item, attr, value.total_seconds() * 1000)
    return list(stats.values())


@dataclass
class ProviderRow:
    record: NotificationProvider
    circuit: str
    response_times: list[int] = field(default_factory=list)


def providers_health(*, since: datetime) -> list[ProviderRow]:
    from providers.models import ProviderHealthMetric
    from providers.resilience import CircuitBreaker, CircuitPolicy
    from providers.selectors import binding_for_record

    records = list(NotificationProvider.objects.filter(is_active=True).select_related("organization").order_by("channel", "priority", "pk"))
    history: dict[int, list[int]] = {r.pk: [] for r in records}
    metrics = (ProviderHealthMetric.objects.filter(provider_id__in=history, checked_at__gte=since)
               .order_by("checked_at").values_list("provider_id", "response_time_ms", "is_healthy"))
    for provider_id, ms, healthy in metrics:
        # An unhealthy check is drawn at the top of the sparkline's scale.
        history[provider_id].append(int(ms or 0) if healthy else -1)
    rows = []
    for record in records:
        binding = binding_for_record(record)
        try:
            state = CircuitBreaker(binding.key, CircuitPolicy.for_config(binding.config)).state()
        except Exception:  # the cache is down: the table still shows the rest
            state = "unknown"
        rows.append(ProviderRow(record=record, circuit=state, response_times=history[record.pk][-48:]))
    return rows


def costs_per_day(*, days: int, today: date) -> list[dict[str, Any]]:
    from providers.models import ProviderCostDaily

    since = today - timedelta(days=days - 1)
    totals = {since + timedelta(days=i): Decimal(0) for i in range(days)}
    currency = ""
    for day, cur, total in (ProviderCostDaily.objects.filter(date__gte=since).values_list("date", "currency")
                            .annotate(total=Sum("total_cost")).order_by()):
        totals[day] = totals.get(day, Decimal(0)) + (total or 0)
        currency = currency or cur
    return [{"date": d, "total": t, "currency": currency} for d, t in sorted(totals.items())]


def counts(*, now: datetime) -> dict[str, int]:
    waiting = NotificationDelivery.objects.filter(status__in=(DeliveryStatus.HELD, DeliveryStatus.PENDING)).aggregate(
        held=Count("pk", filter=Q(status=DeliveryStatus.HELD)), pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)))
    return {
        "dead_letters": DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count(),
        "held": waiting["held"],
        "pending": waiting["pending"],
        "scheduled": Notification.objects.filter(status=NotificationStatus.SCHEDULED).count(),
    }


def operator_dashboard(*, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "now": now,
        "windows": {name: {"since": now - span,
                           "channels": delivery_stats(since=now - span, by="channel"),
                           "providers": delivery_stats(since=now - span, by="provider")}
                    for name, span in WINDOWS.items()},
        "counts": counts(now=now),
        "providers": providers_health(since=now - timedelta(hours=24)),
        "costs": costs_per_day(days=14, today=timezone.localdate(now)),
    }
