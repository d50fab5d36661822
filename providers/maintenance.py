"""Provider maintenance, run from beat (`providers.tasks`) and the admin: health checks of
every record and the daily cost aggregation."""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from common.exceptions import (
    ProviderPermanentError,
    ProviderTransientError,
)
from notifications.enums import (
    AuditAction,
    AuditActorType,
    AuditOutcome,
)

from .base import (
    HealthResult,
)
from .enums import ProviderHealthStatus
from .hooks import audit_report, sent_counts, sent_summary
from .hooks import ProviderAlertKind, provider_alert_report
from .models import (
    NotificationProvider,
    ProviderCostDaily,
    ProviderHealthMetric,
)
from .resilience import CircuitBreaker, CircuitPolicy, RateLimiter
from .selectors import (
    binding_for_record,
)

from .endpoints import EndpointRefused
from .services import provider_instantiate

logger = logging.getLogger(__name__)


# --- health ------------------------------------------------------------------------------


def provider_success_rate_24h(*, provider_id: int, now: datetime | None = None) -> Decimal | None:
    ok, failed = sent_counts(provider_id=provider_id, since=(now or timezone.now()) - timedelta(hours=24))
    total = ok + failed
    if not total:
        return None
    return (Decimal(ok) * 100 / Decimal(total)).quantize(Decimal("0.01"))


def provider_health_check(*, provider_id: int) -> ProviderHealthMetric:
    """Run the provider's health check now: update its status and write a metric row.

    HEALTHY when the check passes within `degraded_after_ms` (config, default 2000 ms),
    DEGRADED when it passes slowly, UNHEALTHY when it fails. Never raises for a provider's
    failure — that is what the result records."""
    record = NotificationProvider.objects.get(pk=provider_id)
    binding = binding_for_record(record)
    started = time.monotonic()
    provider = None
    try:
        provider = provider_instantiate(binding)
        result = provider.health_check()
    except (ProviderPermanentError, ProviderTransientError) as exc:
        result = HealthResult(ok=False, response_time_ms=int((time.monotonic() - started) * 1000), detail=str(exc.detail))
    except EndpointRefused as exc:
        result = HealthResult(ok=False, response_time_ms=int((time.monotonic() - started) * 1000), detail=str(exc))
    except Exception as exc:  # a provider bug must not stop the beat run for the others
        logger.exception("health check of provider %s crashed", record.pk)
        result = HealthResult(ok=False, response_time_ms=int((time.monotonic() - started) * 1000), detail=f"check crashed: {exc.__class__.__name__}")
    if provider is not None:
        result.detail = provider.redact(result.detail or "")
    degraded_after = int(record.config.get("degraded_after_ms") or 2000)
    if not result.ok:
        status = ProviderHealthStatus.UNHEALTHY
    elif result.response_time_ms is not None and result.response_time_ms > degraded_after:
        status = ProviderHealthStatus.DEGRADED
    else:
        status = ProviderHealthStatus.HEALTHY
    now = timezone.now()
    remaining = result.rate_limit_remaining
    if remaining is None:
        remaining = RateLimiter(binding.key, per_minute=record.rate_limit_per_minute, per_day=record.daily_limit).remaining()
    last_cost = (
        ProviderCostDaily.objects.filter(provider=record, average_cost_per_message__isnull=False)
        .order_by("-date").values_list("average_cost_per_message", flat=True).first()
    )
    with transaction.atomic():
        NotificationProvider.objects.filter(pk=record.pk).update(
            health_status=status, health_message=result.detail[:500], last_health_check_at=now, updated_at=now
        )
        metric = ProviderHealthMetric.objects.create(
            provider=record, provider_code=record.code, channel=record.channel, checked_at=now, is_healthy=result.ok,
            response_time_ms=result.response_time_ms, error_message="" if result.ok else result.detail[:2000],
            success_rate_24h=provider_success_rate_24h(provider_id=record.pk, now=now), cost_per_message=last_cost,
            rate_limit_remaining=remaining,
        )
        audit_report(dict(
            organization_id=record.organization_id, action=AuditAction.PROVIDER_HEALTH_CHECK,
            outcome=AuditOutcome.SUCCESS if result.ok else AuditOutcome.FAILURE, actor_type=AuditActorType.SYSTEM,
            actor_label=record.code, provider_id=record.pk, details={"status": status, "response_time_ms": result.response_time_ms},
            error_message="" if result.ok else result.detail[:500],
        ))
    if result.ok:
        # A passing check is as good as a successful probe: close a tripped circuit.
        CircuitBreaker(binding.key, CircuitPolicy.for_config(binding.config)).record_success()
    elif record.health_status != ProviderHealthStatus.UNHEALTHY and record.is_active:
        provider_alert_report(kind=ProviderAlertKind.UNHEALTHY, provider_id=record.pk, provider_code=record.code,
                              channel=record.channel, organization_id=record.organization_id, detail=result.detail)
    return metric


def providers_health_check_all() -> dict[int, bool]:
    return {pk: provider_health_check(provider_id=pk).is_healthy
            for pk in NotificationProvider.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)}


# --- cost -----------------------------------------------------------------------------------


@transaction.atomic
def provider_costs_aggregate(*, day: date) -> int:
    """(Re)compute ProviderCostDaily for `day` from the deliveries sent that day. Idempotent."""
    start = timezone.make_aware(datetime.combine(day, datetime.min.time()), timezone.get_current_timezone())
    end = start + timedelta(days=1)
    rows = sent_summary(start=start, end=end)
    count = 0
    for row in rows:
        total_cost = row["cost"] or Decimal(0)
        successful = row["succeeded"]
        values = {
            "provider_code": row["provider"],
            "channel": row["channel"],
            "currency": row["currency"] or "",
            "total_messages": row["total"],
            "delivered_messages": row["delivered"],
            "failed_messages": row["failed"],
            "total_cost": total_cost,
            "average_cost_per_message": (total_cost / row["priced"]).quantize(Decimal("0.000001")) if row["priced"] else None,
            "delivery_success_rate": (Decimal(successful) * 100 / row["total"]).quantize(Decimal("0.01")) if row["total"] else None,
            "cost_per_successful_delivery": (total_cost / successful).quantize(Decimal("0.000001")) if successful and row["priced"] else None,
        }
        if row["provider_record_id"]:
            ProviderCostDaily.objects.update_or_create(provider_id=row["provider_record_id"], date=day, defaults=values)
        else:
            ProviderCostDaily.objects.update_or_create(provider=None, provider_code=row["provider"], channel=row["channel"], date=day, defaults=values)
        count += 1
    return count
