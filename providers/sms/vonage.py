"""SMS through the Vonage SMS API (vonage SDK v4).

Vonage's client always speaks HTTPS to `rest_host`; tests point `rest_host` at a loopback
TLS peer whose certificate is trusted through REQUESTS_CA_BUNDLE.
"""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import (
    AuthenticationError,
    ForbiddenError,
    HttpRequestError,
)
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError
from vonage_utils.errors import VonageError

from common.exceptions import ProviderPermanentError, ProviderTransientError
from common.channels import Channel

from ..base import (
    BaseProvider,
    DeliveryEvent,
    DeliveryEventType,
    HealthResult,
    OutboundMessage,
    SendResult,
    SendStatus,
    transient_or_permanent_for_status,
)
from ..phone import normalize_e164
from ..registry import register
from .segments import count_segments, gsm7_substitute

# https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms — statuses that
# another provider or a later attempt may get through.
VONAGE_TRANSIENT_STATUSES = {1, 5, 9}
# Delivery receipt statuses; err-code 1 (unknown subscriber) and 6 (absent/invalid number)
# mean the number will not take messages (https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts).
DLR_EVENTS = {
    "accepted": DeliveryEventType.SENT,
    "buffered": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "expired": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
    "rejected": DeliveryEventType.FAILED,
}
VONAGE_DLR_HARD_ERRORS = {"1", "6"}


@register
class VonageSmsProvider(BaseProvider):
    """Credentials: api_key, api_secret, signature_secret (signed delivery receipts at
    /webhooks/vonage/sms/status/). Config: from_number (or alphanumeric sender), rest_host,
    currency (Vonage bills in the account currency, EUR by default), signature_method."""

    code = "vonage_sms"
    channel = Channel.SMS
    name = "Vonage SMS"
    concurrent_sends = True  # one HTTP call; the client (and its session) is kept per record
    sensitive_params = ("api_secret", "signature_secret")
    required_params = ("api_key", "api_secret", "from_number")
    env_credentials = {"api_key": "VONAGE_API_KEY", "api_secret": "VONAGE_API_SECRET"}
    supports_webhooks = True

    def client(self) -> Vonage:
        import threading

        # The SDK keeps per-request state on its client (headers, the last response): one kept-
        # alive client per send thread, never shared by two requests at once.
        return self.pooled(f"vonage-{threading.get_ident()}", self._new_client)

    def _new_client(self) -> Vonage:
        options = {"timeout": int(self.timeout), "max_retries": 0}
        if self.config.get("rest_host"):
            options["rest_host"] = self.config["rest_host"]
        if self.config.get("api_host"):
            options["api_host"] = self.config["api_host"]
        return Vonage(Auth(api_key=self.require("api_key"), api_secret=self.require("api_secret")), HttpClientOptions(**options))

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, (AuthenticationError, ForbiddenError)):
            return ProviderPermanentError("Vonage rejected the credentials.", code="auth")
        if isinstance(exc, HttpRequestError):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            return transient_or_permanent_for_status(status, f"Vonage HTTP {status}")
        if isinstance(exc, SmsError):
            match = re.search(r"error code (\d+)", str(exc))
            status = int(match.group(1)) if match else None
            detail = f"Vonage SMS status {status}" if status is not None else "Vonage SMS error"
            if status in VONAGE_TRANSIENT_STATUSES:
                return ProviderTransientError(detail, code=f"vonage_{status}")
            return ProviderPermanentError(detail, code=f"vonage_{status}")
        if isinstance(exc, requests.RequestException):
            return ProviderTransientError(f"Vonage unreachable: {exc.__class__.__name__}", code="connection")
        return ProviderPermanentError(f"Vonage error: {exc.__class__.__name__}", code="vonage")

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        text = message.text
        if message.options.get("unicode") is False:
            text = gsm7_substitute(text)  # Vonage has no look-alike switch: as GSM-7 where it can
        segments = count_segments(text)
        sms = SmsMessage(
            to=to.lstrip("+"),
            from_=str(message.options.get("from") or self.require("from_number")).lstrip("+"),
            text=text,
            # unicode true: always UCS-2; otherwise UCS-2 only for what GSM-7 cannot carry.
            type="unicode" if segments.unicode or message.options.get("unicode") is True else "text",
            client_ref=str(message.idempotency_key)[:100] if message.idempotency_key else None,
            callback=self.config.get("status_callback_url") or f"{settings.SITE_URL}/webhooks/vonage/sms/status/",
        )
        try:
            response = self.client().sms.send(sms)
        except (VonageError, requests.RequestException) as exc:
            raise self._error(exc) from None
        parts = response.messages
        total = Decimal(0)
        priced = False
        for part in parts:
            try:
                total += Decimal(str(part.message_price))
                priced = True
            except (InvalidOperation, TypeError):
                pass
        return SendResult(
            provider_message_id=parts[0].message_id,
            status=SendStatus.QUEUED,
            cost_amount=total if priced else None,
            cost_currency=(self.config.get("currency") or "EUR") if priced else "",
            segments=len(parts),
            raw={"message_ids": [p.message_id for p in parts], "network": parts[0].network},
        )

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        """A delivery receipt (already verified, providers.webhooks_vonage) → a normalized event."""
        event = DLR_EVENTS.get(str(payload.get("status") or ""))
        if event is None or not payload.get("messageId"):
            return []
        error = str(payload.get("err-code") or "0")
        try:
            cost = Decimal(str(payload["price"])) if payload.get("price") not in (None, "") else None
        except InvalidOperation:
            cost = None
        return [DeliveryEvent(provider_message_id=str(payload["messageId"]), event=event, timestamp=datetime.now(UTC),
                              recipient=f"+{payload['msisdn']}" if str(payload.get("msisdn") or "").isdigit() else "",
                              reason="" if event != DeliveryEventType.FAILED else f"Vonage DLR {payload['status']} (error {error})",
                              hard=error in VONAGE_DLR_HARD_ERRORS, cost_amount=cost,
                              cost_currency=(self.config.get("currency") or "EUR") if cost is not None else "")]

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            balance = self.client().account.get_balance()
        except (VonageError, requests.RequestException, ProviderPermanentError) as exc:
            detail = str(exc) if isinstance(exc, ProviderPermanentError) else str(self._error(exc))
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=detail)
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started), detail=f"balance {balance.value:.2f}")
