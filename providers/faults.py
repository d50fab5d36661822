"""Provider faults found while sending: refused credentials (401/403) and circuits opening.
Both are the provider account's trouble, not the message's: the failover loop
(providers.services) moves on to the next provider and operators are alerted (providers.hooks)."""
from __future__ import annotations

from typing import Any, TypeGuard

from .base import CREDENTIALS_ERROR_CODES, ProviderPermanentError
from .enums import ProviderHealthStatus
from .hooks import ProviderAlertKind, provider_alert_report
from .models import NotificationProvider
from .resilience import CircuitBreaker, CircuitState
from .selectors import ProviderBinding


def is_credentials_error(exc: Any) -> TypeGuard[ProviderPermanentError]:
    """401/403 or a provider's own "bad credentials" answer: the account is broken, not the message."""
    return isinstance(exc, ProviderPermanentError) and str(exc.code or "") in CREDENTIALS_ERROR_CODES


def provider_credentials_refused(*, binding: ProviderBinding, breaker: CircuitBreaker, detail: str) -> None:
    """Open the provider's circuit at once, mark its record unhealthy (the next health check or
    a save with new credentials clears it) and alert operators — once per outage."""
    breaker.trip()
    if binding.record is not None:
        changed = NotificationProvider.objects.filter(pk=binding.record.pk).exclude(health_status=ProviderHealthStatus.UNHEALTHY).update(
            health_status=ProviderHealthStatus.UNHEALTHY, health_message=f"Credentials refused: {detail}"[:500])
        binding.record.health_status = ProviderHealthStatus.UNHEALTHY
        if changed:
            provider_alert_report(kind=ProviderAlertKind.CREDENTIALS_REFUSED, provider_id=binding.record_id, provider_code=binding.code,
                                  channel=binding.channel, organization_id=binding.organization_id, detail=detail)
            return
    provider_alert_report(kind=ProviderAlertKind.CIRCUIT_OPEN, provider_id=binding.record_id, provider_code=binding.code,
                          channel=binding.channel, organization_id=binding.organization_id, detail=f"Credentials refused: {detail}")


def breaker_failure(binding: ProviderBinding, breaker: CircuitBreaker) -> None:
    if breaker.record_failure() == CircuitState.OPEN:
        provider_alert_report(kind=ProviderAlertKind.CIRCUIT_OPEN, provider_id=binding.record_id, provider_code=binding.code,
                              channel=binding.channel, organization_id=binding.organization_id,
                              detail=f"{breaker.policy.threshold} transient failures within {int(breaker.policy.window)} s")
