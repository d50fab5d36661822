"""WhatsApp through Twilio: free text inside the 24-hour window, Content templates outside."""
from __future__ import annotations

import json
from typing import Any

import requests
from twilio.base.exceptions import TwilioException

from common.channels import Channel

from ..base import OutboundMessage, SendResult, SendStatus
from ..phone import normalize_e164
from ..registry import register
from ..twilio_common import TwilioMixin, status_callback_url, twilio_price


@register
class TwilioWhatsAppProvider(TwilioMixin):
    """Config: from_number (the WhatsApp sender), base_url, templates: {template name:
    content SID} (Twilio identifies approved templates by Content SID)."""

    code = "twilio_whatsapp"
    channel = Channel.WHATSAPP
    name = "Twilio WhatsApp"
    concurrent_sends = True  # one HTTP call over the record's shared Twilio client

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        params: dict[str, Any] = {
            "to": f"whatsapp:{to}",
            "from_": f"whatsapp:{normalize_e164(str(self.require('from_number')))}",
            "status_callback": status_callback_url(self.config),
        }
        if message.template_name:
            content_sid = (self.config.get("templates") or {}).get(message.template_name) or message.template_name
            params["content_sid"] = content_sid
            variables: dict[str, Any] = {}
            for component in message.template_components:
                for index, parameter in enumerate(component.get("parameters", []), start=1):
                    if parameter.get("type", "text") == "text":
                        variables[str(len(variables) + 1)] = parameter.get("text", "")
            if variables:
                params["content_variables"] = json.dumps(variables)
        else:
            params["body"] = message.text
            if message.options.get("media_url"):
                params["media_url"] = [message.options["media_url"]]
        try:
            sent = self.client().messages.create(**params)
        except (TwilioException, requests.RequestException) as exc:
            raise self.twilio_error(exc) from None
        amount, currency = twilio_price(sent.price, sent.price_unit)
        return SendResult(provider_message_id=sent.sid, status=SendStatus.QUEUED, cost_amount=amount, cost_currency=currency,
                          raw={"sid": sent.sid, "status": sent.status, "template": bool(message.template_name)})
