"""PROVIDER_FAILOVER audit rows, written by the notification platform from what the provider
layer reports: every `SendOutcome` (and every error it raises) carries the attempts it made.

The delivery engine adds these rows to the audit trail of the batch it records, in the same
transaction as the delivery rows (`delivery_record._record`); senders outside the engine (a
template's test send, account emails) go through `send_with_failover_audit`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from notifications.enums import AuditAction, AuditActorType, AuditOutcome
from notifications.models import NotificationAuditLog
from providers.base import OutboundMessage
from providers.services import AttemptOutcome, SendOutcome, provider_send_with_failover

# Passed over: a transient error, or credentials the provider refused (401/403).
_PASSED_OVER = (AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.CREDENTIALS_REFUSED)
_TRIED = (AttemptOutcome.SENT, AttemptOutcome.PERMANENT_ERROR, *_PASSED_OVER)


def failover_audit_rows(*, organization_id: int | None, channel: str, attempts: Iterable[Any],
                        delivery_id: int | None = None, notification_id: int | None = None) -> list[NotificationAuditLog]:
    """One PROVIDER_FAILOVER row per provider that failed (transiently, or refused its
    credentials) and was passed over;
    SUCCESS when a later provider sent the message."""
    attempts = list(attempts or [])
    rows = []
    for index, attempt in enumerate(attempts):
        if attempt.outcome not in _PASSED_OVER:
            continue
        later = [a for a in attempts[index + 1:] if a.outcome in _TRIED]
        rows.append(NotificationAuditLog(
            organization_id=organization_id,
            action=AuditAction.PROVIDER_FAILOVER,
            outcome=AuditOutcome.SUCCESS if any(a.outcome == AttemptOutcome.SENT for a in later) else AuditOutcome.FAILURE,
            actor_type=AuditActorType.PROVIDER,
            actor_label=attempt.provider_code,
            provider_id=attempt.provider_id,
            delivery_id=delivery_id,
            notification_id=notification_id,
            details={"channel": channel, "from": attempt.provider_code, "to": later[0].provider_code if later else None,
                     "error_code": attempt.error_code},
            error_message=(attempt.error or "")[:500],
        ))
    return rows


def send_with_failover_audit(*, organization_id: int | None, channel: str, message: OutboundMessage) -> SendOutcome:
    """`provider_send_with_failover` for a message that is no delivery: the providers passed
    over are audited all the same (sent or not), then the outcome or the error goes back."""
    try:
        outcome = provider_send_with_failover(organization_id=organization_id, channel=channel, message=message)
    except Exception as exc:
        _write(organization_id=organization_id, channel=channel, attempts=getattr(exc, "attempts", None) or [])
        raise
    _write(organization_id=organization_id, channel=channel, attempts=outcome.attempts)
    return outcome


def _write(*, organization_id: int | None, channel: str, attempts: Iterable[Any]) -> None:
    rows = failover_audit_rows(organization_id=organization_id, channel=channel, attempts=attempts)
    if rows:
        NotificationAuditLog.objects.bulk_create(rows)
