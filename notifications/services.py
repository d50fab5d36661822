"""Public write services of the notification platform (intake side).

Other apps call `event_emit` (invitations, incoming webhooks); the REST API and the AMQP
consumer go through `events_emit_idempotent` / `event_from_bus`, which normalize and
validate the payload the same way and then call `event_emit`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from common.exceptions import Conflict, Unprocessable, ValidationError
from notifications.engine.audit import AuditActor
from notifications.engine.intake import EmitResult, event_emit
from notifications.engine.payloads import (
    event_emit_payload,
    event_from_bus,
    event_payload_hash,
    event_validated_payload,
    organization_resolve,
)
from notifications.engine.preferences import preferences_replace
from notifications.engine.presence import presence_heartbeat
from notifications.engine.quiet_hours import quiet_hours_set, quiet_hours_set_dnd
from notifications.enums import IdempotencyStatus
from notifications.models import IdempotencyRecord

# The column's length: a longer key is refused, never cut (two keys would become one).
IDEMPOTENCY_KEY_MAX_LENGTH: int = IdempotencyRecord._meta.get_field("key").max_length or 0

__all__ = [
    "AuditActor",
    "EmitResult",
    "IdempotentAnswer",
    "event_emit",
    "event_emit_payload",
    "event_from_bus",
    "event_validated_payload",
    "events_emit_idempotent",
    "idempotency_claim",
    "organization_resolve",
    "preferences_replace",
    "presence_heartbeat",
    "quiet_hours_set",
    "quiet_hours_set_dnd",
]

IDEMPOTENCY_TTL = timedelta(hours=24)
# An IN_FLIGHT record older than this belongs to a request that died: the key is taken over.
IDEMPOTENCY_STALE_AFTER = timedelta(minutes=5)


@dataclass
class IdempotentAnswer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def idempotency_claim(*, organization: Organization, key: str, request_hash: str) -> tuple[IdempotencyRecord | None, IdempotencyRecord | None]:
    """Record the key as IN_FLIGHT in its own committed transaction.

    Returns (claimed record, None) for a first request, (None, completed record) for a
    replay. Raises Unprocessable (422) when the key was used with another body and
    Conflict (409) while the first request is still in flight. The unique constraint on
    (organization, key) settles concurrent first requests.
    """
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    organization=organization, key=key, request_hash=request_hash,
                    status=IdempotencyStatus.IN_FLIGHT, expires_at=now + IDEMPOTENCY_TTL,
                )
            return record, None
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
            if existing is None:
                continue  # released meanwhile: try again
            expired = existing.expires_at is not None and existing.expires_at <= now
            stale = existing.status == IdempotencyStatus.IN_FLIGHT and existing.created_at < now - IDEMPOTENCY_STALE_AFTER
            if expired or stale:
                IdempotencyRecord.objects.filter(pk=existing.pk, status=existing.status, created_at=existing.created_at).delete()
                continue
            if existing.request_hash != request_hash:
                raise Unprocessable("This Idempotency-Key was already used with a different request body.", code="idempotency_mismatch")
            if existing.status == IdempotencyStatus.IN_FLIGHT:
                raise Conflict("A request with this Idempotency-Key is still being processed.", code="idempotency_in_flight")
            return None, existing
    raise Conflict("Could not claim the Idempotency-Key; retry.", code="idempotency_contention")


def events_emit_idempotent(
    *,
    organization: Organization,
    payload: dict[str, Any],
    raw_body: Any,
    idempotency_key: str | None,
    source: str = "api",
    audit_actor: AuditActor | None = None,
) -> IdempotentAnswer:
    """Emit an event for a REST caller, honouring an optional Idempotency-Key.

    The record is completed in the same transaction as the notifications, so a crash
    can't leave notifications without their replayable answer (nor the reverse). A
    request that fails (bad input) releases the key.
    """
    if not idempotency_key:
        # event_emit writes everything in one transaction of its own: a second one around it
        # would only add a savepoint (two more round trips) to every event.
        result = event_emit_payload(organization=organization, payload=payload, source=source, audit_actor=audit_actor)
        return IdempotentAnswer(202, result.as_dict())
    key = idempotency_key.strip()
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        # Cutting it would make two different keys one (and replay the wrong answer).
        raise ValidationError({"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."]})
    record, done = idempotency_claim(organization=organization, key=key, request_hash=event_payload_hash(raw_body))
    if done is not None:
        return IdempotentAnswer(done.response_code or 202, done.response_body or {}, replayed=True)
    assert record is not None
    try:
        with transaction.atomic():
            result = event_emit_payload(organization=organization, payload=payload, source=source, audit_actor=audit_actor)
            body = result.as_dict()
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status=IdempotencyStatus.COMPLETED, response_code=202, response_body=body, completed_at=timezone.now()
            )
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyStatus.IN_FLIGHT).delete()
        raise
    return IdempotentAnswer(202, body)
