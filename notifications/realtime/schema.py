"""The realtime endpoints in the OpenAPI schema (`/api/v1/schema/`).

Neither is a DRF view (the stream is an async Django view, the socket a Channels consumer), so
drf-spectacular cannot see them: this postprocessing hook documents both as API.md "Web tier and
realtime" describes them — the SSE stream as a `text/event-stream` GET, the WebSocket as the GET
that upgrades (101), with its frames as schemas.
"""
from __future__ import annotations

from typing import Any

STREAM_PATH = "/api/v1/notifications/stream/"
SOCKET_PATH = "/ws/notifications/"
INBOX_PATH = "/api/v1/notifications/"

STREAM_DESCRIPTION = """Server-Sent Events: the signed-in user's inbox, live (the fallback where WebSocket is unavailable).

Events:
- `unread_count` — `{"count": N}`, first on every stream and after changes;
- `notification` — the inbox item as in `GET /api/v1/notifications/`, plus `unread_count`;
- `error` — `{"error": "too_many_connections"}` when the user already holds the cap of open
  sockets and streams (`WS_MAX_CONNECTIONS_PER_USER`; checked before the stream opens → 429).

A comment line (`: heartbeat`) comes at least every 15 s so proxies keep the stream open; the
stream ends after 300 s and `retry: 3000` tells EventSource to reconnect. An open stream counts
as a live connection for presence. Needs a person (session or `Token`): an API key has no inbox (403)."""

SOCKET_DESCRIPTION = """WebSocket (`ws://` / `wss://`): the signed-in user's inbox, live, with acknowledgements and presence.

Authentication: the browser session cookie (the `Origin` must be an allowed host), or
`Authorization: Token <key>` for other clients. Anonymous callers, API keys and other sites'
pages are refused at the handshake (403).

Server → client frames (`ServerFrame`): `{"type": "unread_count", "count": N}` (first, and after
changes), `{"type": "notification", "notification": <inbox item>}`, `{"type": "error", "error": "..."}`.

Client → server frames (`ClientFrame`): `{"type": "ack", "id": N}` (or `"ids": [..]`, at most 100) —
the client received it: its IN_APP delivery becomes DELIVERED with `delivered_at`;
`{"type": "presence", "status": "online|away|dnd"}`. An open connection makes the user ONLINE,
the last one closing makes them OFFLINE after a short grace period.

Limits per connection: client frames are a token bucket (`WS_CLIENT_FRAMES_PER_SECOND`, 20/s, bursts
of `WS_CLIENT_FRAME_BURST`, 100); presence changes at most `WS_PRESENCE_PER_MINUTE` (30). A frame
over the limit is dropped and answered once with `{"type": "error", "error": "rate_limited"}`; a
client that keeps sending is closed with code **4408**. A user holds at most
`WS_MAX_CONNECTIONS_PER_USER` (10) sockets and streams: one more is closed with code **4429**."""

SERVER_FRAME: dict[str, Any] = {
    "type": "object",
    "description": "A frame the server sends.",
    "properties": {
        "type": {"type": "string", "enum": ["notification", "unread_count", "error"]},
        "notification": {"description": "`type: notification`: the inbox item (as in GET /api/v1/notifications/)."},
        "count": {"type": "integer", "description": "`type: unread_count`: the user's unread inbox items."},
        "error": {"type": "string", "description": "`type: error`: what was wrong (`rate_limited`, `too_many_connections`, ...)."},
    },
    "required": ["type"],
}

CLIENT_FRAME = {
    "type": "object",
    "description": "A frame the client sends.",
    "properties": {
        "type": {"type": "string", "enum": ["ack", "presence"]},
        "id": {"type": "integer", "description": "`type: ack`: the notification received."},
        "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 100,
                "description": "`type: ack`: several notifications at once."},
        "status": {"type": "string", "enum": ["online", "away", "dnd"], "description": "`type: presence`."},
    },
    "required": ["type"],
}


def _inbox_item_ref(result: dict) -> dict[str, Any]:
    """The inbox item's schema, as the inbox list documents it (its page's `results` items)."""
    schemas = result.get("components", {}).get("schemas", {})
    try:
        page = result["paths"][INBOX_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        if "$ref" in page:
            page = schemas[page["$ref"].rsplit("/", 1)[-1]]
        return page["properties"]["results"]["items"]
    except (KeyError, TypeError):
        return {"type": "object"}


def document_realtime(result: dict, generator, request, public: bool) -> dict:
    """Postprocessing hook: the SSE stream and the WebSocket as operations of the schema."""
    paths = result.setdefault("paths", {})
    security = paths.get(INBOX_PATH, {}).get("get", {}).get("security")
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    item = _inbox_item_ref(result)
    described = {"description": SERVER_FRAME["properties"]["notification"]["description"]}
    notification = {"allOf": [item], **described} if "$ref" in item else {**item, **described}
    schemas["ServerFrame"] = {**SERVER_FRAME, "properties": {**SERVER_FRAME["properties"], "notification": notification}}
    schemas["ClientFrame"] = CLIENT_FRAME
    stream = {
        "operationId": "notifications_stream",
        "summary": "The inbox as a Server-Sent Events stream",
        "description": STREAM_DESCRIPTION,
        "responses": {
            "200": {"description": "An event stream (see the description for its events).",
                    "content": {"text/event-stream": {"schema": {"type": "string"}, "example": (
                        'retry: 3000\nevent: unread_count\ndata: {"count": 2}\n\n: heartbeat\n\n'
                        'event: notification\ndata: {"id": 42, "title": "Task assigned", "unread_count": 3}\n\n')}}},
            "429": {"description": "The user already holds the cap of open sockets and streams."},
        },
    }
    socket = {
        "operationId": "notifications_socket",
        "summary": "The inbox over WebSocket (GET with Upgrade: websocket)",
        "description": SOCKET_DESCRIPTION,
        "responses": {
            "101": {"description": "Switching Protocols: frames as `ServerFrame` / `ClientFrame`.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServerFrame"}}}},
            "403": {"description": "Anonymous, an API key, or a page of another site."},
        },
    }
    if security is not None:
        stream["security"] = security
        socket["security"] = security
    paths[STREAM_PATH] = {"get": stream}
    paths[SOCKET_PATH] = {"get": socket}
    return result
