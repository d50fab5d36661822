"""WhatsApp Cloud API (Meta Graph API): POST /{version}/{phone_number_id}/messages.

Business-initiated conversations need an approved template (name, language, components);
free text is accepted only inside the 24-hour customer service window — Meta answers
error 131047 otherwise, which is permanent for this message (send a template instead).
"""
from __future__ import annotations

import time
from datetime import UTC
from typing import Any

import requests

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
from .window import window_open, window_record

# Graph error codes: throttling and temporary trouble → another provider or later.
META_TRANSIENT_CODES = {1, 2, 4, 17, 80007, 130429, 131016, 131048, 131056, 133004}
META_AUTH_CODES = {0, 10, 190, 200}

STATUS_EVENTS = {
    "sent": DeliveryEventType.SENT,
    "delivered": DeliveryEventType.DELIVERED,
    "read": DeliveryEventType.OPENED,
    "failed": DeliveryEventType.FAILED,
}


def template_components(message: OutboundMessage) -> list[dict[str, Any]]:
    """The template's components, with the media header and the buttons' parameters the options add
    (an approved template fixes its buttons; the message fills their payloads and URL suffixes)."""
    components = [dict(c) for c in message.template_components or []]
    options = message.options
    kinds = {c.get("type") for c in components}
    media_url, media_type = options.get("media_url"), options.get("media_type") or "image"
    if media_url and "header" not in kinds:
        components.insert(0, {"type": "header", "parameters": [{"type": media_type, media_type: {"link": media_url}}]})
    if options.get("buttons") and "button" not in kinds:
        for index, button in enumerate(options["buttons"]):
            if button.get("type") == "url":
                parameter = {"type": "text", "text": button.get("url", "")}
                components.append({"type": "button", "sub_type": "url", "index": str(index), "parameters": [parameter]})
            else:
                parameter = {"type": "payload", "payload": button.get("id") or button.get("text", "")}
                components.append({"type": "button", "sub_type": "quick_reply", "index": str(index), "parameters": [parameter]})
    return components


def free_form(message: OutboundMessage) -> dict[str, Any]:
    """A message inside the window: text, media with a caption, or interactive buttons."""
    options = message.options
    buttons = options.get("buttons") or []
    media_url, media_type = options.get("media_url"), options.get("media_type") or "image"
    if buttons:
        url_buttons = [b for b in buttons if b.get("type") == "url"]
        interactive: dict[str, Any] = {"body": {"text": message.text or message.title or "-"}}
        if media_url and media_type in ("image", "video", "document"):
            interactive["header"] = {"type": media_type, media_type: {"link": media_url}}
        if url_buttons:  # WhatsApp shows one call-to-action URL button
            interactive.update(type="cta_url", action={"name": "cta_url", "parameters": {
                "display_text": url_buttons[0]["text"], "url": url_buttons[0]["url"]}})
        else:
            interactive.update(type="button", action={"buttons": [
                {"type": "reply", "reply": {"id": (b.get("id") or f"b{i}")[:256], "title": b["text"][:20]}}
                for i, b in enumerate(buttons)]})
        return {"type": "interactive", "interactive": interactive}
    if media_url:
        media: dict[str, Any] = {"link": media_url}
        if message.text:
            media["caption"] = message.text
        return {"type": media_type, media_type: media}
    return {"type": "text", "text": {"preview_url": bool(message.action_url), "body": message.text}}


