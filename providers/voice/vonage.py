"""Voice calls through the Vonage Voice API (vonage SDK v4, application id + private key JWT).

The call's NCCO says the text (`talk`, language per locale) or streams `audio_url`, then, to
acknowledge, waits for one digit (`input`) posted to /webhooks/vonage/voice/event/. Call
progress comes back on the same URL (`event_url`): Vonage signs each callback with a JWT
(HS256, the account's signature secret) whose `payload_hash` is the SHA-256 of the body —
checked in providers.webhooks before anything is read.
https://developer.vonage.com/en/voice/voice-api/webhook-reference
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import AuthenticationError, ForbiddenError, HttpRequestError
from vonage_utils.errors import VonageError
from vonage_voice import CreateCallRequest, Dtmf, Input, Phone, Stream, Talk, ToPhone

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

# Vonage text-to-speech languages for the locales we ship.
TALK_LANGUAGES = {"en": "en-US", "fr": "fr-FR", "de": "de-DE", "es": "es-ES", "it": "it-IT", "pt": "pt-BR", "nl": "nl-NL"}
ACK_PROMPTS = {
    "en": "Press {digit} to acknowledge this notification.",
    "fr": "Appuyez sur {digit} pour confirmer la réception de cette notification.",
}
CALL_EVENTS = {
    "started": DeliveryEventType.SENT,
    "ringing": DeliveryEventType.SENT,
    "answered": DeliveryEventType.DELIVERED,
    "completed": DeliveryEventType.DELIVERED,
    "busy": DeliveryEventType.FAILED,
    "cancelled": DeliveryEventType.FAILED,
    "unanswered": DeliveryEventType.FAILED,
    "rejected": DeliveryEventType.FAILED,
    "failed": DeliveryEventType.FAILED,
    "timeout": DeliveryEventType.FAILED,
    "machine": DeliveryEventType.FAILED,
}

# Vonage's words for a call nobody picked up, in the platform's (which redials those: seed 004 §4.8).
NO_ANSWER = {"unanswered": "no-answer", "timeout": "no-answer"}


def event_url(config: dict[str, Any]) -> str:
    return config.get("event_url") or f"{settings.SITE_URL}/webhooks/vonage/voice/event/"


@register
class VonageVoiceProvider(BaseProvider):
    """Credentials: application_id, private_key (PEM), signature_secret (callbacks). Config:
    from_number, api_host (default api.nexmo.com, for a proxy or a test peer), event_url,
    ringing_timer, machine_detection."""

    code = "vonage_voice"
    channel = Channel.VOICE
    name = "Vonage Voice"
    sensitive_params = ("private_key", "signature_secret")
    required_params = ("application_id", "private_key", "from_number")
    env_credentials = {"application_id": "VONAGE_APPLICATION_ID", "private_key": "VONAGE_PRIVATE_KEY",
                       "signature_secret": "VONAGE_SIGNATURE_SECRET"}
    supports_webhooks = True
    supports_status_polling = True

    def client(self) -> Vonage:
        options: dict[str, Any] = {"timeout": int(self.timeout), "max_retries": 0}
        if self.config.get("api_host"):
            options["api_host"] = self.config["api_host"]
        auth = Auth(application_id=str(self.require("application_id")), private_key=str(self.require("private_key")))
        return Vonage(auth, HttpClientOptions(**options))

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, (AuthenticationError, ForbiddenError)):
            return ProviderPermanentError("Vonage rejected the credentials.", code="auth")
        if isinstance(exc, HttpRequestError):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            return transient_or_permanent_for_status(status, f"Vonage Voice HTTP {status}")
        if isinstance(exc, requests.RequestException):
            return ProviderTransientError(f"Vonage unreachable: {exc.__class__.__name__}", code="connection")
        return ProviderPermanentError(f"Vonage Voice error: {exc.__class__.__name__}", code="vonage")

    def ncco(self, message: OutboundMessage) -> list[Any]:
        language = message.voice_language or TALK_LANGUAGES.get((message.locale or "en")[:2], "en-US")
        actions: list[Any] = []
        if message.audio_url:
            actions.append(Stream(streamUrl=[message.audio_url]))
        elif message.text:
            actions.append(Talk(text=message.text[:1500], language=language))
        else:
            raise ProviderPermanentError("Voice message has neither text nor audio.", code="validation")
        if message.require_acknowledgment:
            digit = (message.acknowledgment_digit or "1")[:1]
            prompt = ACK_PROMPTS.get((message.locale or "en")[:2], ACK_PROMPTS["en"]).format(digit=digit)
            actions.append(Talk(text=prompt, language=language, bargeIn=True))
            actions.append(Input(type=["dtmf"], dtmf=Dtmf(maxDigits=1, timeOut=int(self.config.get("input_timeout") or 8)),
                                 eventUrl=[event_url(self.config)]))
        return actions

    def send(self, message: OutboundMessage) -> SendResult:
        to = normalize_e164(message.to)
        request = CreateCallRequest(
            to=[ToPhone(number=to.lstrip("+"))], from_=Phone(number=normalize_e164(str(self.require("from_number"))).lstrip("+")),
            ncco=self.ncco(message), event_url=[event_url(self.config)], event_method="POST",
            ringing_timer=int(self.config.get("ringing_timer") or 45),
            **({"machine_detection": self.config["machine_detection"]} if self.config.get("machine_detection") else {}),
        )
        try:
            call = self.client().voice.create_call(request)
        except (VonageError, requests.RequestException) as exc:
            raise self._error(exc) from None
        return SendResult(provider_message_id=call.uuid, status=SendStatus.QUEUED,
                          raw={"uuid": call.uuid, "status": call.status, "acknowledgment": message.require_acknowledgment})

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        try:
            call = self.client().voice.get_call(provider_message_id)
        except (VonageError, requests.RequestException) as exc:
            raise self._error(exc) from None
        return call_event({"uuid": provider_message_id, "status": call.status, "price": getattr(call, "price", None)})

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        event = call_event(payload)
        return [event] if event is not None else []

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            self.client().voice.list_calls()
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        except (VonageError, requests.RequestException) as exc:
            error = self._error(exc)
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(error),
                                credentials_refused=getattr(error, "code", "") == "auth")
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started))


def call_event(payload: dict[str, Any]) -> DeliveryEvent | None:
    """A Vonage call status (event webhook or GET /v1/calls/{uuid}) → a normalized event."""
    status = str(payload.get("status") or "")
    event = CALL_EVENTS.get(status)
    if event is None or not payload.get("uuid"):
        return None
    try:
        when = datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00")) if payload.get("timestamp") else datetime.now(UTC)
    except ValueError:
        when = datetime.now(UTC)
    try:
        cost = Decimal(str(payload["price"])) if payload.get("price") not in (None, "") else None
    except InvalidOperation:
        cost = None
    return DeliveryEvent(provider_message_id=str(payload["uuid"]), event=event, timestamp=when,
                         recipient=f"+{payload['to']}" if isinstance(payload.get("to"), str) and payload["to"].isdigit() else "",
                         reason="" if event != DeliveryEventType.FAILED else f"call {NO_ANSWER.get(status, status)}",
                         cost_amount=cost, cost_currency="EUR" if cost is not None else "")
