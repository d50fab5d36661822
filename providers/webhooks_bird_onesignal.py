"""Status callbacks of MessageBird (Bird) SMS and OneSignal push, under providers.webhooks'
rules: checked against the credentials of the account that sent what they talk about (403 and
nothing else when the check fails), each accepted once, and only that account's deliveries
change (matched by provider record and provider message id, through providers.hooks).

- MessageBird signs each status report with a `MessageBird-Signature-JWT` header: an HS256
  (or HS384/512) JWT made with the account's signing key, issuer "MessageBird", valid between
  `nbf` and `exp`, whose `url_hash` is the SHA-256 of the URL called (query included) and
  `payload_hash` that of the body, when there is one.
  https://developers.messagebird.com/docs/verify-http-requests
- OneSignal's web push webhooks (notification.willDisplay/displayed, clicked) carry no
  signature: the record's `webhook_secret` is part of the URL it is given
  (`/webhooks/onesignal/<provider id>/<webhook_secret>/`), as a secret in the URL (basic
  auth) authenticates the ESPs' tracking webhooks; a (notification, event, user) report is
  applied once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare

from .base import DeliveryEvent, DeliveryEventType
from .hooks import delivery_events_report
from .webhooks import Sender, SignedWebhookView, _sent_with_id, platform_senders, senders_of

logger = logging.getLogger(__name__)

MESSAGEBIRD_ALGORITHMS = ["HS256", "HS384", "HS512"]
ONESIGNAL_EVENTS = {
    "notification.willDisplay": DeliveryEventType.DELIVERED,
    "notification.displayed": DeliveryEventType.DELIVERED,
    "notification.clicked": DeliveryEventType.CLICKED,
}
ONESIGNAL_SEEN_SECONDS = 7 * 86400


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MessageBirdSmsStatusWebhookView(SignedWebhookView):
    """SMS status reports (GET with query parameters, as MessageBird sends them, or POST)."""

    http_method_names = ["get", "post"]
    provider_code = "messagebird_sms"

    def _params(self, request: HttpRequest) -> dict[str, str]:
        if request.method == "GET":
            return request.GET.dict()
        if request.content_type == "application/json":
            payload = json.loads(request.body or b"{}")
            return {str(k): str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
        return request.POST.dict()

    def verify(self, request: HttpRequest) -> list[Sender]:
        import jwt

        token = request.headers.get("MessageBird-Signature-JWT", "")
        params = self._params(request)
        message_id = params.get("id", "")
        if not token or not message_id:
            return []
        # MessageBird signs the URL it was given; behind a proxy that is SITE_URL's, not ours.
        url_hashes = {_sha256(url.encode("latin-1", "replace"))
                      for url in (request.build_absolute_uri(), f"{settings.SITE_URL}{request.get_full_path()}")}
        body = request.body
        verified: list[Sender] = []
        claims: dict[str, Any] = {}
        for sender in senders_of(_sent_with_id(message_id, ("messagebird_sms",))) or platform_senders(("messagebird_sms",)):
            key = str(sender.credentials().get("signing_key") or "")
            if not key:
                continue
            try:
                claims = jwt.decode(token, key, algorithms=MESSAGEBIRD_ALGORITHMS, issuer="MessageBird", leeway=1,
                                    options={"require": ["iss", "nbf", "exp", "url_hash"], "verify_iat": False})
            except jwt.PyJWTError:
                continue
            if not any(hmac.compare_digest(str(claims["url_hash"]), h) for h in url_hashes):
                continue
            payload_hash = claims.get("payload_hash")
            if bool(body) != bool(payload_hash) or (body and not hmac.compare_digest(str(payload_hash), _sha256(body))):
                continue
            verified.append(sender)
        if verified:
            ttl = max(60, int(float(claims["exp"]) - datetime.now(UTC).timestamp()) + 5)
            if not cache.add(f"prov:messagebird-jwt:{_sha256(token.encode())}", 1, ttl):
                logger.warning("messagebird_sms webhook: signature replayed")
                return []
        self.params = params
        return verified

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.post(request, *args, **kwargs)

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .sms.messagebird import MessageBirdSmsProvider

        events = MessageBirdSmsProvider.status_report_parse(self.params)
        for sender in self.senders if events else []:
            delivery_events_report(provider_code="messagebird_sms", events=events, provider_id=sender.provider_id,
                                   unbound_codes=() if sender.record is not None else ("messagebird_sms",))
        return HttpResponse(status=200)  # MessageBird retries anything else


class OneSignalWebhookView(SignedWebhookView):
    """OneSignal web push webhooks to one record's URL. The browser that showed the
    notification sends them (JSON, whatever the content type says)."""

    provider_code = "onesignal"

    def verify(self, request: HttpRequest) -> list[Sender]:
        from .models import NotificationProvider

        record = NotificationProvider.objects.filter(pk=self.kwargs["provider_id"], code="onesignal", is_active=True).first()
        if record is None:
            return []
        sender = Sender(code="onesignal", record=record)
        secret = str(sender.credentials().get("webhook_secret") or "")
        if not secret or not constant_time_compare(secret, str(self.kwargs["token"])):
            return []
        return [sender]

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return HttpResponse("Body is not JSON.", status=400)
        if not isinstance(payload, dict):
            return HttpResponse("Body is not an object.", status=400)
        kind, notification_id = ONESIGNAL_EVENTS.get(str(payload.get("event") or "")), str(payload.get("id") or "")
        if kind is None or not notification_id or len(notification_id) > 100:
            return HttpResponse(status=204)
        (sender,) = self.senders
        report = "|".join((notification_id, kind, str(payload.get("userId") or "")))
        seen = f"prov:onesignal:{sender.provider_id}:{_sha256(report.encode())}"
        if not cache.add(seen, 1, ONESIGNAL_SEEN_SECONDS):
            return HttpResponse(status=204)  # reported before: applied once
        event = DeliveryEvent(provider_message_id=notification_id, event=kind, timestamp=datetime.now(UTC))
        delivery_events_report(provider_code="onesignal", events=[event], provider_id=sender.provider_id)
        return HttpResponse(status=204)
