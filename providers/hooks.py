"""The provider layer's one way up.

Providers turn what a provider reports (status webhooks, polling answers, a digit pressed
during a call) into normalized `DeliveryEvent`s and hand them here; the notification
platform connects its handlers in its `AppConfig.ready()` — the way django-anymail's
`tracking` signal works, with one handler each and its answer passed back. So the provider
layer never imports the notification engine (docs/architecture.md).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from .base import DeliveryEvent


class DeliveryEventsHandler(Protocol):
    def __call__(self, *, provider_code: str, events: Iterable[DeliveryEvent], provider_id: int | None,
                 unbound_codes: Iterable[str] = ()) -> int: ...


class VoiceDigitsHandler(Protocol):
    def __call__(self, *, call_sid: str, digits: str, provider_ids: Iterable[int] = (),
                 unbound_codes: Iterable[str] = ()) -> bool: ...


_handlers: dict[str, Callable] = {}


def connect(*, delivery_events: DeliveryEventsHandler, voice_digits: VoiceDigitsHandler) -> None:
    """Called once by the app that owns the deliveries."""
    _handlers.update(delivery_events=delivery_events, voice_digits=voice_digits)


def _handler(name: str) -> Callable:
    try:
        return _handlers[name]
    except KeyError:
        raise RuntimeError(f"No {name} handler connected to providers.hooks (is the notifications app installed?)") from None


def delivery_events_report(*, provider_code: str, events: Iterable[DeliveryEvent], provider_id: int | None,
                           unbound_codes: Iterable[str] = ()) -> int:
    """Report normalized events about messages the authenticated account (`provider_id`, or the
    environment's `unbound_codes`) sent; returns how many deliveries changed."""
    return _handler("delivery_events")(provider_code=provider_code, events=events, provider_id=provider_id,
                                       unbound_codes=unbound_codes)


def voice_digits_report(*, call_sid: str, digits: str, provider_ids: Iterable[int] = (),
                        unbound_codes: Iterable[str] = ()) -> bool:
    """Report the digit pressed during a call; True when it acknowledged the notification."""
    return _handler("voice_digits")(call_sid=call_sid, digits=digits, provider_ids=provider_ids,
                                    unbound_codes=unbound_codes)
