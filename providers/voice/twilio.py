"""Voice calls through Twilio with inline TwiML: Say (language, voice) or Play, then an
optional Gather "press 1 to acknowledge" posting to /webhooks/twilio/voice/gather/."""
from __future__ import annotations

from datetime import UTC
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import Gather, VoiceResponse

from common.exceptions import ProviderPermanentError
from common.channels import Channel

from ..base import OutboundMessage, SendResult, SendStatus
from ..phone import normalize_e164
from ..registry import register
from ..twilio_common import TwilioMixin, status_callback_url, twilio_price

# Twilio <Say> languages for the locales we ship; anything else falls back to en-US.
SAY_LANGUAGES = {"en": "en-US", "fr": "fr-FR", "de": "de-DE", "es": "es-ES", "it": "it-IT", "pt": "pt-BR", "nl": "nl-NL"}
ACK_PROMPTS = {
    "en": "Press {digit} to acknowledge this notification.",
    "fr": "Appuyez sur {digit} pour confirmer la réception de cette notification.",
}


def gather_url(config: dict) -> str:
    return config.get("gather_url") or f"{settings.SITE_URL}/webhooks/twilio/voice/gather/"


def build_twiml(message: OutboundMessage, *, config: dict) -> str:
    language = message.voice_language or SAY_LANGUAGES.get((message.locale or "en")[:2], "en-US")
    voice = message.voice_name or config.get("voice") or "alice"
    response = VoiceResponse()
    if message.audio_url:
        response.play(message.audio_url)
    elif message.text:
        response.say(message.text, voice=voice, language=language)
    else:
        raise ProviderPermanentError("Voice message has neither text nor audio.", code="validation")
    if message.require_acknowledgment:
        digit = (message.acknowledgment_digit or "1")[:1]
        # "#" ends a Gather by default: when it is the digit to press, nothing may end it early.
        extra = {"finish_on_key": ""} if digit == "#" else {}
        gather = Gather(num_digits=1, action=gather_url(config), method="POST", timeout=int(config.get("gather_timeout") or 8), **extra)
        prompt = ACK_PROMPTS.get((message.locale or "en")[:2], ACK_PROMPTS["en"]).format(digit=digit)
        gather.say(prompt, voice=voice, language=language)
        response.append(gather)
    return str(response)


@register
class TwilioVoiceProvider(TwilioMixin):
    """Config: from_number, base_url, voice, machine_detection, gather_url, status_callback_url."""

    code = "twilio_voice"
    channel = Channel.VOICE
    name = "Twilio Voice"
    concurrent_sends = True  # one HTTP call over the record's shared Twilio client

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        twiml = build_twiml(message, config=self.config)
        params: dict[str, Any] = {
            "to": to,
            "from_": normalize_e164(str(self.require("from_number"))),
            "twiml": twiml,
            "status_callback": status_callback_url(self.config),
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            "status_callback_method": "POST",
        }
        if self.config.get("machine_detection"):
            params["machine_detection"] = self.config["machine_detection"]
        if message.options.get("record"):
            params["record"] = True
        try:
            call = self.client().calls.create(**params)
        except (TwilioException, requests.RequestException) as exc:
            raise self.twilio_error(exc) from None
        amount, currency = twilio_price(call.price, call.price_unit)
        return SendResult(provider_message_id=call.sid, status=SendStatus.QUEUED, cost_amount=amount, cost_currency=currency,
                          raw={"sid": call.sid, "status": call.status, "acknowledgment": message.require_acknowledgment})

    def get_delivery_status(self, provider_message_id: str):
        from datetime import datetime

        from ..base import DeliveryEvent
        from ..twilio_common import CALL_STATUS_EVENTS

        try:
            call = self.client().calls(provider_message_id).fetch()
        except (TwilioException, requests.RequestException) as exc:
            raise self.twilio_error(exc) from None
        event = CALL_STATUS_EVENTS.get(call.status or "")
        if event is None:
            return None
        amount, currency = twilio_price(call.price, call.price_unit)
        return DeliveryEvent(provider_message_id=provider_message_id, event=event, timestamp=call.date_updated or datetime.now(UTC),
                             reason="" if call.status == "completed" else f"call {call.status}", cost_amount=amount, cost_currency=currency)
