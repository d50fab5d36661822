"""An organization's webhooks: administration, and incoming webhooks turned into events.

An incoming webhook is called at ``/webhooks/incoming/<public_id>/`` by a system that knows
nothing of our event format. Its ``settings`` say how to read the payload:

    {"event_type": "incident.created",                  # used when the payload names none
     "defaults": {"criticality": "HIGH"},                # merged under what the payload gives
     "mapping": {"recipient_ids": "alert.assignees",     # event field <- dotted path in the payload
                 "data.incidentTitle": "alert.title"}}

Without a mapping the payload is taken as an event in the API's (or the seed's camelCase)
format. The caller is authenticated against the raw body before anything is parsed; the
secret is stored encrypted (providers.secrets) and never returned.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.exceptions import NotFound, PermissionDenied, TroubadourError, Unprocessable, ValidationError
from notifications.enums import AuditAction, AuditActorType, AuditOutcome, WebhookAuthType, WebhookDirection
from notifications.models import NotificationAuditLog, Webhook

SIGNATURE_HEADERS = ("X-Troubadour-Signature", "X-Signature-256", "X-Hub-Signature-256")
WEBHOOK_FIELDS = (
    "name", "description", "direction", "url", "auth_type", "event_types", "event_categories", "settings",
    "is_active", "retry_enabled", "max_retries",
)


# --- administration ------------------------------------------------------------------------------


def _audit(*, webhook: Webhook | None, organization_id: int, action: str, actor_id: str, actor_label: str,
           details: dict[str, Any], outcome: str = AuditOutcome.SUCCESS, error: str = "",
           actor_type: str = AuditActorType.USER) -> None:
    NotificationAuditLog.objects.create(
        organization_id=organization_id, webhook=webhook, action=action, outcome=outcome, actor_type=actor_type,
        actor_id=actor_id[:100], actor_label=actor_label[:200], details=details, error_message=error,
    )


def _encrypted(secret: str) -> str:
    from providers.secrets import SecretsUnavailable, secrets_encrypt

    try:
        return secrets_encrypt({"secret": secret})
    except SecretsUnavailable as exc:
        raise ValidationError({"secret": [f"Secrets cannot be stored: {exc}"]}) from None


def _check(webhook: Webhook) -> None:
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        webhook.full_clean(exclude=["organization", "created_by", "secret"])
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    if webhook.direction == WebhookDirection.INCOMING and webhook.auth_type != WebhookAuthType.NONE and not webhook.secret:
        raise ValidationError({"secret": [f"An incoming webhook with {webhook.auth_type} authentication needs a secret."]})


@transaction.atomic
def webhook_create(*, organization_id: int, values: Mapping[str, Any], secret: str | None, user_id: int | None,
                   actor_label: str) -> Webhook:
    webhook = Webhook(organization_id=organization_id, created_by_id=user_id,
                      **{k: v for k, v in values.items() if k in WEBHOOK_FIELDS})
    if secret:
        webhook.secret = _encrypted(secret)
    _check(webhook)
    webhook.save()
    _audit(webhook=webhook, organization_id=organization_id, action=AuditAction.WEBHOOK_CONFIGURED,
           actor_id=str(user_id or ""), actor_label=actor_label,
           details={"created": True, "fields": sorted(k for k in values if k in WEBHOOK_FIELDS),
                    "secret_set": bool(secret)})
    return webhook


@transaction.atomic
def webhook_update(*, webhook: Webhook, values: Mapping[str, Any], secret: str | None, clear_secret: bool,
                   user_id: int | None, actor_label: str) -> Webhook:
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    changed = sorted(k for k in values if k in WEBHOOK_FIELDS and getattr(webhook, k) != values[k])
    for key in changed:
        setattr(webhook, key, values[key])
    if clear_secret:
        webhook.secret = ""
    elif secret:
        webhook.secret = _encrypted(secret)
    _check(webhook)
    webhook.save()
    _audit(webhook=webhook, organization_id=webhook.organization_id, action=AuditAction.WEBHOOK_CONFIGURED,
           actor_id=str(user_id or ""), actor_label=actor_label,
           details={"changed": changed, "secret_set": bool(secret), "secret_cleared": clear_secret})
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, user_id: int | None, actor_label: str) -> None:
    _audit(webhook=None, organization_id=webhook.organization_id, action=AuditAction.WEBHOOK_CONFIGURED,
           actor_id=str(user_id or ""), actor_label=actor_label,
           details={"deleted": webhook.pk, "name": webhook.name, "direction": webhook.direction})
    webhook.delete()


# --- incoming ----------------------------------------------------------------------------------------


def _secret_of(webhook: Webhook) -> str:
    from providers.secrets import secrets_decrypt

    if not webhook.secret:
        return ""
    return str(secrets_decrypt(webhook.secret).get("secret") or "")


def webhook_authenticate(*, webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise PermissionDenied unless the request carries this webhook's credential."""
    if webhook.auth_type == WebhookAuthType.NONE:
        return
    secret = _secret_of(webhook)
    if not secret:
        raise PermissionDenied("This webhook has no secret configured.")
    given = ""
    expected = ""
    if webhook.auth_type == WebhookAuthType.HMAC_SHA256:
        given = next((headers.get(name, "") for name in SIGNATURE_HEADERS if headers.get(name)), "")
        given = given.removeprefix("sha256=").strip().lower()
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    elif webhook.auth_type == WebhookAuthType.BEARER:
        auth = headers.get("Authorization", "")
        given, expected = (auth[7:].strip() if auth.lower().startswith("bearer ") else ""), secret
    elif webhook.auth_type == WebhookAuthType.API_KEY:
        given, expected = headers.get("X-Api-Key", "").strip(), secret
    elif webhook.auth_type == WebhookAuthType.BASIC:
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
        expected = secret
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("Missing or invalid webhook signature.")


