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


def push_data(message: OutboundMessage) -> dict[str, str]:
    """The data payload: the platform's ids, then the event's own `data` option (strings)."""
    data = {str(k): str(v) for k, v in (message.data or {}).items()}
    data.update({str(k): str(v) for k, v in (message.options.get("data") or {}).items()})
    return data


def click_url(message: OutboundMessage) -> str:
    """What a click opens: the event's click_action when it is a link, else the action URL."""
    action = str(message.options.get("click_action") or "")
    return action if action.startswith(("https://", "http://", "/")) else message.action_url


def push_ttl(message: OutboundMessage) -> tuple[int, str]:
    """(TTL seconds, urgency): by criticality, the event's android ttl/priority overriding."""
    ttl, urgency = push_options(message.criticality)
    android = message.options.get("android") or {}
    if android.get("ttl") is not None:
        ttl = int(android["ttl"])
    if android.get("priority"):
        urgency = "high" if android["priority"] == "high" else "normal"
    return ttl, urgency


def device_targets(message: OutboundMessage, endpoints: list[Any], *, endpoint_of=lambda item: item) -> list[Any]:
    """Only the devices the event names in `device_tokens` (all of the user's when it names none)."""
    wanted = message.options.get("device_tokens")
    if not wanted:
        return endpoints
    wanted = set(wanted)
    return [item for item in endpoints if endpoint_of(item) in wanted]


def push_payload(message: OutboundMessage) -> dict[str, Any]:
    """The Web Push payload the service worker reads (the notification's options included)."""
    payload: dict[str, Any] = {"title": message.title or message.subject, "body": message.text}
    url = click_url(message)
    if url:
        payload["url"] = url
    if message.idempotency_key:
        payload["delivery_id"] = str(message.idempotency_key)
    data = {str(k): v for k, v in (message.data or {}).items()}
    data.update(message.options.get("data") or {})
    if data:
        payload["data"] = data
    options = message.options
    web = options.get("web") or {}
    for key, value in (("icon", web.get("icon") or options.get("icon")), ("badge", web.get("badge") or options.get("badge")),
                       ("sound", options.get("sound"))):
        if value not in (None, ""):
            payload[key] = value
    if web.get("require_interaction"):
        payload["requireInteraction"] = True
    return payload
