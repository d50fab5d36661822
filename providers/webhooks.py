"""Incoming provider webhooks.

`SignedWebhookView` owns what every provider webhook needs: CSRF exemption, signature
verification against the raw request (403 and nothing else when it fails), and the hand-off
of normalized events to `services.delivery_status_apply`. A provider only says how to verify
and how to map its payload.

Email status arrives through django-anymail's own tracking views (mounted at
/webhooks/anymail/<esp>/tracking/, which verify basic auth and the ESP's signature); its
`tracking` signal lands in `anymail_tracking_received` below.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .base import DeliveryEvent, DeliveryEventType

logger = logging.getLogger(__name__)

TWILIO_CODES = ("twilio_sms", "twilio_whatsapp", "twilio_voice")


@method_decorator(csrf_exempt, name="dispatch")
class SignedWebhookView(View):
    """Base view: `verify(request)` must return True or the answer is 403 and nothing runs."""

    http_method_names = ["post"]
    provider_code = ""

    def verify(self, request: HttpRequest) -> bool:
        raise NotImplementedError

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            verified = self.verify(request)
        except Exception:  # a malformed request must not turn into a 500 or a pass
            logger.warning("%s webhook: verification error", self.provider_code, exc_info=True)
            verified = False
        if not verified:
            logger.warning("%s webhook: rejected signature from %s", self.provider_code, request.META.get("REMOTE_ADDR"))
            return HttpResponseForbidden("invalid signature")
        return self.handle(request)


# --- Twilio ------------------------------------------------------------------------------------


def twilio_auth_tokens(account_sid: str) -> list[str]:
    """Auth tokens that may have signed a request for this account: every Twilio provider
    record whose resolved account SID matches, then the environment's."""
    import os

    from notifications.models import NotificationProvider

    from .secrets import resolve_credentials

    tokens: list[str] = []
    for record in NotificationProvider.objects.filter(code__in=TWILIO_CODES).order_by("organization_id", "pk"):
        try:
            credentials = resolve_credentials(record)
        except Exception:  # noqa: BLE001 — one undecryptable record must not block the others
            logger.warning("provider %s: credentials unreadable, skipped for signature checks", record.pk)
            continue
        if credentials.get("auth_token") and (not account_sid or credentials.get("account_sid") == account_sid):
            tokens.append(credentials["auth_token"])
    env_token = os.environ.get("TWILIO_AUTH_TOKEN")
    if env_token and (not account_sid or os.environ.get("TWILIO_ACCOUNT_SID", account_sid) == account_sid):
        tokens.append(env_token)
    return list(dict.fromkeys(tokens))


class TwilioWebhookView(SignedWebhookView):
    provider_code = "twilio"

    def verify(self, request: HttpRequest) -> bool:
        from twilio.request_validator import RequestValidator

        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        params = request.POST.dict()
        # Twilio signs the URL it was given; behind a proxy that is SITE_URL's, not ours.
        urls = {request.build_absolute_uri(), f"{settings.SITE_URL}{request.get_full_path()}"}
        for token in twilio_auth_tokens(params.get("AccountSid", "")):
            validator = RequestValidator(token)
            if any(validator.validate(url, params, signature) for url in urls):
                return True
        return False


class TwilioStatusWebhookView(TwilioWebhookView):
    """SMS, WhatsApp and voice status callbacks."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .services import delivery_status_apply
        from .twilio_common import parse_twilio_status

        events = parse_twilio_status(request.POST.dict())
        if events:
            delivery_status_apply(provider_code="twilio", events=events)
        return HttpResponse(status=204)


class TwilioGatherWebhookView(TwilioWebhookView):
    """The digit pressed during a voice call's Gather."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        from twilio.twiml.voice_response import VoiceResponse

        from .services import voice_acknowledge

        acknowledged = voice_acknowledge(call_sid=request.POST.get("CallSid", ""), digits=request.POST.get("Digits", ""))
        response = VoiceResponse()
        response.say("Acknowledged. Thank you." if acknowledged else "No acknowledgment recorded. Goodbye.")
        response.hangup()
        return HttpResponse(str(response), content_type="application/xml")


