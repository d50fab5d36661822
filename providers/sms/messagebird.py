"""SMS through MessageBird (now Bird)'s REST SMS API.

POST {base_url}/messages with `Authorization: AccessKey …` answers the message id; GET
/messages/{id} tells each recipient's status, which is how statuses come back here (polling).
Bird's newer channel API keeps this endpoint for existing accounts.
https://developers.messagebird.com/api/sms-messaging/
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
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

RECIPIENT_EVENTS = {
    "sent": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "delivery_failed": DeliveryEventType.FAILED,
    "expired": DeliveryEventType.FAILED,
}
# MessageBird error codes: 2 = access key refused, 9 = no (correct) recipients, 25 = not enough balance.
AUTH_CODES = {2}


@register
class MessageBirdSmsProvider(BaseProvider):
    """Credentials: access_key, signing_key (signed status reports at
    /webhooks/messagebird/sms/status/). Config: originator (a number or an alphanumeric
    sender), base_url (default https://rest.messagebird.com), max_segments,
    status_callback_url."""

    code = "messagebird_sms"
    channel = Channel.SMS
    name = "MessageBird (Bird) SMS"
    sensitive_params = ("access_key", "signing_key")
    required_params = ("access_key", "originator")
    env_credentials = {"access_key": "MESSAGEBIRD_ACCESS_KEY", "signing_key": "MESSAGEBIRD_SIGNING_KEY"}
    endpoint_domains = ("messagebird.com", "bird.com")
    supports_status_polling = True
    supports_webhooks = True
    concurrent_sends = True

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        base = (self.config.get("base_url") or "https://rest.messagebird.com").rstrip("/")
        headers = {"Authorization": f"AccessKey {self.require('access_key')}", "Accept": "application/json"}
        try:
            response = self.http().request(method, f"{base}/{path.lstrip('/')}", headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ProviderTransientError(f"MessageBird unreachable: {exc.__class__.__name__}", code="connection") from None
        if response.status_code >= 300:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> Exception:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code = first.get("code")
        detail = (f"MessageBird error {code}: {first.get('description', '')}"[:300] if code is not None
                  else f"MessageBird HTTP {response.status_code}")
        if code in AUTH_CODES or response.status_code in (401, 403):
            return ProviderPermanentError(detail, code="auth")
        if code == 9:
            return ProviderPermanentError(detail, code="invalid_recipient")
        return transient_or_permanent_for_status(response.status_code, detail)

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        segments = count_segments(message.text)
        limit = int(self.config.get("max_segments") or 10)
        if segments.segments > limit:
            raise ProviderPermanentError(f"Message needs {segments.segments} segments (limit {limit}).", code="too_long")
        body: dict[str, Any] = {"recipients": [to.lstrip("+")], "originator": str(self.require("originator")).lstrip("+"),
                                "body": message.text, "datacoding": "unicode" if segments.unicode else "plain"}
        if message.idempotency_key:
            body["reference"] = str(message.idempotency_key)
        if self.config.get("status_callback_url"):
            body["reportUrl"] = self.config["status_callback_url"]
        elif self.credentials.get("signing_key"):
            # Reports to our URL only when they can be verified (signed with this key).
            from django.conf import settings

            body["reportUrl"] = f"{settings.SITE_URL}/webhooks/messagebird/sms/status/"
        data = self._call("POST", "messages", json=body).json()
        if not data.get("id"):
            raise ProviderTransientError("MessageBird answered without a message id.", code="no_id")
        return SendResult(provider_message_id=data["id"], status=SendStatus.QUEUED, segments=segments.segments,
                          raw={"id": data["id"], "sent": (data.get("recipients") or {}).get("totalSentCount")})

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        data = self._call("GET", f"messages/{provider_message_id}").json()
        items = (data.get("recipients") or {}).get("items") or []
        if not items:
            return None
        item = items[0]
        event = RECIPIENT_EVENTS.get(str(item.get("status") or ""))
        if event is None:
            return None
        reason = str(item.get("statusReason") or "")
        if item.get("statusErrorCode") is not None:
            reason = f"{reason} (error {item['statusErrorCode']})".strip()
        return DeliveryEvent(provider_message_id=provider_message_id, event=event, timestamp=datetime.now(UTC),
                             recipient=f"+{item.get('recipient')}" if item.get("recipient") else "", reason=reason)

    @staticmethod
    def status_report_parse(params: dict[str, Any]) -> list[DeliveryEvent]:
        """A status report (already verified, providers.webhooks_bird_onesignal) → events."""
        event = RECIPIENT_EVENTS.get(str(params.get("status") or ""))
        if event is None or not params.get("id"):
            return []
        reason = str(params.get("statusReason") or "")
        if params.get("statusErrorCode") not in (None, ""):
            reason = f"{reason} (error {params['statusErrorCode']})".strip()
        try:
            when = datetime.fromisoformat(str(params.get("statusDatetime") or "").replace("Z", "+00:00"))
        except ValueError:
            when = datetime.now(UTC)
        recipient = str(params.get("recipient") or "")
        return [DeliveryEvent(provider_message_id=str(params["id"]), event=event, timestamp=when,
                              recipient=f"+{recipient}" if recipient.isdigit() else "",
                              reason=reason if event == DeliveryEventType.FAILED else "",
                              hard=str(params.get("statusErrorCode") or "") == "1")]

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        return self.status_report_parse(payload)

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            data = self._call("GET", "balance").json()
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail),
                                credentials_refused=exc.code == "auth")
        except ProviderTransientError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started),
                            detail=f"balance {data.get('amount', '?')} {data.get('type', '')}".strip())