def _lookup(source: Any, path: str) -> Any:
    current = source
    for bit in path.split("."):
        if isinstance(current, Mapping) and bit in current:
            current = current[bit]
        elif isinstance(current, list) and bit.isdigit() and int(bit) < len(current):
            current = current[int(bit)]
        else:
            return None
    return current


def _assign(target: dict[str, Any], path: str, value: Any) -> None:
    bits = path.split(".")
    node = target
    for bit in bits[:-1]:
        child = node.get(bit)
        if not isinstance(child, dict):
            child = node[bit] = {}
        node = child
    node[bits[-1]] = value


def webhook_payload_to_event(*, webhook: Webhook, payload: Any) -> dict[str, Any]:
    """The event this webhook's settings read out of an incoming payload."""
    config = webhook.settings or {}
    event: dict[str, Any] = json.loads(json.dumps(config.get("defaults") or {}))
    mapping = config.get("mapping") or {}
    if mapping:
        for target, source_path in mapping.items():
            value = _lookup(payload, str(source_path))
            if value is not None:
                _assign(event, str(target), value)
    elif isinstance(payload, Mapping):
        event.update(payload)
    else:
        raise ValidationError({"detail": "Expected a JSON object."})
    if not (event.get("type") or event.get("eventType")) and config.get("event_type"):
        event["type"] = config["event_type"]
    event_type = event.get("type") or event.get("eventType")
    if webhook.event_types and event_type not in webhook.event_types:
        raise Unprocessable(f"This webhook does not accept {event_type!r} events.", code="event_type_not_accepted")
    return event


@dataclass
class IncomingAnswer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def webhook_get_incoming(*, public_id: Any) -> Webhook:
    webhook = Webhook.objects.filter(public_id=public_id, direction=WebhookDirection.INCOMING, is_active=True).first()
    if webhook is None:
        raise NotFound("Unknown webhook.")
    return webhook


def webhook_receive(*, webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> IncomingAnswer:
    """Authenticate, map and emit one incoming call; every outcome is audited and counted."""
    webhook_authenticate(webhook=webhook, body=body, headers=headers)  # a forged call changes nothing
    from notifications import services

    now = timezone.now()
    try:
        try:
            payload = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValidationError({"detail": "The body is not valid JSON."}) from None
        event = webhook_payload_to_event(webhook=webhook, payload=payload)
        validated = services.event_validated_payload(event)
        answer = services.events_emit_idempotent(
            organization=webhook.organization, payload=validated, raw_body=event,
            idempotency_key=headers.get("Idempotency-Key"), source="webhook",
            audit_actor=services.AuditActor(type=AuditActorType.WEBHOOK, id=str(webhook.pk), label=webhook.name),
        )
    except TroubadourError as exc:
        Webhook.objects.filter(pk=webhook.pk).update(
            last_triggered_at=now, last_failure_at=now, failure_count=F("failure_count") + 1,
            last_error=str(exc.detail)[:1000], updated_at=now,
        )
        _audit(webhook=webhook, organization_id=webhook.organization_id, action=AuditAction.WEBHOOK_RECEIVED,
               actor_type=AuditActorType.WEBHOOK, actor_id=str(webhook.pk), actor_label=webhook.name,
               outcome=AuditOutcome.FAILURE, error=str(exc.detail)[:1000], details={"status": exc.status_code})
        raise
    Webhook.objects.filter(pk=webhook.pk).update(
        last_triggered_at=now, last_success_at=now, failure_count=0, last_error="", updated_at=now,
    )
    _audit(webhook=webhook, organization_id=webhook.organization_id, action=AuditAction.WEBHOOK_RECEIVED,
           actor_type=AuditActorType.WEBHOOK, actor_id=str(webhook.pk), actor_label=webhook.name,
           details={"event_id": answer.body.get("event_id"), "notifications": len(answer.body.get("notifications", [])),
                    "replayed": answer.replayed})
    return IncomingAnswer(answer.status_code, answer.body, answer.replayed)
