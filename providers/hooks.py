"""The provider layer's one way up.

Providers turn what a provider reports (status webhooks, polling answers, a digit pressed
during a call) into normalized `DeliveryEvent`s and hand them here; the notification
platform connects its handlers in its `AppConfig.ready()` — the way django-anymail's
`tracking` signal works, with one handler each and its answer passed back. So the provider
layer never imports the notification engine nor its tables (docs/architecture.md).

Besides events, the provider layer asks the owner of the deliveries three questions (who sent
a message with this id, how did a provider's sends go, what was sent in a period: webhook
verification, health and cost figures) and hands it the audit rows of provider changes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from .base import DeliveryEvent

logger = logging.getLogger(__name__)


class DeliveryEventsHandler(Protocol):
    def __call__(self, *, provider_code: str, events: Iterable[DeliveryEvent], provider_id: int | None,
                 unbound_codes: Iterable[str] = ()) -> int: ...


class VoiceDigitsHandler(Protocol):
    def __call__(self, *, call_sid: str, digits: str, provider_ids: Iterable[int] = (),
                 unbound_codes: Iterable[str] = ()) -> bool: ...


class SentByHandler(Protocol):
    def __call__(self, *, provider_message_ids: Iterable[str], codes: Iterable[str] | None = None,
                 channel: str | None = None) -> set[tuple[int | None, str]]: ...


class SentCountsHandler(Protocol):
    def __call__(self, *, provider_id: int, since: datetime) -> tuple[int, int]: ...


class SentSummaryHandler(Protocol):
    def __call__(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]: ...


class AuditHandler(Protocol):
    def __call__(self, *, rows: list[dict[str, Any]]) -> None: ...


class ProviderAlertKind:
    UNHEALTHY = "provider_unhealthy"  # a health check failed
    CIRCUIT_OPEN = "circuit_open"  # too many transient failures in a row
    CREDENTIALS_REFUSED = "credentials_refused"  # 401/403 while sending


class ProviderAlertHandler(Protocol):
    def __call__(self, *, kind: str, provider_id: int | None, provider_code: str, channel: str,
                 organization_id: int | None, detail: str) -> bool: ...


_handlers: dict[str, Callable] = {}


def connect(*, delivery_events: DeliveryEventsHandler, voice_digits: VoiceDigitsHandler, sent_by: SentByHandler,
            sent_counts: SentCountsHandler, sent_summary: SentSummaryHandler, audit: AuditHandler,
            provider_alert: ProviderAlertHandler | None = None) -> None:
    """Called once by the app that owns the deliveries."""
    _handlers.update(delivery_events=delivery_events, voice_digits=voice_digits, sent_by=sent_by,
                     sent_counts=sent_counts, sent_summary=sent_summary, audit=audit)
    if provider_alert is not None:
        _handlers["provider_alert"] = provider_alert


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


def sent_by(*, provider_message_ids: Iterable[str], codes: Iterable[str] | None = None,
            channel: str | None = None) -> set[tuple[int | None, str]]:
    """(provider record id or None, provider code) of the accounts that sent the messages with
    these provider ids (optionally only by these codes, on this channel)."""
    return _handler("sent_by")(provider_message_ids=provider_message_ids, codes=codes, channel=channel)


def sent_counts(*, provider_id: int, since: datetime) -> tuple[int, int]:
    """(succeeded, failed) messages a provider record sent since `since`."""
    return _handler("sent_counts")(provider_id=provider_id, since=since)


def sent_summary(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per (provider_record_id, provider, channel): total, delivered, succeeded, failed, cost,
    priced (how many carried a price) and currency of the messages sent in [start, end)."""
    return _handler("sent_summary")(start=start, end=end)


def audit_report(*rows: dict[str, Any]) -> None:
    """Audit rows (fields of the audit log: action, outcome, actor_type, actor_label, actor_id,
    organization_id, provider_id, user_id, delivery_id, notification_id, details,
    error_message), written at once in the caller's transaction."""
    if rows:
        _handler("audit")(rows=list(rows))


def provider_alert_report(*, kind: str, provider_id: int | None, provider_code: str, channel: str,
                          organization_id: int | None, detail: str) -> bool:
    """A provider went wrong (`ProviderAlertKind`): operators hear of it through the platform,
    deduplicated there. Never raises: an alert must not fail the send that noticed the outage."""
    logger.warning("provider %s (%s, %s): %s — %s", provider_id, provider_code, channel, kind, detail[:200])
    handler = _handlers.get("provider_alert")
    if handler is None:
        return False
    try:
        return bool(handler(kind=kind, provider_id=provider_id, provider_code=provider_code, channel=channel,
                            organization_id=organization_id, detail=detail))
    except Exception:  # noqa: BLE001 - see the docstring
        logger.exception("provider alert %s for %s could not be raised", kind, provider_code)
        return False
