"""Operator alerts: a provider turning unhealthy, a circuit opening or credentials refused
(connected to providers.hooks), and too many deliveries ending in the dead-letter queue
(`dead_letter_rate_check`, beat) become one `system.outage` notification to the operators,
through the platform itself.

Operators are the owners and admins of the organization whose provider failed; for the
platform's own providers (and the dead-letter rate) those of the organization named by
`OPERATOR_ALERTS_ORGANIZATION` (a slug; unset: the alert is only logged and audited).
One outage is one alert: a provider (or the dead-letter rate) alerts at most once per
`OPERATOR_ALERT_DEDUP_SECONDS` (3600), held by a cache key every worker shares and by the
event's deduplication key.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, MembershipRole, Organization
from notifications.enums import AuditAction, AuditActorType, AuditOutcome, DeliveryStatus
from notifications.models import DeadLetter, NotificationAuditLog, NotificationDelivery
from providers.hooks import ProviderAlertKind

logger = logging.getLogger(__name__)

OUTAGE_EVENT_TYPE = "system.outage"
DEAD_LETTER_RATE_KIND = "dead_letter_rate"

_IMPACT = {
    ProviderAlertKind.UNHEALTHY: "its health check fails; messages go to the channel's other providers",
    ProviderAlertKind.CIRCUIT_OPEN: "its circuit breaker opened after repeated failures; messages go to the channel's other providers",
    ProviderAlertKind.CREDENTIALS_REFUSED: "it refuses its credentials (401/403); messages go to the channel's other providers "
                                           "until its credentials are fixed",
}


def _dedup_seconds() -> int:
    return int(getattr(settings, "OPERATOR_ALERT_DEDUP_SECONDS", 3600))


def _operator_organization(organization_id: int | None) -> Organization | None:
    if organization_id is not None:
        return Organization.objects.filter(pk=organization_id).first()
    slug = getattr(settings, "OPERATOR_ALERTS_ORGANIZATION", "")
    return Organization.objects.filter(slug=slug).first() if slug else None


def _operators(organization: Organization) -> list[int]:
    return list(Membership.objects.filter(organization=organization, role__in=(MembershipRole.OWNER, MembershipRole.ADMIN),
                                          user__is_active=True).order_by("user_id").values_list("user_id", flat=True))


def _alert(*, subject: str, organization_id: int | None, component: str, impact: str, kind: str, details: dict[str, Any]) -> bool:
    """Emit one outage notification to the operators, unless this subject alerted within the window.

    In a savepoint of its own: a send or a health check that noticed the outage may be inside
    a transaction, which a failing alert must not break."""
    window = _dedup_seconds()
    key = f"opalert:{subject}"
    if not cache.add(key, timezone.now().isoformat(), window):
        return False
    try:
        with transaction.atomic():
            return _alert_emit(subject=subject, organization_id=organization_id, component=component, impact=impact, kind=kind,
                               details=details, window=window)
    except Exception:
        cache.delete(key)  # not raised: the next report of this outage tries again
        raise


def _alert_emit(*, subject: str, organization_id: int | None, component: str, impact: str, kind: str, details: dict[str, Any],
                window: int) -> bool:
    organization = _operator_organization(organization_id)
    operators = _operators(organization) if organization is not None else []
    NotificationAuditLog.objects.create(
        organization_id=organization.pk if organization else None, action=AuditAction.PROVIDER_HEALTH_CHECK,
        outcome=AuditOutcome.FAILURE, actor_type=AuditActorType.SYSTEM, actor_label="operator-alert",
        details={"alert": kind, "component": component, "operators": len(operators), **details},
        error_message=impact[:500],
    )
    if organization is None or not operators:
        logger.error("operator alert (%s) for %s has no one to go to: %s", kind, component, impact)
        return False
    from notifications.engine.intake import event_emit

    now = timezone.now()
    bucket = int(now.timestamp() // window)
    event_emit(organization=organization, type=OUTAGE_EVENT_TYPE, recipient_ids=operators, source="platform",
               data={"component": component, "startedAt": now.isoformat(timespec="seconds"), "impact": impact, "alert": kind},
               deduplication_key=f"operator-alert:{subject}:{bucket}")
    return True


def provider_alert_raise(*, kind: str, provider_id: int | None, provider_code: str, channel: str,
                         organization_id: int | None, detail: str) -> bool:
    """providers.hooks' alert handler. True when an alert went out (False: deduplicated or no one to tell)."""
    subject = f"provider:{provider_id if provider_id is not None else provider_code}"
    component = f"{channel.lower()} provider {provider_code}" + (f" (#{provider_id})" if provider_id is not None else "")
    impact = f"{component.capitalize()}: {_IMPACT.get(kind, kind)}. {detail}".strip()[:480]
    return _alert(subject=subject, organization_id=organization_id, component=component, impact=impact, kind=kind,
                  details={"provider_id": provider_id, "provider_code": provider_code, "channel": channel})


def dead_letter_rate_check(*, window_minutes: int | None = None, threshold_percent: float | None = None,
                           minimum: int | None = None) -> dict[str, Any]:
    """Share of the deliveries that ended in the last window which went to the dead-letter
    queue; over `DEAD_LETTER_ALERT_PERCENT` (5) with at least `DEAD_LETTER_ALERT_MINIMUM` (20)
    dead letters, the platform's operators are alerted (once per dedup window)."""
    window_minutes = window_minutes or int(getattr(settings, "DEAD_LETTER_ALERT_WINDOW_MINUTES", 15))
    threshold = threshold_percent if threshold_percent is not None else float(getattr(settings, "DEAD_LETTER_ALERT_PERCENT", 5))
    minimum = minimum if minimum is not None else int(getattr(settings, "DEAD_LETTER_ALERT_MINIMUM", 20))
    since = timezone.now() - timedelta(minutes=window_minutes)
    dead = DeadLetter.objects.filter(created_at__gte=since).count()
    finished = NotificationDelivery.objects.filter(
        Q(sent_at__gte=since) | Q(failed_at__gte=since),
        status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED),
    ).count()
    rate = (100.0 * dead / finished) if finished else (100.0 if dead else 0.0)
    alerted = False
    if dead >= minimum and rate > threshold:
        alerted = _alert(subject=DEAD_LETTER_RATE_KIND, organization_id=None, component="delivery pipeline",
                         impact=f"{dead} deliveries ({rate:.1f}% of {finished}) went to the dead-letter queue in the last "
                                f"{window_minutes} minutes (threshold {threshold:g}%).",
                         kind=DEAD_LETTER_RATE_KIND, details={"dead_letters": dead, "finished": finished, "rate": round(rate, 2)})
    return {"dead_letters": dead, "finished": finished, "rate": round(rate, 2), "alerted": alerted}
