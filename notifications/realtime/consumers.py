"""`/ws/notifications/`: frames as in API.md "Web tier and realtime".

Server → client: ``{"type": "notification", "notification": {...}}``, ``{"type": "unread_count",
"count": N}`` (and ``{"type": "error", "error": "..."}`` for a frame it could not use).
Client → server: ``{"type": "ack", "id": N}`` (or ``"ids": [...]``), ``{"type": "presence",
"status": "online|away|dnd"}``.
"""
from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from notifications.engine import realtime
from notifications.enums import PresenceStatus

from . import presence

logger = logging.getLogger(__name__)

CLOSE_TOO_MANY_CONNECTIONS = 4429
CLIENT_STATUSES = {"online": PresenceStatus.ONLINE, "away": PresenceStatus.AWAY, "dnd": PresenceStatus.DND}


def _person(user) -> int | None:
    if user is None or not user.is_authenticated or getattr(user, "pk", None) is None:
        return None
    return int(user.pk)


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    user_id: int | None = None
    registered = False

    async def connect(self) -> None:
        self.user_id = _person(self.scope.get("user"))
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

        count = await database_sync_to_async(inbox_unread_count)(user_id=self.user_id)
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

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "Frames are JSON objects."})
            return
        kind = content.get("type")
        if kind == "ack":
            ids = content.get("ids") if "ids" in content else [content.get("id")]
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                await self.send_json({"type": "error", "error": "ack needs an integer id (or ids)."})
                return
            await database_sync_to_async(realtime.inapp_mark_delivered)(user_id=self.user_id, notification_ids=ids)
        elif kind == "presence":
            status = CLIENT_STATUSES.get(content.get("status"))
            if status is None:
                await self.send_json({"type": "error", "error": "presence status is one of online, away, dnd."})
                return
            await presence.status_set(user_id=self.user_id, status=status)
        else:
            await self.send_json({"type": "error", "error": "Unknown frame type."})

    # --- channel layer events (group inbox.user.<id>) ---------------------------------------

    async def inbox_notification(self, event) -> None:
        await self.send_json({"type": "notification", "notification": event["notification"]})
        if "unread_count" in event:
            await self.send_json({"type": "unread_count", "count": event["unread_count"]})

    async def inbox_unread_count(self, event) -> None:
        await self.send_json({"type": "unread_count", "count": event["count"]})
