"""The provider contract: one small class per external service.

A provider turns an `OutboundMessage` into exactly one call (or one batch call) to its
service and reports what happened as a `SendResult`, or raises:

- `ProviderTransientError` — timeouts, connection errors, HTTP 429 and 5xx: the message may
  go to the next provider for the channel, or be retried later. Set `retry_after` (seconds)
  when the service says how long to wait.
- `ProviderPermanentError` — invalid recipient, bad credentials, validation errors: no
  other attempt will help; the delivery fails with `detail` as its reason.

Providers never touch delivery rows, never decide about failover and never log secrets:
they are built per send from a resolved configuration (`config`, non-secret) and
`credentials` (secret), both plain dicts, by `providers.services`. Everything a test needs
to point a provider at a loopback peer (`base_url`, `endpoint_url`, hosts) lives in `config`.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from common.exceptions import ProviderPermanentError, ProviderTransientError

__all__ = [
    "Attachment",
    "BaseProvider",
    "CREDENTIALS_ERROR_CODES",
    "DeliveryEvent",
    "DeliveryEventType",
    "HealthResult",
    "OutboundMessage",
    "ProviderPermanentError",
    "ProviderTransientError",
    "SendResult",
    "SendStatus",
    "transient_or_permanent_for_status",
]


@dataclass
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"
    content_id: str | None = None  # inline images


@dataclass
class OutboundMessage:
    """One rendered message for one address on one channel.

    `to` is the channel address: an email address, an E.164 number (SMS, WhatsApp, voice) or,
    for push, the recipient user's id (providers look up that user's subscriptions).
    `idempotency_key` is the delivery id: providers that support it pass it on so a retried
    call is not sent twice, and it travels back in webhooks as metadata.
    """

    channel: str
    to: str
    text: str = ""
    subject: str = ""
    html: str = ""
    title: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    locale: str = "en"
    criticality: str = "MEDIUM"
    reply_to: str = ""
    from_address: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    track_opens: bool = False
    track_clicks: bool = False
    idempotency_key: str = ""
    # Email: the one-click unsubscribe URL (List-Unsubscribe / List-Unsubscribe-Post).
    unsubscribe_url: str = ""
    # Push: deep link opened on click.
    action_url: str = ""
    # WhatsApp template (required outside the 24-hour customer service window).
    template_name: str = ""
    template_language: str = ""
    template_components: list[dict[str, Any]] = field(default_factory=list)
    # Voice: Say (text, language, voice) or Play (audio_url); Gather to acknowledge.
    voice_language: str = ""
    voice_name: str = ""
    audio_url: str = ""
    require_acknowledgment: bool = False
    acknowledgment_digit: str = "1"
    metadata: dict[str, Any] = field(default_factory=dict)
    # Email copies.
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    # The channel's merged options (API.md "Channel options on an event"), for what has no typed
    # field: email template_id/template_data; push icon, badge, sound, click_action, data,
    # device_tokens, android, ios, web; SMS from, unicode, max_segments; WhatsApp media_url,
    # media_type, buttons; voice max_retries, retry_delay, record.
    options: dict[str, Any] = field(default_factory=dict)


class SendStatus:
    QUEUED = "queued"  # accepted by the provider, final status comes by webhook or polling
    SENT = "sent"
    DELIVERED = "delivered"  # e.g. the in-app or log provider: nothing further will happen


@dataclass
class SendResult:
    provider_message_id: str
    status: str = SendStatus.QUEUED
    cost_amount: Decimal | None = None
    cost_currency: str = ""
    segments: int | None = None
    # A short, secret-free summary of the provider's answer (ids, status, counts).
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_amount"] = str(self.cost_amount) if self.cost_amount is not None else None
        return data


@dataclass
class HealthResult:
    ok: bool
    response_time_ms: int | None = None
    detail: str = ""
    rate_limit_remaining: int | None = None
    # The service refused the credentials (401/403): saving such a record is refused.
    credentials_refused: bool = False


class DeliveryEventType:
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    BOUNCED = "BOUNCED"
    COMPLAINED = "COMPLAINED"
    FAILED = "FAILED"
    UNSUBSCRIBED = "UNSUBSCRIBED"

    ALL = (SENT, DELIVERED, OPENED, CLICKED, BOUNCED, COMPLAINED, FAILED, UNSUBSCRIBED)


@dataclass
class DeliveryEvent:
    """A provider's status report, normalized. `hard` marks a permanent bounce."""

    provider_message_id: str
    event: str
    timestamp: datetime
    recipient: str = ""
    reason: str = ""
    hard: bool = False
    cost_amount: Decimal | None = None
    cost_currency: str = ""


# `ProviderPermanentError.code` of refused credentials: "auth" (a provider's own mapping) or the
# HTTP status. Such an error is the provider account's fault, not the message's (providers.services).
CREDENTIALS_ERROR_CODES = frozenset({"auth", "401", "403"})


