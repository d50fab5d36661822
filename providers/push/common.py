"""Push helpers: subscriptions of a recipient, TTL and urgency by criticality, payload."""
from __future__ import annotations

from typing import Any

from common.exceptions import ProviderPermanentError

from ..base import OutboundMessage

# (time to live in seconds, RFC 8030 urgency). A critical alert that cannot reach the device
# within minutes is escalated on another channel, so it should not arrive hours later.
CRITICALITY_PUSH_OPTIONS: dict[str, tuple[int, str]] = {
    "LOW": (86400, "low"),
    "MEDIUM": (86400, "normal"),
    "HIGH": (3600, "high"),
    "CRITICAL": (900, "high"),
}


def push_options(criticality: str) -> tuple[int, str]:
    return CRITICALITY_PUSH_OPTIONS.get((criticality or "MEDIUM").upper(), CRITICALITY_PUSH_OPTIONS["MEDIUM"])


def recipient_user_id(message: OutboundMessage) -> int:
    value = message.metadata.get("user_id") or message.to
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProviderPermanentError(f"Push recipient {message.to!r} is not a user id.", code="invalid_recipient") from None


def push_payload(message: OutboundMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"title": message.title or message.subject, "body": message.text}
    if message.action_url:
        payload["url"] = message.action_url
    if message.idempotency_key:
        payload["delivery_id"] = str(message.idempotency_key)
    if message.data:
        payload["data"] = message.data
    return payload
