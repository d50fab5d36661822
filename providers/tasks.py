"""Provider maintenance tasks, scheduled in `config.beat`: health checks, daily cost
aggregation. (Delivery status polling is the notification platform's: `notifications.tasks`.)"""
from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from .maintenance import provider_costs_aggregate, providers_health_check_all


@shared_task(name="providers.health_check_all", ignore_result=True)
def health_check_all_task() -> int:
    return len(providers_health_check_all())


@shared_task(name="providers.aggregate_costs", ignore_result=True)
def aggregate_costs_task(day: str | None = None) -> int:
    """Yesterday and today by default (yesterday's late webhooks still change its totals)."""
    if day:
        return provider_costs_aggregate(day=date.fromisoformat(day))
    today = timezone.localdate()
    return provider_costs_aggregate(day=today - timedelta(days=1)) + provider_costs_aggregate(day=today)
