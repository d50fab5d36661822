"""`GET /api/v1/notifications/stream/`: the Server-Sent Events fallback, as an async view.

A stream is a coroutine on the web process's event loop, not a worker thread: it joins the
user's channel layer group like a WebSocket does, sends each new inbox item and unread count as
an event and a comment every HEARTBEAT_SECONDS so proxies keep it open. It ends after
MAX_STREAM_SECONDS (EventSource reconnects on its own) so deployments roll over.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from notifications.engine import realtime

from . import presence
from notifications.realtime.db import db_async

HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
RECONNECT_MS = 3000


def sse_event(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def _authenticate(request: HttpRequest):
    """The API's own authentication (session, DRF token, API key), run once per stream."""
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    # api_settings imports the dotted paths into classes; the stubs see the setting's strings.
    drf_request = Request(request, authenticators=[
        cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES])  # type: ignore[operator]
    try:
        user = drf_request.user
    except APIException as exc:
        return None, str(exc.detail)
    return user, ""


async def inbox_events(*, user_id: int, channel: str, heartbeat: float = HEARTBEAT_SECONDS,
                       max_seconds: float = MAX_STREAM_SECONDS):
    """The stream of one registered connection (see ``stream_view``)."""
    from notifications.engine.inbox import inbox_unread_count

    layer = get_channel_layer()
    group = realtime.user_group(user_id)
    if not await presence.connection_open(user_id=user_id, connection=channel, cap=settings.WS_MAX_CONNECTIONS_PER_USER):
        yield sse_event("error", {"error": "too_many_connections"})
        return
    # Join before reading the count: an item pushed in between is not lost.
    await layer.group_add(group, channel)
    try:
        count = await db_async(inbox_unread_count)(user_id=user_id)
        yield f"retry: {RECONNECT_MS}\n" + sse_event("unread_count", {"count": count})
        deadline = time.monotonic() + max_seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=min(heartbeat, left))
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if message.get("type") == "inbox.notification":
                yield sse_event("notification", {**message["notification"], "unread_count": message.get("unread_count")})
            elif message.get("type") == "inbox.unread_count":
                yield sse_event("unread_count", {"count": message["count"]})
    finally:
        await layer.group_discard(group, channel)
        await presence.connection_close(user_id=user_id, connection=channel)


async def stream_view(request: HttpRequest):
    # Each database call gives its connection back (to the pool) when done: a stream that held
    # one for its whole life would starve every other request of the process.
    user, error = await db_async(_authenticate)(request)
    if user is None or not user.is_authenticated:
        return JsonResponse({"detail": error or "Authentication credentials were not provided."}, status=401)
    if getattr(user, "pk", None) is None:
        return JsonResponse({"detail": "The inbox belongs to a signed-in user; API keys have none."}, status=403)
    if request.method != "GET":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    # An open stream is a live connection like a socket: it counts for presence and the cap
    # (registered once the stream runs, so a response never read registers nothing).
    if await presence.live_count(user_id=user.pk) >= settings.WS_MAX_CONNECTIONS_PER_USER:
        return JsonResponse({"detail": "Too many open connections for this user."}, status=429)
    channel = await get_channel_layer().new_channel("sse.")
    response = StreamingHttpResponse(inbox_events(user_id=user.pk, channel=channel), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
