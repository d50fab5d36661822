"""Incoming provider webhooks.

A callback may only change what the provider account that authenticated it sent.
`SignedWebhookView` owns what every provider webhook needs: CSRF exemption, verification
against the raw request with the credentials of the account that sent the message the
callback talks about (403 and nothing else when it fails), and the hand-off of normalized
events to `hooks.delivery_events_report` scoped to that account's deliveries.

Email status arrives through django-anymail's tracking views, hardened below and mounted by
`anymail_tracking` at /webhooks/anymail/<esp>/tracking/ (the platform's account) and
/webhooks/anymail/<esp>/tracking/<provider_id>/ (one record's account), only for the ESPs an
active provider record uses: anymail accepts unauthenticated posts when no secret is
configured (it only warns) and answers a bad signature with 400; ours refuse with 403 in both
cases, and the Amazon SES view also checks the SNS message signature.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from common.exceptions import ProviderPermanentError

from .base import DeliveryEvent, DeliveryEventType
from .hooks import delivery_events_report, sent_by, voice_digits_report

if TYPE_CHECKING:
    from anymail.webhooks.base import AnymailBaseWebhookView
    # The mixin is only ever combined with one of anymail's tracking views (the last base):
    # for the type checker it is one, so basic_auth, esp_name and post() are known.
    from anymail.webhooks.base import AnymailBaseWebhookView as _AnymailView

    from .models import NotificationProvider
else:
    _AnymailView = object

logger = logging.getLogger(__name__)

TWILIO_CODES = ("twilio_sms", "twilio_whatsapp", "twilio_voice")


@dataclass(frozen=True)
class Sender:
    """A provider account that may have sent what a callback talks about: a record, or
    (record None) the platform's environment configuration of `code`."""

    code: str
    record: NotificationProvider | None = None

    @property
    def provider_id(self) -> int | None:
        return self.record.pk if self.record is not None else None

    def credentials(self) -> dict[str, Any]:
        from .secrets import resolve_credentials

        try:
            return resolve_credentials(self.record) if self.record is not None else resolve_credentials(None, code=self.code)
        except Exception:  # noqa: BLE001 — an undecryptable record verifies nothing
            logger.warning("provider %s: credentials unreadable, skipped for signature checks", self.provider_id)
            return {}


def senders_scope(senders: Iterable[Sender]) -> dict[str, list]:
    """`provider_ids` / `unbound_codes` keywords of the deliveries these senders sent."""
    senders = list(senders)
    return {"provider_ids": [s.provider_id for s in senders if s.record is not None],
            "unbound_codes": sorted({s.code for s in senders if s.record is None})}


def senders_of(pairs: Iterable[tuple[int | None, str]]) -> list[Sender]:
    """The provider accounts behind these (provider record id or None, code) pairs, as
    `hooks.sent_by` answers them (one query)."""
    from .models import NotificationProvider

    pairs = set(pairs)
    records = NotificationProvider.objects.in_bulk([pk for pk, _ in pairs if pk is not None])
    senders = {Sender(code=code, record=records[pk]) for pk, code in pairs if pk in records}
    senders |= {Sender(code=code) for pk, code in pairs if pk is None and code}
    return sorted(senders, key=lambda s: (s.provider_id or 0, s.code))


def platform_senders(codes: Iterable[str]) -> list[Sender]:
    """The platform's own accounts for these codes: its active records, else its environment."""
    from .models import NotificationProvider

    codes = list(codes)
    records = list(NotificationProvider.objects.filter(organization__isnull=True, code__in=codes, is_active=True).order_by("pk"))
    return [Sender(code=r.code, record=r) for r in records] or [Sender(code=codes[0])]


