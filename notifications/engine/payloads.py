"""Event payloads from outside (REST, AMQP, incoming webhooks) turned into `event_emit` calls:
normalize and validate the shape, resolve and check the organization, and for the bus record
the message id so a redelivery returns the first result."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from common.exceptions import NotFound, PermissionDenied, ValidationError
from notifications.enums import (
    AuditActorType,
    IdempotencyStatus,
)
from notifications.models import (
    IdempotencyRecord,
)

from .audit import AuditActor
from .normalize import event_payload_normalize
from .intake import EmitResult, event_emit
from .intake_input import _as_id


EMIT_FIELDS = (
    "type", "recipient_ids", "recipients", "audience", "category", "actor", "resource", "team_id", "project_id", "criticality",
    "channels", "data", "deduplication_key", "correlation_id", "scheduled_for", "expires_at",
    "channel_options",
)


def event_payload_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def organization_resolve(reference: Any) -> Organization:
    """An organization by id or slug (the bus identifies it in the payload)."""
    if reference in (None, ""):
        raise ValidationError({"organization_id": ["This field is required."]})
    pk = _as_id(reference)
    lookup = Q(slug=str(reference)) if pk is None else Q(pk=pk) | Q(slug=str(reference))
    organization = Organization.objects.filter(lookup).first()
    if organization is None:
        raise NotFound({"organization_id": [f"Unknown organization {reference!r}."]})
    return organization


def event_validated_payload(raw: Any, *, routing_key: str | None = None) -> dict[str, Any]:
    """Normalize (camelCase → snake_case) and validate the shape of an event payload."""
    from notifications.serializers_intake import EventInSerializer

    serializer = EventInSerializer(data=event_payload_normalize(raw, routing_key=routing_key))
    if not serializer.is_valid():
        raise ValidationError(serializer.errors)
    return dict(serializer.validated_data)


def event_emit_payload(
    *, organization: Organization, payload: Mapping[str, Any], source: str, audit_actor: AuditActor | None = None
) -> EmitResult:
    """`event_emit` from a validated payload; `organization_id` in it must be the caller's."""
    declared = payload.get("organization_id")
    if declared not in (None, "") and str(declared) not in (str(organization.pk), organization.slug):
        raise PermissionDenied("organization_id does not match the caller's organization.")
    kwargs = {k: payload[k] for k in EMIT_FIELDS if k in payload and payload[k] is not None}
    return event_emit(organization=organization, source=source, audit_actor=audit_actor, **kwargs)


def event_from_bus(*, body: Any, routing_key: str | None, message_id: str | None = None) -> EmitResult:
    """One AMQP message → notifications, in one transaction (the consumer acks after it returns).

    The message id, when the publisher set one, is recorded as an idempotency key in the same
    transaction: a redelivery after a crash between commit and ack returns the first result.
    """
    from notifications.engine.event_limits import organization_events_check

    payload = event_validated_payload(body, routing_key=routing_key)
    organization = organization_resolve(payload.get("organization_id"))
    actor = AuditActor(type=AuditActorType.SYSTEM, id="", label="amqp")
    if not message_id:
        organization_events_check(organization=organization)
        with transaction.atomic():
            return event_emit_payload(organization=organization, payload=payload, source="amqp", audit_actor=actor)
    key = f"amqp:{message_id}"
    if len(key) > 255:
        # Never cut: two long ids sharing a prefix would be one key. A digest keeps them apart.
        key = "amqp-sha256:" + hashlib.sha256(str(message_id).encode()).hexdigest()
    with transaction.atomic():
        done = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
        if done is not None and done.response_body:
            body = done.response_body
            return EmitResult(
                event_id=body["event_id"],
                notifications=[(n["id"], n["recipient_id"], n["status"]) for n in body["notifications"]],
                deduplicated=True,
            )
        organization_events_check(organization=organization)  # a redelivery above costs nothing
        result = event_emit_payload(organization=organization, payload=payload, source="amqp", audit_actor=actor)
        IdempotencyRecord.objects.create(
            organization=organization, key=key, request_hash=event_payload_hash(payload),
            status=IdempotencyStatus.COMPLETED, response_code=202, response_body=result.as_dict(),
            completed_at=timezone.now(), expires_at=timezone.now() + timedelta(days=1),
        )
        return result