def transient_or_permanent_for_status(status: int | None, detail: str, *, response: Any = None, retry_after: float | None = None):
    """The error class for an HTTP status: 429, 5xx and no answer are transient."""
    if status is None or status == 408 or status == 429 or status >= 500:
        err = ProviderTransientError(detail, code=str(status or "connection"), response=response)
        err.retry_after = retry_after  # type: ignore[attr-defined]
        return err
    return ProviderPermanentError(detail, code=str(status), response=response)


REDACTED = "********"
# Shorter values (a region, a flag) are not secrets worth hiding and would garble the text.
_MIN_REDACTED_LEN = 8


def _credential_strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, dict):  # a service account: its private key and the like
            yield from _credential_strings(value.values())
        elif isinstance(value, str) and len(value) >= _MIN_REDACTED_LEN:
            yield value


class BaseProvider:
    """Base class of every provider.

    Subclasses set `code` (unique, the registry key and `NotificationProvider.code`),
    `channel`, `name`, `sensitive_params` (credential keys: encrypted at rest, masked in the
    admin and API), `required_params` (credential or config keys that must resolve), and
    `env_credentials` (credential key → environment variable used as the last fallback).

    `send` must be safe to call from any worker thread and must not retry on its own: the
    failover loop decides. `send_batch` sends many messages in as few calls as the service
    allows and returns one `SendResult` or exception per message, in order.
    """

    code: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    name: ClassVar[str] = ""
    sensitive_params: ClassVar[tuple[str, ...]] = ()
    required_params: ClassVar[tuple[str, ...]] = ()
    env_credentials: ClassVar[dict[str, str]] = {}
    # The service's own domains: an organization admin may point the record's *_url only there
    # (empty: any public https host).
    endpoint_domains: ClassVar[tuple[str, ...]] = ()
    supports_webhooks: ClassVar[bool] = False
    supports_status_polling: ClassVar[bool] = False
    # True when `send` is only a network call (no database access, no shared mutable state):
    # a batch may then be sent from the process's send pool (providers/concurrency.py).
    concurrent_sends: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 10.0

    def __init__(self, *, config: dict[str, Any] | None = None, credentials: dict[str, Any] | None = None, record_id: int | None = None) -> None:
        self.config = dict(config or {})
        self.credentials = dict(credentials or {})
        self.record_id = record_id

    # -- helpers ---------------------------------------------------------------------
    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout", self.default_timeout))

    def setting(self, key: str, default: Any = None) -> Any:
        """A credential first, then a config value: some keys (sender ids) may be either."""
        value = self.credentials.get(key)
        if value in (None, ""):
            value = self.config.get(key)
        return default if value in (None, "") else value

    def redact(self, text: Any) -> str:
        """`text` with this provider's credential values masked. A service's error body may echo
        what it was sent, and provider errors are stored, audited and shown to operators."""
        text = str(text)
        for value in _credential_strings(self.credentials.values()):
            text = text.replace(value, REDACTED)
        return text

    def pooled(self, kind: str, factory: Callable[[], Any]) -> Any:
        """A long-lived client (``factory()``) shared by this record's sends in this process.

        Kept per provider record and per configuration: a changed secret or endpoint gets a
        new client, never a connection or signer made for the old one. Without a record (a
        one-off provider built by hand), every call gets a new client.
        """
        if self.record_id is None:
            return factory()
        from .concurrency import http_session

        fingerprint = hashlib.sha256(
            json.dumps([self.config, self.credentials], sort_keys=True, default=str).encode()
        ).hexdigest()
        return http_session((self.code, self.record_id, kind, fingerprint), factory)

    def http(self) -> Any:
        """This record's kept-alive ``requests`` session (pool sized to the in-flight limit)."""
        from .concurrency import requests_session

        return self.pooled("requests", requests_session)

    def require(self, key: str) -> Any:
        value = self.setting(key)
        if value in (None, ""):
            raise ProviderPermanentError(f"{self.code}: '{key}' is not configured.", code="configuration")
        return value

    @classmethod
    def missing_params(cls, *, config: dict[str, Any], credentials: dict[str, Any]) -> list[str]:
        return [k for k in cls.required_params if credentials.get(k) in (None, "") and config.get(k) in (None, "")]

    @classmethod
    def config_errors(cls, config: dict[str, Any]) -> list[str]:
        """Problems with a record's non-secret config, checked when it is saved."""
        return []

    # -- the contract ----------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    def send_batch(self, messages: Iterable[OutboundMessage]) -> list[SendResult | Exception]:
        results: list[SendResult | Exception] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except (ProviderTransientError, ProviderPermanentError) as exc:
                results.append(exc)
        return results

    def health_check(self) -> HealthResult:
        """Cheap authenticated call proving the credentials work. Never raises."""
        return HealthResult(ok=True, response_time_ms=0, detail="no remote check")

    def get_delivery_status(self, provider_message_id: str) -> DeliveryEvent | None:
        """Ask the service for a message's status (for providers without webhooks)."""
        return None

    def parse_webhook(self, payload: dict[str, Any]) -> list[DeliveryEvent]:
        """Map an already verified webhook payload to normalized events."""
        return []

    # -- timing helper for health checks -----------------------------------------------
    @staticmethod
    def _elapsed_ms(started: float) -> int:
        return int((time.monotonic() - started) * 1000)