@method_decorator(csrf_exempt, name="dispatch")
class SignedWebhookView(View):
    """Base view: `verify(request)` returns the provider accounts whose credentials
    authenticate the request; none and the answer is 403 and nothing runs. `handle` may
    then only touch what those accounts sent (`self.senders`)."""

    http_method_names = ["post"]
    provider_code = ""
    senders: list[Sender]

    def verify(self, request: HttpRequest) -> list[Sender]:
        raise NotImplementedError

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            self.senders = list(self.verify(request) or [])
        except Exception:  # a malformed request must not turn into a 500 or a pass
            logger.warning("%s webhook: verification error", self.provider_code, exc_info=True)
            self.senders = []
        if not self.senders:
            logger.warning("%s webhook: rejected signature from %s", self.provider_code, request.META.get("REMOTE_ADDR"))
            return HttpResponseForbidden("invalid signature")
        return self.handle(request)


# --- Twilio ------------------------------------------------------------------------------------


class TwilioWebhookView(SignedWebhookView):
    """Twilio signs each callback with the auth token of the account that placed the message
    or call. The request is checked against the credentials of the account that sent what
    it talks about (`candidates`), never against every Twilio record: the `AccountSid` it
    names must be that account's and the signature must be its token's."""

    provider_code = "twilio"

    def candidates(self, request: HttpRequest) -> list[Sender]:
        raise NotImplementedError

    def verify(self, request: HttpRequest) -> list[Sender]:
        from twilio.request_validator import RequestValidator

        signature = request.headers.get("X-Twilio-Signature", "")
        params = request.POST.dict()
        account_sid = params.get("AccountSid", "")
        if not signature or not account_sid:
            return []
        # Twilio signs the URL it was given; behind a proxy that is SITE_URL's, not ours.
        urls = {request.build_absolute_uri(), f"{settings.SITE_URL}{request.get_full_path()}"}
        verified = []
        for sender in self.candidates(request):
            credentials = sender.credentials()
            token, sid = str(credentials.get("auth_token") or ""), str(credentials.get("account_sid") or "")
            if not token or not sid or not constant_time_compare(sid, account_sid):
                continue
            validator = RequestValidator(token)
            if any(validator.validate(url, params, signature) for url in urls):
                verified.append(sender)
        return verified


def _sent_with_id(provider_message_id: str, codes: Iterable[str], channel: str | None = None) -> set[tuple[int | None, str]]:
    return sent_by(provider_message_ids=[provider_message_id], codes=codes, channel=channel)


class TwilioStatusWebhookView(TwilioWebhookView):
    """SMS, WhatsApp and voice status callbacks: they change the deliveries of the verified
    account only."""

    def candidates(self, request: HttpRequest) -> list[Sender]:
        sid = request.POST.get("CallSid") or request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
        senders = senders_of(_sent_with_id(sid, TWILIO_CODES)) if sid else []
        return senders or platform_senders(TWILIO_CODES)  # an unknown id: a platform callback, or nobody's

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .twilio_common import parse_twilio_status

        events = parse_twilio_status(request.POST.dict())
        for sender in self.senders if events else []:
            delivery_events_report(provider_code=sender.code, events=events, provider_id=sender.provider_id,
                                   unbound_codes=() if sender.record is not None else TWILIO_CODES)
        return HttpResponse(status=204)


class TwilioGatherWebhookView(TwilioWebhookView):
    """The digit pressed during a voice call's Gather."""

    def candidates(self, request: HttpRequest) -> list[Sender]:
        call_sid = request.POST.get("CallSid", "")
        senders = senders_of(_sent_with_id(call_sid, ("twilio_voice",), channel="VOICE")) if call_sid else []
        return senders or platform_senders(("twilio_voice",))

    def handle(self, request: HttpRequest) -> HttpResponse:
        from twilio.twiml.voice_response import VoiceResponse

        acknowledged = voice_digits_report(call_sid=request.POST.get("CallSid", ""), digits=request.POST.get("Digits", ""),
                                           **senders_scope(self.senders))
        response = VoiceResponse()
        response.say("Acknowledged. Thank you." if acknowledged else "No acknowledgment recorded. Goodbye.")
        response.hangup()
        return HttpResponse(str(response), content_type="application/xml")