# --- Meta WhatsApp Cloud API ---------------------------------------------------------------------


def _meta_app_secrets() -> list[str]:
    import os

    from notifications.models import NotificationProvider

    from .secrets import resolve_credentials

    secrets: list[str] = []
    for record in NotificationProvider.objects.filter(code="meta_whatsapp"):
        try:
            value = resolve_credentials(record).get("app_secret")
        except Exception:  # noqa: BLE001 — same as above
            logger.warning("provider %s: credentials unreadable, skipped for signature checks", record.pk)
            continue
        if value:
            secrets.append(value)
    if os.environ.get("WHATSAPP_APP_SECRET"):
        secrets.append(os.environ["WHATSAPP_APP_SECRET"])
    return list(dict.fromkeys(secrets))


class MetaWhatsAppWebhookView(SignedWebhookView):
    """Status webhooks signed with X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the
    app secret); GET answers Meta's subscription challenge with the configured verify token."""

    http_method_names = ["get", "post"]
    provider_code = "meta_whatsapp"

    def get(self, request: HttpRequest) -> HttpResponse:
        import os

        expected = os.environ.get("WHATSAPP_VERIFY_TOKEN", "")
        if expected and request.GET.get("hub.mode") == "subscribe" and hmac.compare_digest(request.GET.get("hub.verify_token", ""), expected):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponseForbidden("invalid verify token")

    def verify(self, request: HttpRequest) -> bool:
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header.startswith("sha256="):
            return False
        given = header.split("=", 1)[1]
        return any(hmac.compare_digest(hmac.new(s.encode(), request.body, hashlib.sha256).hexdigest(), given) for s in _meta_app_secrets())

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .registry import registry
        from .services import delivery_status_apply

        try:
            payload = json.loads(request.body)
        except ValueError:
            return JsonResponse({"detail": "Body is not JSON."}, status=400)
        events = registry.get("meta_whatsapp")().parse_webhook(payload if isinstance(payload, dict) else {})
        if events:
            delivery_status_apply(provider_code="meta_whatsapp", events=events)
        return HttpResponse(status=200)


# --- anymail (email) -------------------------------------------------------------------------------

ANYMAIL_EVENTS = {
    "sent": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "opened": DeliveryEventType.OPENED,
    "clicked": DeliveryEventType.CLICKED,
    "bounced": DeliveryEventType.BOUNCED,
    "complained": DeliveryEventType.COMPLAINED,
    "rejected": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
    "unsubscribed": DeliveryEventType.UNSUBSCRIBED,
}


def anymail_provider_code(esp_name: str) -> str:
    return (esp_name or "").strip().lower().replace(" ", "_")


def anymail_event_normalize(event: Any) -> DeliveryEvent | None:
    kind = ANYMAIL_EVENTS.get(getattr(event, "event_type", "") or "")
    if kind is None or not getattr(event, "message_id", None):
        return None
    reject_reason = getattr(event, "reject_reason", None) or ""
    hard = kind == DeliveryEventType.BOUNCED or (kind == DeliveryEventType.FAILED and reject_reason in ("bounced", "invalid"))
    if hard and kind == DeliveryEventType.FAILED:
        kind = DeliveryEventType.BOUNCED
    if reject_reason == "spam" and kind in (DeliveryEventType.FAILED, DeliveryEventType.BOUNCED):
        kind, hard = DeliveryEventType.COMPLAINED, False
    reason = (getattr(event, "description", None) or getattr(event, "mta_response", None) or reject_reason or "")[:300]
    timestamp = getattr(event, "timestamp", None) or datetime.now(UTC)
    return DeliveryEvent(provider_message_id=str(event.message_id), event=kind, timestamp=timestamp,
                         recipient=getattr(event, "recipient", None) or "", reason=reason, hard=hard)


def anymail_tracking_received(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    from .services import delivery_status_apply

    normalized = anymail_event_normalize(event)
    if normalized is not None:
        delivery_status_apply(provider_code=anymail_provider_code(esp_name), events=[normalized])


def connect_signals() -> None:
    from anymail.signals import tracking

    tracking.connect(anymail_tracking_received, dispatch_uid="providers.anymail_tracking")
