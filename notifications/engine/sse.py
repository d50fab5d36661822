"""Live inbox updates: Redis pub/sub (one channel per user) and the Server-Sent Events stream.

Publishing is best effort: the inbox in PostgreSQL is the truth and the browser falls back
to polling, so a Redis hiccup is logged, never raised into a delivery. Without REDIS_URL
(the embedded run) nothing is published and the stream polls the unread count instead.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "troubadour:inbox:"
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 5.0
# A stream ends after this long and the browser reconnects (EventSource does it on its own):
# it bounds how long one request holds a server worker and picks up new deployments.
MAX_STREAM_SECONDS = 300.0
RECONNECT_MS = 3000

_client = None


def inbox_channel(user_id: int) -> str:
    return f"{CHANNEL_PREFIX}{user_id}"


def redis_client():
    """A process-wide Redis client, or None when REDIS_URL is not configured."""
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2,
                                       health_check_interval=30)
    return _client


def inbox_publish(*, messages: Iterable[tuple[int, str, dict[str, Any]]]) -> int:
    """Publish ``(user_id, event, data)`` messages in one pipeline. Returns how many were sent."""
    client = redis_client()
    messages = list(messages)
    if client is None or not messages:
        return 0
    try:
        pipe = client.pipeline(transaction=False)
        for user_id, event, data in messages:
            pipe.publish(inbox_channel(user_id), json.dumps({"event": event, "data": data}, default=str))
        pipe.execute()
    except Exception:  # noqa: BLE001 - live updates are optional; the inbox API is the truth
        logger.warning("inbox live update not published (%d messages)", len(messages), exc_info=True)
        return 0
    return len(messages)


def notification_payload(notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "event_type": notification.event_type,
        "category": notification.category,
        "criticality": notification.criticality,
        "title": notification.title,
        "body": notification.body,
        "action_url": notification.action_url,
        "action_label": notification.action_label,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
        "read_at": None,
    }


def inbox_publish_new(*, notifications: Iterable) -> int:
    """Tell each recipient's open streams about a new inbox item, with their unread count."""
    notifications = [n for n in notifications if n.recipient_id]
    if not notifications or redis_client() is None:
        return 0
    from notifications.engine.inbox import inbox_unread_counts

    counts = inbox_unread_counts(user_ids={n.recipient_id for n in notifications})
    return inbox_publish(
        messages=[
            (n.recipient_id, "notification", {**notification_payload(n), "unread_count": counts.get(n.recipient_id, 0)})
            for n in notifications
        ]
    )


def inbox_publish_count(*, user_id: int, count: int) -> int:
    return inbox_publish(messages=[(user_id, "unread_count", {"count": count})])


def sse_event(event: str, data: Any, *, event_id: str | None = None) -> str:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, default=str)}")
    return "\n".join(lines) + "\n\n"


def inbox_stream(
    *,
    user_id: int,
    heartbeat: float = HEARTBEAT_SECONDS,
    poll_interval: float = POLL_SECONDS,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> Iterator[str]:
    """The SSE body for one user: the current unread count, then live events and heartbeats."""
    from notifications.engine.inbox import inbox_unread_count

    started = time.monotonic()
    client = redis_client()
    pubsub = None
    if client is not None:
        # Subscribe before reading the count: an event published in between is not lost.
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(inbox_channel(user_id))
        except Exception:  # noqa: BLE001 - fall back to polling rather than failing the page
            logger.warning("inbox stream: Redis unavailable, polling instead", exc_info=True)
            pubsub = None
    count = inbox_unread_count(user_id=user_id)
    yield f"retry: {RECONNECT_MS}\n" + sse_event("unread_count", {"count": count})
    last_sent = time.monotonic()
    last_poll = last_sent
    try:
        while time.monotonic() - started < max_seconds:
            if pubsub is not None:
                message = pubsub.get_message(timeout=min(1.0, heartbeat))
                if message and message.get("type") == "message":
                    try:
                        payload = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    yield sse_event(payload.get("event", "message"), payload.get("data"))
                    last_sent = time.monotonic()
                    continue
            else:
                time.sleep(min(0.5, poll_interval))
                if time.monotonic() - last_poll >= poll_interval:
                    last_poll = time.monotonic()
                    current = inbox_unread_count(user_id=user_id)
                    if current != count:
                        count = current
                        yield sse_event("unread_count", {"count": count})
                        last_sent = time.monotonic()
                        continue
            if time.monotonic() - last_sent >= heartbeat:
                yield ": heartbeat\n\n"
                last_sent = time.monotonic()
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001
                pass