class TwilioWhatsAppInboundWebhookView(TwilioWebhookView):
    """A customer's WhatsApp message to one of our Twilio senders (the sender's "a message
    comes in" webhook): it opens that customer's 24-hour window with that sender. Signed like
    every Twilio callback, by the account whose sender the message was addressed to (`To`);
    a message id opens a window once (Twilio's signature carries no time, so a replayed
    request must not reopen a window that has closed)."""

    def candidates(self, request: HttpRequest) -> list[Sender]:
        from .models import NotificationProvider
        from .phone import normalize_e164

        to = request.POST.get("To", "").removeprefix("whatsapp:")
        try:
            to = normalize_e164(to)
        except ProviderPermanentError:  # not a number: nobody's sender
            return []
        records = NotificationProvider.objects.filter(code="twilio_whatsapp", is_active=True).order_by("pk")
        senders = []
        for record in records:
            try:
                if normalize_e164(str((record.config or {}).get("from_number") or "")) == to:
                    senders.append(Sender(code="twilio_whatsapp", record=record))
            except ProviderPermanentError:  # a record without a usable sender number
                continue
        return senders or platform_senders(("twilio_whatsapp",))

    def handle(self, request: HttpRequest) -> HttpResponse:
        from django.core.cache import cache

        from .phone import normalize_e164
        from .whatsapp.twilio import twilio_sender_id
        from .whatsapp.window import window_record

        sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
        sender, customer = request.POST.get("To", ""), request.POST.get("From", "")
        empty = HttpResponse('<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="application/xml")
        if not sid or not sender.startswith("whatsapp:") or not customer.startswith("whatsapp:"):
            return empty
        if not cache.add(f"prov:twilio-wa-inbound:{sid}", 1, 30 * 86400):
            logger.warning("twilio_whatsapp inbound webhook: message %s seen before, no window reopened", sid[:40])
            return empty
        from .whatsapp.optout import whatsapp_keyword_apply
        whatsapp_keyword_apply(provider_code="twilio_whatsapp", message_id=sid, customer=customer, body=request.POST.get("Body", ""),
                               organization_ids=[s.record.organization_id if s.record is not None else None for s in self.senders])
        try:
            window_record(business_number_id=twilio_sender_id(sender.removeprefix("whatsapp:")),
                          customer=normalize_e164(customer.removeprefix("whatsapp:")).lstrip("+"))
        except ProviderPermanentError:  # a malformed number opens nothing
            logger.warning("twilio_whatsapp inbound webhook: unusable numbers")
        return empty


# --- Meta WhatsApp Cloud API ---------------------------------------------------------------------


def _meta_refs(body: bytes) -> tuple[list[str], set[str]]:
    """The message ids an (unverified) body reports statuses of and the business numbers its
    inbound messages were sent to: only to find whose secret must have signed it."""
    try:
        payload = json.loads(body)
    except ValueError:
        return [], set()
    ids: list[str] = []
    numbers: set[str] = set()
    for entry in (payload.get("entry") or []) if isinstance(payload, dict) else []:
        for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            for status in (value.get("statuses") or []) if isinstance(value, dict) else []:
                if isinstance(status, dict) and isinstance(status.get("id"), str):
                    ids.append(status["id"])
            if isinstance(value, dict) and value.get("messages") and isinstance(value.get("metadata"), dict):
                numbers.add(str(value["metadata"].get("phone_number_id") or ""))
    return ids[:100], numbers - {""}


class MetaWhatsAppWebhookView(SignedWebhookView):
    """Status webhooks signed with X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the
    app secret of the account that sent the messages); GET answers Meta's subscription
    challenge with the configured verify token."""

    http_method_names = ["get", "post"]
    provider_code = "meta_whatsapp"

    def get(self, request: HttpRequest) -> HttpResponse:
        import os

        expected = os.environ.get("WHATSAPP_VERIFY_TOKEN", "")
        if expected and request.GET.get("hub.mode") == "subscribe" and hmac.compare_digest(request.GET.get("hub.verify_token", ""), expected):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponseForbidden("invalid verify token")

    def verify(self, request: HttpRequest) -> list[Sender]:
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header.startswith("sha256="):
            return []
        given = header.split("=", 1)[1]
        from .whatsapp.optout import meta_receivers

        ids, numbers = _meta_refs(request.body)
        sent = sent_by(provider_message_ids=ids, codes=("meta_whatsapp",)) if ids else set()
        receivers = [Sender(code="meta_whatsapp", record=r) for r in meta_receivers(numbers)]  # inbound messages' business numbers
        candidates = list(dict.fromkeys(senders_of(sent) + receivers)) or platform_senders(("meta_whatsapp",))
        verified = []
        for sender in candidates:
            secret = str(sender.credentials().get("app_secret") or "")
            if secret and hmac.compare_digest(hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest(), given):
                verified.append(sender)
        return verified

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .registry import registry

        try:
            payload = json.loads(request.body)
        except ValueError:
            return JsonResponse({"detail": "Body is not JSON."}, status=400)
        payload = payload if isinstance(payload, dict) else {}
        from .whatsapp.meta import MetaWhatsAppProvider
        records = [s.record for s in self.senders]
        MetaWhatsAppProvider.inbound_record(payload, records=records)  # customers who wrote to a signer's number: window opens
        from .whatsapp.optout import meta_keywords_apply
        meta_keywords_apply(payload, records=records)  # STOP / START to a verified account's number
        events = registry.get("meta_whatsapp")().parse_webhook(payload)
        for sender in self.senders if events else []:
            delivery_events_report(provider_code="meta_whatsapp", events=events, provider_id=sender.provider_id,
                                   unbound_codes=() if sender.record is not None else ("meta_whatsapp",))
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


# --- hardened anymail tracking views ---------------------------------------------------------------

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure  # noqa: E402
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView  # noqa: E402
from anymail.webhooks.base import AnymailBasicAuthMixin  # noqa: E402
from anymail.webhooks.mailgun import MailgunTrackingWebhookView  # noqa: E402
from anymail.webhooks.postmark import PostmarkTrackingWebhookView  # noqa: E402
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView  # noqa: E402


class _CollectedEvents:
    """Stands in for anymail's `tracking` signal on one request: the events stay with the
    view that authenticated them (a process-wide signal cannot say which account did)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
        self.events.append(event)


class VerifiedAnymailMixin(_AnymailView):
    """403 unless the request is authenticated: when nothing to verify it with is configured
    (anymail would accept it with a warning) and when verification fails (anymail: 400).
    Accepted events change only the deliveries of `provider_record` (and, on the platform's
    URL, those the platform's environment configuration sent)."""

    warn_if_no_basic_auth = False  # refused below instead
    webhook_secret = None
    provider_record = None
    platform = False

    def verification_configured(self) -> bool:
        return bool(self.basic_auth)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.verification_configured():
            logger.error("%s tracking webhook refused: no webhook secret or signature key is configured", self.esp_name)
            return HttpResponseForbidden("webhook verification is not configured")
        self.signal = _CollectedEvents()
        try:
            response = super().post(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            logger.warning("%s tracking webhook: rejected signature from %s", self.esp_name, request.META.get("REMOTE_ADDR"))
            return HttpResponseForbidden("invalid signature")
        except AnymailError:
            return JsonResponse({"detail": "Malformed webhook payload."}, status=400)
        normalized = [e for e in (anymail_event_normalize(event) for event in self.signal.events) if e is not None]
        if normalized and response.status_code < 300 and self.provider_record is not None:
            code = self.provider_record.code
            delivery_events_report(provider_code=code, events=normalized, provider_id=self.provider_record.pk,
                                   unbound_codes=(code,) if self.platform else ())
        return response


class SendGridTrackingView(VerifiedAnymailMixin, SendGridTrackingWebhookView):
    tracking_webhook_verification_key = None

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

    session_params = None
    client_params = None
    auto_confirm_sns_subscriptions = None

    def validate_request(self, request: HttpRequest) -> None:
        # anymail runs every `validate_request` of the class chain, this one first: check the
        # shared secret before fetching any certificate for a stranger's request.
        AnymailBasicAuthMixin.validate_request(self, request)
        message = self._parse_sns_message(request)
        if not isinstance(message, dict) or not sns_message_verify(message):
            raise AnymailWebhookValidationFailure("Amazon SNS message signature is missing or invalid")


# --- which ESP tracking URLs answer ----------------------------------------------------------------

ANYMAIL_TRACKING_VIEWS: dict[str, type[AnymailBaseWebhookView]] = {
    "sendgrid": SendGridTrackingView,
    "mailgun": MailgunTrackingView,
    "postmark": PostmarkTrackingView,
    "amazon_ses": AmazonSesTrackingView,
}
# anymail's setting name -> the provider record's credential (or config) key holding it.
ANYMAIL_WEBHOOK_KEYS: dict[str, dict[str, str]] = {
    "sendgrid": {"webhook_secret": "webhook_secret", "tracking_webhook_verification_key": "webhook_verification_key"},
    "mailgun": {"webhook_secret": "webhook_secret", "webhook_signing_key": "webhook_signing_key"},
    "postmark": {"webhook_secret": "webhook_secret"},
    "amazon_ses": {"webhook_secret": "webhook_secret"},
}


def anymail_webhook_settings(record: NotificationProvider, *, platform: bool) -> dict[str, Any]:
    """What the tracking view of `record` verifies requests with: the record's own webhook
    credentials (never inherited from another record). On the platform's URL, a key the
    platform record leaves unset falls back to the ANYMAIL settings (the environment); on an
    organization record's URL nothing falls back, so an unset key verifies nothing."""
    from .secrets import own_credentials

    try:
        own = {**(record.config or {}), **own_credentials(record)}
    except Exception:  # noqa: BLE001 — undecryptable: verifies nothing
        logger.warning("provider %s: credentials unreadable, its tracking webhook refuses everything", record.pk)
        own = {}
    values: dict[str, Any] = {}
    for setting, key in ANYMAIL_WEBHOOK_KEYS[record.code].items():
        value = own.get(key)
        if value not in (None, ""):
            values[setting] = str(value)
        elif not platform:
            values[setting] = ""
    if not platform and record.code == "mailgun":
        values["api_key"] = None  # anymail would fall back to the API key, then to settings
    if not platform and record.code == "amazon_ses":
        # Confirming an SNS subscription is an AWS call: with the record's own keys, never
        # with the platform's (boto3's default chain); without keys, confirm it by hand.
        if own.get("access_key_id") and own.get("secret_access_key"):
            values["session_params"] = {"aws_access_key_id": str(own["access_key_id"]), "aws_secret_access_key": str(own["secret_access_key"]),
                                        "region_name": str(own.get("region") or "us-east-1")}
            values["client_params"] = {}
        else:
            values["auto_confirm_sns_subscriptions"] = False
    return values


@csrf_exempt
def anymail_tracking(request: HttpRequest, esp: str, provider_id: int | None = None) -> HttpResponse:
    """`/webhooks/anymail/<esp>/tracking/` (the platform's account) and
    `/webhooks/anymail/<esp>/tracking/<provider_id>/` (one provider record's account).

    Only the hardened views above exist, and each only while an active provider record uses
    that ESP: every other ESP and inbound URL of django-anymail, an ESP nobody configured, an
    inactive or unknown record are 404 before anything is parsed."""
    from .models import NotificationProvider

    view_class = ANYMAIL_TRACKING_VIEWS.get(esp)
    if view_class is None:
        raise Http404("No such webhook.")
    records = NotificationProvider.objects.filter(code=esp, is_active=True)
    record = (records.filter(organization__isnull=True) if provider_id is None else records.filter(pk=provider_id)).first()
    if record is None:
        raise Http404("No such webhook.")
    platform = provider_id is None
    view = view_class.as_view(provider_record=record, platform=platform, **anymail_webhook_settings(record, platform=platform))
    return view(request)
