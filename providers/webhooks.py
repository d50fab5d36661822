"""Incoming provider webhooks.

`SignedWebhookView` owns what every provider webhook needs: CSRF exemption, signature
verification against the raw request (403 and nothing else when it fails), and the hand-off
of normalized events to `services.delivery_status_apply`. A provider only says how to verify
and how to map its payload.

Email status arrives through django-anymail's tracking views, mounted at
/webhooks/anymail/<esp>/tracking/ in the hardened subclasses below: anymail accepts
unauthenticated posts when no secret is configured (it only warns) and answers a bad
signature with 400; ours refuse with 403 in both cases, and the Amazon SES view also checks
the SNS message signature. Their `tracking` signal lands in `anymail_tracking_received`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
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


def _soft_bounce(esp_event: Any) -> bool:
    """ESPs that report temporary bounces as bounces: SES (bounceType Transient or
    Undetermined), Postmark (SoftBounce), SendGrid (type blocked)."""
    if not isinstance(esp_event, dict):
        return False
    bounce = esp_event.get("bounce")
    if isinstance(bounce, dict) and bounce.get("bounceType") in ("Transient", "Undetermined"):
        return True
    return esp_event.get("Type") == "SoftBounce" or esp_event.get("type") == "blocked"


def anymail_event_normalize(event: Any) -> DeliveryEvent | None:
    kind = ANYMAIL_EVENTS.get(getattr(event, "event_type", "") or "")
    if kind is None or not getattr(event, "message_id", None):
        return None
    reject_reason = getattr(event, "reject_reason", None) or ""
    hard = kind == DeliveryEventType.BOUNCED or (kind == DeliveryEventType.FAILED and reject_reason in ("bounced", "invalid"))
    if hard and _soft_bounce(getattr(event, "esp_event", None)):
        hard = False  # the mailbox may accept mail again: no suppression
    if hard and kind == DeliveryEventType.FAILED:
        kind = DeliveryEventType.BOUNCED
    if reject_reason == "spam" and kind in (DeliveryEventType.FAILED, DeliveryEventType.BOUNCED):
        kind, hard = DeliveryEventType.COMPLAINED, False
    parts = [getattr(event, "description", None), getattr(event, "mta_response", None)]
    reason = (" — ".join(str(p) for p in parts if p) or reject_reason or "")[:300]
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


# --- hardened anymail tracking views ---------------------------------------------------------------

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure  # noqa: E402
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView  # noqa: E402
from anymail.webhooks.base import AnymailBasicAuthMixin  # noqa: E402
from anymail.webhooks.mailgun import MailgunTrackingWebhookView  # noqa: E402
from anymail.webhooks.postmark import PostmarkTrackingWebhookView  # noqa: E402
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView  # noqa: E402


class VerifiedAnymailMixin:
    """403 unless the request is authenticated: when nothing to verify it with is configured
    (anymail would accept it with a warning) and when verification fails (anymail: 400)."""

    def verification_configured(self) -> bool:
        return bool(self.basic_auth)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.verification_configured():
            logger.error("%s tracking webhook refused: no webhook secret or signature key is configured", self.esp_name)
            return HttpResponseForbidden("webhook verification is not configured")
        try:
            return super().post(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            logger.warning("%s tracking webhook: rejected signature from %s", self.esp_name, request.META.get("REMOTE_ADDR"))
            return HttpResponseForbidden("invalid signature")
        except AnymailError:
            return JsonResponse({"detail": "Malformed webhook payload."}, status=400)


class SendGridTrackingView(VerifiedAnymailMixin, SendGridTrackingWebhookView):
    def verification_configured(self) -> bool:
        return bool(self.basic_auth or self.webhook_verification_key)


class MailgunTrackingView(VerifiedAnymailMixin, MailgunTrackingWebhookView):
    def verification_configured(self) -> bool:
        # anymail falls back to MAILGUN_API_KEY, which settings define as "" when unset:
        # an HMAC with an empty key is one anybody can compute.
        return bool(self.webhook_signing_key)


class PostmarkTrackingView(VerifiedAnymailMixin, PostmarkTrackingWebhookView):
    pass  # Postmark authenticates its webhooks with HTTP basic auth only


# Where Amazon SNS serves its signing certificates; tests point it at a loopback peer.
SNS_CERT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]+\.pem$"
_SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_sns_certificates: dict[str, Any] = {}
_sns_lock = threading.Lock()


def _sns_certificate(url: str):
    from cryptography import x509

    with _sns_lock:
        cached = _sns_certificates.get(url)
    if cached is not None:
        return cached
    import requests

    response = requests.get(url, timeout=5)
    response.raise_for_status()
    certificate = x509.load_pem_x509_certificate(response.content)
    with _sns_lock:
        _sns_certificates[url] = certificate
    return certificate


def sns_message_verify(message: dict[str, Any]) -> bool:
    """Amazon SNS message signature (SignatureVersion 1: SHA1, 2: SHA256) with the certificate
    from an Amazon SNS URL: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    fields = _SNS_SIGNED_FIELDS.get(message.get("Type", ""))
    cert_url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
    pattern = getattr(settings, "SNS_SIGNING_CERT_URL_PATTERN", SNS_CERT_URL_PATTERN)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(message.get("SignatureVersion", "")))
    if not fields or algorithm is None or not re.match(pattern, cert_url) or not message.get("Signature"):
        return False
    signed = "".join(f"{key}\n{message[key]}\n" for key in fields if key in message).encode()
    try:
        _sns_certificate(cert_url).public_key().verify(base64.b64decode(message["Signature"]), signed, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class AmazonSesTrackingView(VerifiedAnymailMixin, AmazonSESTrackingWebhookView):
    """SES events through SNS: the webhook secret (basic auth, which also proves the topic is
    ours) and Amazon's signature of the SNS message."""

    def validate_request(self, request: HttpRequest) -> None:
        # anymail runs every `validate_request` of the class chain, this one first: check the
        # shared secret before fetching any certificate for a stranger's request.
        AnymailBasicAuthMixin.validate_request(self, request)
        message = self._parse_sns_message(request)
        if not isinstance(message, dict) or not sns_message_verify(message):
            raise AnymailWebhookValidationFailure("Amazon SNS message signature is missing or invalid")
