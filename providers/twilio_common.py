"""What the Twilio SMS, WhatsApp and voice providers share: the client, error mapping,
status callbacks."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from common.exceptions import ProviderPermanentError, ProviderTransientError

from .base import (
    BaseProvider,
    DeliveryEvent,
    DeliveryEventType,
    HealthResult,
    transient_or_permanent_for_status,
)

# Twilio error codes that say "this recipient can never get it" even with a 4xx status
# that could be mistaken for a validation error.
TWILIO_TRANSIENT_CODES = {20429, 20500, 20503, 30001, 30002, 30008}

MESSAGE_STATUS_EVENTS = {
    "sent": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "read": DeliveryEventType.OPENED,
    "undelivered": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
}
CALL_STATUS_EVENTS = {
    "completed": DeliveryEventType.DELIVERED,
    "busy": DeliveryEventType.FAILED,
    "no-answer": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
    "canceled": DeliveryEventType.FAILED,
}


def status_callback_url(config: dict[str, Any]) -> str:
    return config.get("status_callback_url") or f"{settings.SITE_URL}/webhooks/twilio/status/"


def twilio_price(price: Any, unit: Any) -> tuple[Decimal | None, str]:
    if price in (None, ""):
        return None, ""
    try:
        # Twilio reports charges as negative amounts.
        return abs(Decimal(str(price))), str(unit or "USD").upper()
    except InvalidOperation:
        return None, ""


class SharedTwilioHttpClient(TwilioHttpClient):
    """A TwilioHttpClient that several threads may use at once.

    The SDK's `request` stores the response on the client and returns that attribute: shared
    by concurrent sends, one thread could read another's answer (another message's SID). Here
    those attributes are per thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._local = threading.local()
        super().__init__(*args, **kwargs)

    @property
    def _test_only_last_response(self) -> Any:
        return getattr(self._local, "response", None)

    @_test_only_last_response.setter
    def _test_only_last_response(self, value: Any) -> None:
        self._local.response = value

    @property
    def _test_only_last_request(self) -> Any:
        return getattr(self._local, "request", None)

    @_test_only_last_request.setter
    def _test_only_last_request(self, value: Any) -> None:
        self._local.request = value


def twilio_http_client(timeout: float) -> TwilioHttpClient:
    """A Twilio HTTP client whose keep-alive pool holds as many connections as may be in flight."""
    from .concurrency import pool_session

    http_client = SharedTwilioHttpClient(timeout=timeout)
    pool_session(http_client.session)
    return http_client


class TwilioMixin(BaseProvider):
    sensitive_params = ("auth_token",)
    required_params = ("account_sid", "auth_token")
    env_credentials = {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN"}
    supports_webhooks = True
    supports_status_polling = True

    def client(self) -> Client:
        if self.record_id is None:
            http_client = TwilioHttpClient(timeout=self.timeout)
        else:
            from .concurrency import http_session

            # One kept-alive connection pool per provider record and process, shared by
            # concurrent sends (the credentials go with each request, not the session).
            http_client = http_session(("twilio", self.record_id, self.timeout), lambda: twilio_http_client(self.timeout))
        client = Client(self.require("account_sid"), self.require("auth_token"), http_client=http_client,
                        region=self.config.get("region"), edge=self.config.get("edge"))
        if self.config.get("base_url"):
            # Messages and Calls live on the `api` domain; pointing it elsewhere (a regional
            # proxy, a loopback test peer) is all it takes.
            client.api.base_url = self.config["base_url"].rstrip("/")
        return client

    def twilio_error(self, exc: Exception) -> Exception:
        if isinstance(exc, TwilioRestException):
            detail = f"Twilio error {exc.code}: {exc.msg}"[:300] if exc.code else f"Twilio HTTP {exc.status}"
            if exc.code in TWILIO_TRANSIENT_CODES:
                return ProviderTransientError(detail, code=str(exc.code))
            err = transient_or_permanent_for_status(exc.status, detail)
            if exc.status in (401, 403):
                err.code = "auth"  # the account's credentials (20003): the provider's fault, not the message's
            elif exc.code:
                err.code = str(exc.code)
            return err
        if isinstance(exc, requests.RequestException):
            return ProviderTransientError(f"Twilio unreachable: {exc.__class__.__name__}", code="connection")
        return ProviderPermanentError(f"Twilio error: {exc.__class__.__name__}", code="twilio")

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            account = self.client().api.v2010.accounts(self.require("account_sid")).fetch()
        except (TwilioException, requests.RequestException, ProviderPermanentError) as exc:
            error = self.twilio_error(exc) if not isinstance(exc, ProviderPermanentError) else exc
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(error),
                                credentials_refused=getattr(error, "code", "") == "auth")
        ok = (account.status or "active") == "active"
        return HealthResult(ok=ok, response_time_ms=self._elapsed_ms(started), detail="" if ok else f"account {account.status}")

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        try:
            message = self.client().messages(provider_message_id).fetch()
        except (TwilioException, requests.RequestException) as exc:
            raise self.twilio_error(exc) from None
        event = MESSAGE_STATUS_EVENTS.get(message.status or "")
        if event is None:
            return None
        amount, currency = twilio_price(message.price, message.price_unit)
        return DeliveryEvent(provider_message_id=provider_message_id, event=event, timestamp=message.date_updated or datetime.now(UTC),
                             reason=f"Twilio error {message.error_code}" if message.error_code else "", cost_amount=amount, cost_currency=currency)

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        return parse_twilio_status(payload)


def parse_twilio_status(payload: dict[str, Any]) -> list[DeliveryEvent]:
    """A Twilio status callback (form fields) → normalized events."""
    now = datetime.now(UTC)
    if payload.get("CallSid") and payload.get("CallStatus"):
        event = CALL_STATUS_EVENTS.get(payload["CallStatus"])
        if not event:
            return []
        return [DeliveryEvent(provider_message_id=payload["CallSid"], event=event, timestamp=now, recipient=payload.get("To", ""),
                              reason="" if event == DeliveryEventType.DELIVERED else f"call {payload['CallStatus']}")]
    sid = payload.get("MessageSid") or payload.get("SmsSid")
    status = payload.get("MessageStatus") or payload.get("SmsStatus")
    event = MESSAGE_STATUS_EVENTS.get(status or "")
    if not sid or not event:
        return []
    amount, currency = twilio_price(payload.get("Price"), payload.get("PriceUnit"))
    error_code = payload.get("ErrorCode") or ""
    return [DeliveryEvent(provider_message_id=sid, event=event, timestamp=now, recipient=payload.get("To", ""),
                          reason=f"Twilio error {error_code}" if error_code else "", cost_amount=amount, cost_currency=currency)]
