"""Push through OneSignal's REST API: the recipient is addressed by its external id (our user
id, set by the app with `OneSignal.login(userId)`), so OneSignal keeps the devices.

POST {base_url}/notifications with `Authorization: Key <REST API key>`; the answer's `id`
is the notification, and GET /notifications/{id}?app_id=… tells how many devices it
reached (polled: `successful` → DELIVERED, only `failed`/`errored` → FAILED).
https://documentation.onesignal.com/reference/push-notification
"""
from __future__ import annotations

import time
import uuid
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
from ..registry import register
from .common import push_options, recipient_user_id

# The idempotency key OneSignal wants is a UUID: one per delivery, the same on every retry.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("2f0b6c1e-6a43-4a4b-9d1e-6f6e65736967")
_PRIORITY = {"low": 5, "normal": 5, "high": 10}


@register
class OneSignalProvider(BaseProvider):
    """Credentials: rest_api_key, webhook_secret (in the URL of its web push webhooks,
    /webhooks/onesignal/<record id>/<webhook_secret>/). Config: app_id, base_url (default
    https://api.onesignal.com), android_channel_id."""

    code = "onesignal"
    channel = Channel.PUSH
    name = "OneSignal"
    sensitive_params = ("rest_api_key", "webhook_secret")
    required_params = ("rest_api_key", "app_id")
    env_credentials = {"rest_api_key": "ONESIGNAL_REST_API_KEY"}
    endpoint_domains = ("onesignal.com",)
    supports_status_polling = True
    supports_webhooks = True
    concurrent_sends = True

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        base = (self.config.get("base_url") or "https://api.onesignal.com").rstrip("/")
        headers = {"Authorization": f"Key {self.require('rest_api_key')}", "Accept": "application/json"}
        try:
            response = self.http().request(method, f"{base}/{path.lstrip('/')}", headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ProviderTransientError(f"OneSignal unreachable: {exc.__class__.__name__}", code="connection") from None
        if response.status_code >= 300:
            raise self._error(response)
        return response

    @staticmethod
    def _error(response: requests.Response) -> Exception:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        text = "; ".join(str(e) for e in errors)[:250] if isinstance(errors, list) else str(errors)[:250]
        detail = f"OneSignal HTTP {response.status_code}: {text}" if text else f"OneSignal HTTP {response.status_code}"
        if response.status_code in (401, 403):
            return ProviderPermanentError(detail, code="auth")
        retry = response.headers.get("Retry-After")
        return transient_or_permanent_for_status(response.status_code, detail, retry_after=float(retry) if retry and retry.isdigit() else None)

    def _body(self, message: OutboundMessage) -> dict[str, Any]:
        ttl, urgency = push_options(message.criticality)
        language = (message.locale or "en").split("-")[0]
        body: dict[str, Any] = {
            "app_id": self.require("app_id"),
            "target_channel": "push",
            "include_aliases": {"external_id": [str(recipient_user_id(message))]},
            "contents": {"en": message.text, **({language: message.text} if language != "en" else {})},
            "ttl": ttl,
            "priority": _PRIORITY[urgency],
        }
        title = message.title or message.subject
        if title:
            body["headings"] = {"en": title, **({language: title} if language != "en" else {})}
        if message.action_url:
            body["url"] = message.action_url
        if message.data:
            body["data"] = {str(k): v for k, v in message.data.items()}
        if self.config.get("android_channel_id"):
            body["android_channel_id"] = self.config["android_channel_id"]
        if message.idempotency_key:
            body["idempotency_key"] = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, str(message.idempotency_key)))
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        data = self._call("POST", "notifications", json=self._body(message)).json()
        errors = data.get("errors")
        if not data.get("id"):
            # 200 without an id: no subscribed device for this external id.
            detail = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors or "no notification id")
            raise ProviderPermanentError(f"OneSignal: {detail}"[:300], code="no_subscription")
        return SendResult(provider_message_id=data["id"], status=SendStatus.QUEUED,
                          raw={"id": data["id"], "invalid_aliases": bool(errors)})

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        data = self._call("GET", f"notifications/{provider_message_id}", params={"app_id": self.require("app_id")}).json()
        if data.get("successful"):
            event = DeliveryEventType.DELIVERED
        elif (data.get("failed") or data.get("errored")) and not data.get("remaining"):
            event = DeliveryEventType.FAILED
        else:
            return None
        return DeliveryEvent(provider_message_id=provider_message_id, event=event, timestamp=datetime.now(UTC),
                             reason="" if event == DeliveryEventType.DELIVERED
                             else f"OneSignal: {data.get('failed', 0)} failed, {data.get('errored', 0)} errored")

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            self._call("GET", "notifications", params={"app_id": self.require("app_id"), "limit": 1})
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail),
                                credentials_refused=exc.code == "auth")
        except ProviderTransientError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started))
