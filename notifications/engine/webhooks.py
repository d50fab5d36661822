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

Signed calls follow the scheme of `notifications.engine.webhooks_outgoing` (a timestamped
HMAC-SHA256 of the raw body); within the five minutes a signature is valid it is accepted
once (a copy is a 409). Outgoing webhooks live in `notifications.engine.webhooks_outgoing`.
"""
from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common import outbound
from common.exceptions import Conflict, NotFound, PermissionDenied, TroubadourError, Unprocessable, ValidationError
from common.jsondoc import JSONDocumentError, json_decode
from common.jsonpaths import path_get, path_set
from notifications.enums import (
    AuditAction,
    AuditActorType,
    AuditOutcome,
    WebhookAuthType,
    WebhookDirection,
)
from notifications.models import EventType, NotificationAuditLog, Webhook

from .webhooks_outgoing import (
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_SECONDS,
    webhook_secret_of,
    webhook_signature_match,
)

logger = logging.getLogger(__name__)

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


def webhook_validate(*, webhook: Webhook) -> None:
    """Everything a webhook must satisfy before it is saved (the API and the admin both call it)."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        webhook.full_clean(exclude=["organization", "created_by", "secret"])
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None
    if webhook.direction == WebhookDirection.INCOMING and webhook.auth_type == WebhookAuthType.NONE:
        # Anyone who learned the URL could inject events into the organization.
        raise ValidationError({"auth_type": ["An incoming webhook must be authenticated (HMAC_SHA256, BEARER, API_KEY or BASIC)."]})
    if webhook.auth_type != WebhookAuthType.NONE and not webhook.secret:
        raise ValidationError({"secret": [f"A webhook with {webhook.auth_type} authentication needs a secret."]})
    if webhook.direction == WebhookDirection.OUTGOING:
        try:
            outbound.url_check_syntax(webhook.url)
        except outbound.OutboundRefused as exc:
            # Syntax and literal addresses only: no DNS lookup, so nothing about the network leaks.
            raise ValidationError({"url": [f"Not a usable webhook URL: {exc.reason}."]}) from None
    if webhook.event_types:
        known = set(EventType.objects.filter(key__in=webhook.event_types).values_list("key", flat=True))
        unknown = [key for key in webhook.event_types if key not in known]
        if unknown:
            raise ValidationError({"event_types": [f"Unknown event type(s): {', '.join(map(str, unknown))}."]})


@transaction.atomic
def webhook_create(*, organization_id: int, values: Mapping[str, Any], secret: str | None, user_id: int | None,
                   actor_label: str) -> Webhook:
    from accounts.models import Organization

    if not Organization.objects.filter(pk=organization_id).exists():
        raise ValidationError({"organization_id": [f"No organization with id {organization_id}."]})
    webhook = Webhook(organization_id=organization_id, created_by_id=user_id,
                      **{k: v for k, v in values.items() if k in WEBHOOK_FIELDS})
    if secret:
        webhook.secret = _encrypted(secret)
    webhook_validate(webhook=webhook)
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
    webhook_validate(webhook=webhook)
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


def webhook_authenticate(*, webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> str:
    """Raise PermissionDenied unless the request carries this webhook's credential.

    For a signed (HMAC_SHA256) call, returns the digest that signed it: the request's identity
    for replay detection. Static credentials (BEARER, API_KEY, BASIC) return "".
    """
    if webhook.auth_type == WebhookAuthType.NONE:
        raise PermissionDenied("This webhook accepts no unauthenticated calls; configure its authentication.")
    secret = webhook_secret_of(webhook)
    if not secret:
        raise PermissionDenied("This webhook has no secret configured.")
    given = ""
    expected = ""
    if webhook.auth_type == WebhookAuthType.HMAC_SHA256:
        digest = webhook_signature_match(secret, headers.get(SIGNATURE_HEADER), body)
        if not digest:
            raise PermissionDenied("Missing, invalid or expired webhook signature.")
        return digest
    if webhook.auth_type == WebhookAuthType.BEARER:
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
    return ""


def _replay_key(webhook: Webhook, digest: str) -> str:
    return f"webhook-replay:{webhook.pk}:{digest}"


def _signature_claim(webhook: Webhook, digest: str) -> None:
    """Remember a signature for as long as it could be accepted; a second use is a replay (409).

    The digest covers the timestamp and the body, so it names one signed request however the
    header is written (extra ``v1=`` values, spacing). ``cache.add`` is atomic (Redis SET NX, an
    INSERT for the database cache): of two concurrent copies exactly one gets through.
    """
    from django.core.cache import cache

    # Accepted while |now - t| <= tolerance: at most 2 x tolerance from the first sight, plus skew.
    if not cache.add(_replay_key(webhook, digest), 1, timeout=2 * SIGNATURE_TOLERANCE_SECONDS + 60):
        logger.warning("incoming webhook %s: replayed signature refused", webhook.pk)
        raise Conflict("This signed request was already received; sign each call anew.", code="replayed_signature")


def _signature_release(webhook: Webhook, digest: str) -> None:
    from django.core.cache import cache

    cache.delete(_replay_key(webhook, digest))


def webhook_payload_to_event(*, webhook: Webhook, payload: Any) -> dict[str, Any]:
    """The event this webhook's settings read out of an incoming payload."""
    config = webhook.settings or {}
    event: dict[str, Any] = json.loads(json.dumps(config.get("defaults") or {}))
    mapping = config.get("mapping") or {}
    if mapping:
        for target, source_path in mapping.items():
            value = path_get(payload, str(source_path))
            if value is not None:
                path_set(event, str(target), value)
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
    digest = webhook_authenticate(webhook=webhook, body=body, headers=headers)  # a forged call changes nothing
    if digest:
        _signature_claim(webhook, digest)  # a replayed one neither
    try:
        return _receive_authenticated(webhook=webhook, body=body, headers=headers)
    except Exception as exc:
        refused_for_good = isinstance(exc, TroubadourError) and exc.status_code < 500 and exc.status_code != 429
        if digest and not refused_for_good:
            # A limit or our own failure, not the caller's: the sender's retry of this very
            # request must get through. (A 4xx would fail the same way again: it stays claimed.)
            _signature_release(webhook, digest)
        raise


def _receive_authenticated(*, webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> IncomingAnswer:
    from notifications import services
    from notifications.engine.event_limits import organization_events_check

    now = timezone.now()
    try:
        try:
            payload = json_decode(body.decode("utf-8") or "null")
        except UnicodeDecodeError:
            raise ValidationError({"detail": "The body is not valid JSON."}) from None
        except JSONDocumentError as exc:
            raise ValidationError({"detail": f"The body is not acceptable JSON: {exc}"}) from None
        except ValueError:
            raise ValidationError({"detail": "The body is not valid JSON."}) from None
        event = webhook_payload_to_event(webhook=webhook, payload=payload)
        validated = services.event_validated_payload(event)
        # The organization's event limit covers this intake too (429 + Retry-After).
        organization_events_check(organization=webhook.organization)
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
