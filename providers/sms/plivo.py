"""SMS through Plivo's Message API (REST over HTTPS, Basic auth with the Auth ID and token).

POST {base_url}/v1/Account/{auth_id}/Message/ queues the message and answers its
`message_uuid`s (one per recipient); GET …/Message/{uuid}/ tells its `message_state` and
price, which is how statuses come back here (polling: Plivo's callbacks are signed with
a scheme over the full callback URL that a proxy in front of the platform would break).
https://www.plivo.com/docs/messaging/api/message

Plain HTTP over the record's kept-alive session rather than the plivo SDK, whose client takes
no endpoint (only proxies): it could be pointed neither at a regional proxy nor at a test peer.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from common.channels import Channel
from common.exceptions import ProviderPermanentError, ProviderTransientError

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
from .segments import count_segments

STATE_EVENTS = {
    "sent": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "undelivered": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
    "rejected": DeliveryEventType.FAILED,
}


@register
class PlivoSmsProvider(BaseProvider):
    """Credentials: auth_id, auth_token. Config: from_number (or sender id), base_url
    (default https://api.plivo.com), max_segments."""

    code = "plivo_sms"
    channel = Channel.SMS
    name = "Plivo SMS"
    sensitive_params = ("auth_token",)
    required_params = ("auth_id", "auth_token", "from_number")
    env_credentials = {"auth_id": "PLIVO_AUTH_ID", "auth_token": "PLIVO_AUTH_TOKEN"}
    endpoint_domains = ("plivo.com",)
    supports_status_polling = True
    concurrent_sends = True

    def _url(self, path: str) -> str:
        base = (self.config.get("base_url") or "https://api.plivo.com").rstrip("/")
        return f"{base}/v1/Account/{self.require('auth_id')}/{path.lstrip('/')}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.http().request(method, self._url(path), auth=(str(self.require("auth_id")), str(self.require("auth_token"))),
                                        timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ProviderTransientError(f"Plivo unreachable: {exc.__class__.__name__}", code="connection") from None
        if response.status_code >= 300:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> Exception:
        try:
            message = str(response.json().get("error") or "")
        except ValueError:
            message = ""
        detail = f"Plivo HTTP {response.status_code}: {message}"[:300] if message else f"Plivo HTTP {response.status_code}"
        if response.status_code in (401, 403):
            return ProviderPermanentError(detail, code="auth")
        return transient_or_permanent_for_status(response.status_code, detail, retry_after=_retry_after(response))

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        segments = count_segments(message.text)
        limit = int(self.config.get("max_segments") or 10)
        if segments.segments > limit:
            raise ProviderPermanentError(f"Message needs {segments.segments} segments (limit {limit}).", code="too_long")
        body: dict[str, Any] = {"src": str(self.require("from_number")).lstrip("+"), "dst": to.lstrip("+"), "text": message.text,
                                "type": "sms"}
        if self.config.get("status_callback_url"):
            body.update(url=self.config["status_callback_url"], method="POST")
        data = self._call("POST", "Message/", json=body).json()
        uuids = data.get("message_uuid") or []
        if not uuids:
            raise ProviderTransientError("Plivo answered without a message id.", code="no_id")
        return SendResult(provider_message_id=uuids[0], status=SendStatus.QUEUED, segments=segments.segments,
                          raw={"message_uuid": uuids, "api_id": data.get("api_id", ""), "encoding": segments.encoding})

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        data = self._call("GET", f"Message/{provider_message_id}/").json()
        event = STATE_EVENTS.get(str(data.get("message_state") or ""))
        if event is None:
            return None
        try:
            cost = Decimal(str(data.get("total_amount"))) if data.get("total_amount") not in (None, "") else None
        except InvalidOperation:
            cost = None
        error = data.get("error_code")
        return DeliveryEvent(provider_message_id=provider_message_id, event=event, timestamp=datetime.now(UTC),
                             recipient=f"+{data['to_number']}" if data.get("to_number") else "",
                             reason=f"Plivo error {error}" if error not in (None, "", "0", 0) else "",
                             cost_amount=cost, cost_currency="USD" if cost is not None else "")

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            data = self._call("GET", "").json()
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail),
                                credentials_refused=exc.code == "auth")
        except ProviderTransientError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started), detail=f"credits {data.get('cash_credits', '?')}")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    return float(value) if value and value.isdigit() else None
