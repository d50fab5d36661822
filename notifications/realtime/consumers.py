"""`/ws/notifications/`: frames as in API.md "Web tier and realtime".

Server → client: ``{"type": "notification", "notification": {...}}``, ``{"type": "unread_count",
"count": N}`` (and ``{"type": "error", "error": "..."}`` for a frame it could not use).
Client → server: ``{"type": "ack", "id": N}`` (or ``"ids": [...]``), ``{"type": "presence",
"status": "online|away|dnd"}``.

Client frames are rate-limited per connection (a token bucket of WS_CLIENT_FRAMES_PER_SECOND,
bursts of WS_CLIENT_FRAME_BURST; presence changes at most WS_PRESENCE_PER_MINUTE): a frame over
the limit is dropped and answered once with ``{"type": "error", "error": "rate_limited"}``; a
client that keeps flooding after that is closed with code 4408. Acks are queued for the process's
batched writer (``acks``), never written per frame.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, cast

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from notifications.engine import realtime
from notifications.enums import PresenceStatus

from . import acks, presence
from notifications.realtime.db import db_async

logger = logging.getLogger(__name__)

CLOSE_TOO_MANY_CONNECTIONS = 4429
CLOSE_RATE_LIMITED = 4408
ACK_IDS_PER_FRAME = 100
# Looked up with whatever the client sent.
CLIENT_STATUSES: dict[Any, PresenceStatus] = {"online": PresenceStatus.ONLINE, "away": PresenceStatus.AWAY, "dnd": PresenceStatus.DND}


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _person(user) -> int | None:
    if user is None or not user.is_authenticated or getattr(user, "pk", None) is None:
        return None
    return int(user.pk)


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    user_id: int | None = None  # set by connect; a socket without a user is closed before accept, so frames carry one
    registered = False
    frames: TokenBucket
    presence_changes: TokenBucket
    refused = 0  # frames dropped since the client was told it is rate-limited

    def _limits(self) -> None:
        self.frames = TokenBucket(rate=settings.WS_CLIENT_FRAMES_PER_SECOND, burst=settings.WS_CLIENT_FRAME_BURST)
        per_minute = settings.WS_PRESENCE_PER_MINUTE
        self.presence_changes = TokenBucket(rate=per_minute / 60.0, burst=max(1, per_minute // 2))

    async def dispatch(self, message) -> None:
        # Channels closes stale database connections before EVERY handled message (each frame,
        # each pushed item) with a hop to the process's single sync thread: 2,000 sockets queue
        # behind each other there. This consumer never uses the loop's connection — its database
        # calls run on the realtime threads (``db_async``), which give theirs back — so skip it.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.user_id = _person(self.scope.get("user"))
        self._limits()
        if self.user_id is None:
            await self.close()  # before accept: the handshake is answered 403
            return
        if not await presence.connection_open(user_id=self.user_id, connection=self.channel_name,
                                              cap=settings.WS_MAX_CONNECTIONS_PER_USER):
            await self.accept()
            await self.send_json({"type": "error", "error": "too_many_connections"})
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.registered = True
        await self.channel_layer.group_add(realtime.user_group(self.user_id), self.channel_name)
        await self.accept()
        from notifications.engine.inbox import inbox_unread_count

        count = await db_async(inbox_unread_count)(user_id=self.user_id)
        await self.send_json({"type": "unread_count", "count": count})

    async def disconnect(self, code) -> None:
        if self.registered and self.user_id is not None:
            self.registered = False
            await self.channel_layer.group_discard(realtime.user_group(self.user_id), self.channel_name)
            await presence.connection_close(user_id=self.user_id, connection=self.channel_name)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return json.loads(text_data)
        except ValueError:
            return None

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        # Counted before anything is parsed: a flood costs a token check per frame, nothing more.
        if not self.frames.take():
            await self._over_limit()
            return
        if self.refused and self.frames.tokens >= self.frames.burst - 1:
            self.refused = 0  # the client went quiet long enough to fill the bucket again
        await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)

    async def _over_limit(self) -> None:
        self.refused += 1
        if self.refused == 1:
            await self.send_json({"type": "error", "error": "rate_limited"})
        elif self.refused > settings.WS_CLIENT_FRAME_BURST:
            logger.info("socket of user %s closed: client frames over the rate limit", self.user_id)
            await self.close(code=CLOSE_RATE_LIMITED)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "Frames are JSON objects."})
            return
        kind = content.get("type")
        if kind == "ack":
            ids = content.get("ids") if "ids" in content else [content.get("id")]
            if (not isinstance(ids, list) or not ids or len(ids) > ACK_IDS_PER_FRAME
                    or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
                await self.send_json({"type": "error", "error": f"ack needs an integer id (or 1-{ACK_IDS_PER_FRAME} ids)."})
                return
            acks.ack(user_id=cast(int, self.user_id), notification_ids=ids)
        elif kind == "presence":
            requested = content.get("status")
            status = CLIENT_STATUSES.get(requested) if isinstance(requested, str) else None
            if status is None:
                await self.send_json({"type": "error", "error": "presence status is one of online, away, dnd."})
                return
            if not self.presence_changes.take():
                await self._over_limit()
                return
            await presence.status_set(user_id=cast(int, self.user_id), status=status)
        else:
            await self.send_json({"type": "error", "error": "Unknown frame type."})

    # --- channel layer events (group inbox.user.<id>) ---------------------------------------

    async def inbox_notification(self, event) -> None:
        await self.send_json({"type": "notification", "notification": event["notification"]})
        if "unread_count" in event:
            await self.send_json({"type": "unread_count", "count": event["unread_count"]})

    async def inbox_unread_count(self, event) -> None:
        await self.send_json({"type": "unread_count", "count": event["count"]})
