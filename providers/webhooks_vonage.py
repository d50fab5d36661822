"""Vonage callbacks: SMS delivery receipts and Voice call events, each checked against the
credentials of the account that sent what it talks about (providers.webhooks' rules: 403 and
nothing else when the check fails, only that account's deliveries change afterwards)."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare

from .hooks import delivery_events_report, voice_digits_report
from .webhooks import Sender, SignedWebhookView, _sent_with_id, platform_senders, senders_of, senders_scope

logger = logging.getLogger(__name__)

VONAGE_MAX_AGE_SECONDS = 300
SMS_SIGNATURE_METHODS = ("md5", "sha1", "sha256", "sha512")


class VonageSmsReceiptWebhookView(SignedWebhookView):
    """SMS delivery receipts, signed (Vonage "signed webhooks" for the SMS API): `sig` is the
    HMAC of the other parameters with the account's `signature_secret` (config
    `signature_method`, md5 by default, as the dashboard's), `api-key` must be that account's,
    `timestamp` within five minutes, and a signature is accepted once."""

    http_method_names = ["get", "post"]
    provider_code = "vonage_sms"

    def _params(self, request: HttpRequest) -> dict[str, str]:
        if request.method == "GET":
            return request.GET.dict()
        if request.content_type == "application/json":
            payload = json.loads(request.body or b"{}")
            return {str(k): str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
        return request.POST.dict()

    def verify(self, request: HttpRequest) -> list[Sender]:
        from vonage_http_client.auth import Auth

        params = self._params(request)
        signature, api_key, message_id = params.get("sig", ""), params.get("api-key", ""), params.get("messageId", "")
        if not signature or not api_key or not message_id or not str(params.get("timestamp", "")).isdigit():
            return []
        if abs(datetime.now(UTC).timestamp() - int(params["timestamp"])) > VONAGE_MAX_AGE_SECONDS:
            return []
        verified = []
        for sender in senders_of(_sent_with_id(message_id, ("vonage_sms",))) or platform_senders(("vonage_sms",)):
            credentials = sender.credentials()
            secret, key = str(credentials.get("signature_secret") or ""), str(credentials.get("api_key") or "")
            method = str((sender.record.config or {}).get("signature_method") or "md5") if sender.record is not None else "md5"
            if not secret or not key or not constant_time_compare(key, api_key) or method not in SMS_SIGNATURE_METHODS:
                continue
            if Auth(api_key=key, signature_secret=secret, signature_method=method).check_signature(dict(params)):
                verified.append(sender)
        if verified and not cache.add(f"prov:vonage-sig:{hashlib.sha256(signature.encode()).hexdigest()}", 1, 2 * VONAGE_MAX_AGE_SECONDS):
            logger.warning("vonage_sms webhook: signature replayed")
            return []
        self.params = params
        return verified

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self.post(request, *args, **kwargs)

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .registry import registry

        events = registry.get("vonage_sms")().parse_webhook(self.params)
        for sender in self.senders if events else []:
            delivery_events_report(provider_code="vonage_sms", events=events, provider_id=sender.provider_id,
                                   unbound_codes=() if sender.record is not None else ("vonage_sms",))
        return HttpResponse(status=204)


class VonageVoiceEventWebhookView(SignedWebhookView):
    """Call events and the digit pressed (`dtmf`), signed by Vonage with a JWT (HS256) in the
    Authorization header: made with the signature secret of the account that placed the
    call, issued within five minutes, used once (`jti`), and whose `payload_hash` is the
    SHA-256 of this very body."""

    provider_code = "vonage_voice"

    def verify(self, request: HttpRequest) -> list[Sender]:
        import jwt

        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return []
        token = header[len("Bearer "):].strip()
        try:
            payload = json.loads(request.body)
        except ValueError:
            return []
        call_uuid = str(payload.get("uuid") or "") if isinstance(payload, dict) else ""
        senders = senders_of(_sent_with_id(call_uuid, ("vonage_voice",), channel="VOICE")) if call_uuid else []
        body_hash = hashlib.sha256(request.body).hexdigest()
        verified, claims = [], {}
        for sender in senders or platform_senders(("vonage_voice",)):
            secret = str(sender.credentials().get("signature_secret") or "")
            if not secret:
                continue
            try:
                claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["iat", "jti", "payload_hash"]})
            except jwt.PyJWTError:
                continue
            fresh = abs(datetime.now(UTC).timestamp() - float(claims["iat"])) <= VONAGE_MAX_AGE_SECONDS
            if fresh and hmac.compare_digest(str(claims["payload_hash"]), body_hash):
                verified.append(sender)
        if verified and not cache.add(f"prov:vonage-jti:{claims['jti']}", 1, 2 * VONAGE_MAX_AGE_SECONDS):
            logger.warning("vonage_voice webhook: token %s replayed", str(claims["jti"])[:40])
            return []
        return verified

    def handle(self, request: HttpRequest) -> HttpResponse:
        from .registry import registry

        payload = json.loads(request.body)
        if not isinstance(payload, dict):
            return JsonResponse({"detail": "Body is not an object."}, status=400)
        dtmf = payload.get("dtmf")
        if isinstance(dtmf, dict):
            acknowledged = voice_digits_report(call_sid=str(payload.get("uuid") or ""), digits=str(dtmf.get("digits") or ""),
                                               **senders_scope(self.senders))
            text = "Acknowledged. Thank you." if acknowledged else "No acknowledgment recorded. Goodbye."
            return JsonResponse([{"action": "talk", "text": text}], safe=False)
        events = registry.get("vonage_voice")().parse_webhook(payload)
        for sender in self.senders if events else []:
            delivery_events_report(provider_code="vonage_voice", events=events, provider_id=sender.provider_id,
                                   unbound_codes=() if sender.record is not None else ("vonage_voice",))
        return HttpResponse(status=204)