@register
class MetaWhatsAppProvider(BaseProvider):
    """Credentials: access_token, app_secret (webhook signatures). Config: phone_number_id,
    base_url (default https://graph.facebook.com), api_version (default v21.0)."""

    code = "meta_whatsapp"
    channel = Channel.WHATSAPP
    name = "Meta WhatsApp Cloud API"
    concurrent_sends = True  # one HTTPS call over the record's kept-alive session
    sensitive_params = ("access_token", "app_secret")
    required_params = ("access_token", "phone_number_id")
    env_credentials = {"access_token": "WHATSAPP_ACCESS_TOKEN", "app_secret": "WHATSAPP_APP_SECRET"}
    supports_webhooks = True

    def _url(self, path: str) -> str:
        base = (self.config.get("base_url") or "https://graph.facebook.com").rstrip("/")
        return f"{base}/{self.config.get('api_version') or 'v21.0'}/{path.lstrip('/')}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.require('access_token')}", "Content-Type": "application/json"}

    def _body(self, message: OutboundMessage) -> dict[str, Any]:
        to = normalize_e164(message.to).lstrip("+")
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        options = message.options
        if message.template_name:
            template: dict[str, Any] = {"name": message.template_name,
                                        "language": {"code": message.template_language or message.locale or "en"}}
            components = template_components(message)
            if components:
                template["components"] = components
            body.update(type="template", template=template)
        else:
            if not window_open(business_number_id=str(self.setting("phone_number_id") or ""), customer=to):
                raise ProviderPermanentError(
                    "Outside the 24-hour customer service window WhatsApp accepts only an approved template "
                    "(template_name), not free text.", code="window_closed")
            if not message.text and not options.get("media_url"):
                raise ProviderPermanentError("WhatsApp message has neither a template nor text.", code="validation")
            body.update(free_form(message))
        if message.idempotency_key:
            body["biz_opaque_callback_data"] = str(message.idempotency_key)
        return body

    def _error(self, response: requests.Response) -> Exception:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        code = error.get("code")
        detail = f"Meta error {code}: {error.get('message', '')}"[:300] if code is not None else f"Meta HTTP {response.status_code}"
        if code in META_TRANSIENT_CODES:
            return ProviderTransientError(detail, code=str(code))
        if code in META_AUTH_CODES or response.status_code in (401, 403):
            return ProviderPermanentError(detail, code="auth")
        return transient_or_permanent_for_status(response.status_code, detail)

    def send(self, message: OutboundMessage) -> SendResult:
        body = self._body(message)
        try:
            response = self.http().post(self._url(f"{self.require('phone_number_id')}/messages"), json=body,
                                        headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise ProviderTransientError(f"Meta Graph API unreachable: {exc.__class__.__name__}", code="connection") from None
        if response.status_code >= 300:
            raise self._error(response)
        data = response.json()
        message_id = (data.get("messages") or [{}])[0].get("id", "")
        if not message_id:
            raise ProviderTransientError("Meta Graph API answered without a message id.", code="no_id")
        return SendResult(provider_message_id=message_id, status=SendStatus.QUEUED,
                          raw={"id": message_id, "wa_id": (data.get("contacts") or [{}])[0].get("wa_id", ""), "template": body["type"] == "template"})

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            response = requests.get(self._url(str(self.require("phone_number_id"))), headers=self._headers(),
                                    params={"fields": "quality_rating,messaging_limit_tier"}, timeout=self.timeout)
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc))
        except requests.RequestException as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=f"unreachable: {exc.__class__.__name__}")
        if response.status_code >= 300:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(self._error(response)))
        quality = response.json().get("quality_rating", "")
        return HealthResult(ok=quality != "RED", response_time_ms=self._elapsed_ms(started), detail=f"quality {quality}" if quality else "")

    @staticmethod
    def inbound_record(payload: dict[str, Any], *, records: list[Any] | None = None) -> int:
        """Open the 24-hour window of every customer who wrote to us in this (verified) webhook.

        ``records``: the accounts whose app secret signed it (None in the list: the platform's
        environment account, which may speak for any number). A message to a business number
        none of them owns opens nothing: one tenant's signature never opens a window on another
        tenant's number."""
        from datetime import datetime

        number_ids = None if records is None or any(r is None for r in records) else {
            str((r.config or {}).get("phone_number_id") or "") for r in records}

        opened = 0
        for entry in payload.get("entry", []) or []:
            for change in entry.get("changes", []) or []:
                value = change.get("value") or {}
                number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if number_ids is not None and number_id not in number_ids:
                    continue
                for inbound in value.get("messages", []) or []:
                    ts = str(inbound.get("timestamp") or "")
                    age = int(datetime.now(UTC).timestamp()) - int(ts) if ts.isdigit() else 0
                    if number_id and inbound.get("from"):
                        window_record(business_number_id=number_id, customer=str(inbound["from"]),
                                      seconds_left=24 * 3600 - max(age, 0))
                        opened += 1
        return opened

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        from datetime import datetime

        events: list[DeliveryEvent] = []
        for entry in payload.get("entry", []) or []:
            for change in entry.get("changes", []) or []:
                for status in (change.get("value") or {}).get("statuses", []) or []:
                    event = STATUS_EVENTS.get(status.get("status", ""))
                    if not event or not status.get("id"):
                        continue
                    ts = status.get("timestamp")
                    when = datetime.fromtimestamp(int(ts), tz=UTC) if str(ts or "").isdigit() else datetime.now(UTC)
                    errors = status.get("errors") or []
                    events.append(DeliveryEvent(provider_message_id=status["id"], event=event, timestamp=when,
                                                recipient=status.get("recipient_id", ""),
                                                reason=f"Meta error {errors[0].get('code')}" if errors else ""))
        return events
