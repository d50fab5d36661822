"""SMS through Twilio Programmable Messaging."""
from __future__ import annotations

from typing import Any

import requests
from twilio.base.exceptions import TwilioException

from common.channels import Channel

from ..base import OutboundMessage, SendResult, SendStatus
from ..phone import normalize_e164
from ..registry import register
from ..twilio_common import TwilioMixin, status_callback_url, twilio_price
from .segments import count_segments


@register
class TwilioSmsProvider(TwilioMixin):
    """Credentials: account_sid, auth_token. Config: from_number or messaging_service_sid,
    base_url (API base, for proxies and tests), status_callback_url, max_segments."""

    code = "twilio_sms"
    channel = Channel.SMS
    name = "Twilio SMS"
    concurrent_sends = True  # `send` is one HTTP call: a batch goes out from the send pool

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        segments = count_segments(message.text)
        max_segments = int(message.options.get("max_segments") or self.config.get("max_segments") or 10)
        if segments.segments > max_segments:
            from common.exceptions import ProviderPermanentError

            raise ProviderPermanentError(f"Message needs {segments.segments} segments (limit {max_segments}).", code="too_long")
        params: dict[str, Any] = {"to": to, "body": message.text, "status_callback": status_callback_url(self.config)}
        if message.options.get("from"):
            params["from_"] = message.options["from"]  # the organization's or the event's sender id
        elif self.setting("messaging_service_sid"):
            params["messaging_service_sid"] = self.setting("messaging_service_sid")
        else:
            params["from_"] = self.require("from_number")
        if message.options.get("unicode") is False and segments.unicode:
            # Not as UCS-2: Twilio replaces look-alike characters with their GSM-7 twins.
            params["smart_encoded"] = True
        try:
            sent = self.client().messages.create(**params)
        except (TwilioException, requests.RequestException) as exc:
            raise self.twilio_error(exc) from None
        amount, currency = twilio_price(sent.price, sent.price_unit)
        return SendResult(
            provider_message_id=sent.sid,
            status=SendStatus.QUEUED,
            cost_amount=amount,
            cost_currency=currency,
            segments=int(sent.num_segments) if sent.num_segments else segments.segments,
            raw={"sid": sent.sid, "status": sent.status, "encoding": segments.encoding},
        )
