"""WhatsApp through Twilio: free text inside the 24-hour window, Content templates outside.

WhatsApp's customer service window is the same through Twilio as through Meta: free text may
go to a number only within 24 hours of that number's last message to the sender. The window
is opened by Twilio's signed inbound-message webhook (`/webhooks/twilio/whatsapp/inbound/`,
providers.webhooks); outside it only an approved template (a Content SID, ``HX…``, given
directly or through the record's ``templates`` map) is sent, and free text is refused before
any call with the reason (Twilio would answer error 63016 after the fact).
"""
from __future__ import annotations

import json
from typing import Any

import requests
from twilio.base.exceptions import TwilioException

from common.channels import Channel
from common.exceptions import ProviderPermanentError

from ..base import OutboundMessage, SendResult, SendStatus
from ..phone import normalize_e164
from ..registry import register
from ..twilio_common import TwilioMixin, status_callback_url, twilio_price
from .window import window_open


def twilio_sender_id(from_number: str) -> str:
    """The window's business side for a Twilio WhatsApp sender (Meta's use phone number ids)."""
    return f"twilio:{normalize_e164(from_number).lstrip('+')}"


def content_sid_of(templates: Any, template_name: str) -> str:
    """The approved Content SID of a template: mapped by the record, or given as a SID."""
    mapped = (templates or {}).get(template_name) if isinstance(templates, dict) else None
    if mapped:
        return str(mapped)
    return template_name if template_name.startswith("HX") else ""


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
        from_number = normalize_e164(str(self.require("from_number")))
        params: dict[str, Any] = {
            "to": f"whatsapp:{to}",
            "from_": f"whatsapp:{from_number}",
            "status_callback": status_callback_url(self.config),
        }
        if message.template_name:
            content_sid = content_sid_of(self.config.get("templates"), message.template_name)
            if not content_sid:
                raise ProviderPermanentError(
                    f"WhatsApp template {message.template_name!r} has no approved Twilio Content SID (HX…) in this "
                    "provider's templates map.", code="template_unknown")
            params["content_sid"] = content_sid
            variables: dict[str, Any] = {}
            for component in message.template_components:
                for parameter in component.get("parameters", []):
                    if parameter.get("type", "text") == "text":
                        variables[str(len(variables) + 1)] = parameter.get("text", "")
            if variables:
                params["content_variables"] = json.dumps(variables)
        else:
            if not window_open(business_number_id=twilio_sender_id(from_number), customer=to):
                raise ProviderPermanentError(
                    "Outside the 24-hour customer service window WhatsApp accepts only an approved template "
                    "(a Twilio Content SID), not free text.", code="window_closed")
            if not message.text and not message.options.get("media_url"):
                raise ProviderPermanentError("WhatsApp message has neither a template nor text.", code="validation")
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
