"""The realtime tier against the production web tier command as a real process.

WebSocket `/ws/notifications/` (auth, origin, cap, frames, ack), the async SSE stream, the
in-app bus (RabbitMQ exchange → web tier → socket), presence following connections, and the
outage this tier replaces: long-lived streams must never starve plain requests.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import requests
from django.test import Client
from rest_framework.authtoken.models import Token
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from notifications.engine.delivery import deliver_batch
from notifications.engine.presence import presence_online_user_ids
from notifications.enums import Channel, DeliveryStatus, PresenceStatus
from notifications.models import NotificationDelivery, UserPresence
from tests.conftest import wait_until

from .realtime_support import start_web_tier
from .test_delivery_support import event_type_with_template, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WS_PATH = "/ws/notifications/"


@pytest.fixture
def web_tier(transactional_db, tmp_path):
    tier = start_web_tier(tmp_path)
    yield tier
    tier.stop()


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def ws(tier, *, token: str | None = None, headers: dict | None = None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Token {token}"
    return connect(tier.ws_url + WS_PATH, additional_headers=headers, open_timeout=10)


def frame(conn, timeout: float = 20.0) -> dict:
    return json.loads(conn.recv(timeout=timeout))


def frame_of(conn, kind: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = frame(conn, timeout=max(0.1, deadline - time.monotonic()))
        if got["type"] == kind:
            return got


def refused(tier, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as info:
        ws(tier, **kwargs).close()
    return info.value.response.status_code


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# --- the outage: long-lived connections never tie up request workers --------------------------


def test_api_answers_promptly_while_streams_and_sockets_are_held_open(tmp_path, transactional_db, user):
    """Three SSE tabs used to take all three sync workers: health checks timed out and the site
    went down. Now 2 processes hold 40 streams and 300 sockets and still answer at once."""
    tier = start_web_tier(tmp_path, workers=2, env={"WS_MAX_CONNECTIONS_PER_USER": "1000"})
    token = token_for(user)
    opened = {"ws": 0, "sse": 0}
    ready = threading.Event()
    release = threading.Event()
    errors: list[str] = []

    async def hold() -> None:
        import websockets

        async def one_ws():
            conn = await websockets.connect(tier.ws_url + WS_PATH, additional_headers={"Authorization": f"Token {token}"},
                                            open_timeout=60)
            assert json.loads(await conn.recv())["type"] == "unread_count"
            opened["ws"] += 1
            return conn

        async def one_sse():
            reader, writer = await asyncio.open_connection("127.0.0.1", tier.port)
            writer.write((f"GET /api/v1/notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Token {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
            await writer.drain()
            buffer = b""
            while b"event: unread_count" not in buffer:
                chunk = await asyncio.wait_for(reader.read(4096), 60)
                assert chunk, buffer
                buffer += chunk
            assert buffer.startswith(b"HTTP/1.1 200")
            opened["sse"] += 1
            return writer

        try:
            streams = [await one_sse() for _ in range(40)]
            sockets = []
            for start in range(0, 300, 50):
                sockets += await asyncio.gather(*(one_ws() for _ in range(50)))
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(repr(exc))
            ready.set()
            return
        ready.set()
        while not release.is_set():
            await asyncio.sleep(0.1)
        for conn in sockets:
            await conn.close()
        for writer in streams:
            writer.close()

    holder = threading.Thread(target=lambda: asyncio.run(hold()), daemon=True)
    holder.start()
    try:
        assert ready.wait(180), "connections did not open"
        assert not errors, errors
        assert opened == {"ws": 300, "sse": 40}
        slowest = 0.0
        for _ in range(10):
            for url, headers in ((f"{tier.url}/health/live", {}), (f"{tier.url}/health/ready", {}),
                                 (f"{tier.url}/api/v1/notifications/", {"Authorization": f"Token {token}"})):
                started = time.monotonic()
                response = requests.get(url, headers=headers, timeout=10)
                slowest = max(slowest, time.monotonic() - started)
                assert response.status_code == 200, (url, response.status_code, response.text[:200])
        assert slowest < 2.0, f"a plain request took {slowest:.2f}s with the streams open"
    finally:
        release.set()
        holder.join(timeout=60)
        tier.stop()


# --- end to end: REST event → worker → exchange → web tier → socket → ack ---------------------


def test_event_over_rest_reaches_the_open_socket_and_the_ack_delivers(live_worker, web_tier, user, other_user, api_key):
    mine, theirs = ws(web_tier, token=token_for(user)), ws(web_tier, token=token_for(other_user))
    assert frame(mine) == {"type": "unread_count", "count": 0}
    assert frame(theirs) == {"type": "unread_count", "count": 0}

    response = requests.post(
        f"{web_tier.url}/api/v1/events/", headers={"Authorization": f"Api-Key {api_key}"}, timeout=10,
        json={"type": "task.assigned", "recipient_ids": [str(user.pk)], "channels": ["IN_APP"],
              "data": {"taskTitle": "Fix login"}},
    )
    assert response.status_code in (201, 202), response.text
    pushed = frame_of(mine, "notification")["notification"]
    assert pushed["event_type"] == "task.assigned" and pushed["is_read"] is False
    assert frame(mine) == {"type": "unread_count", "count": 1}
    delivery = NotificationDelivery.objects.get(notification_id=pushed["id"], channel=Channel.IN_APP)
    assert delivery.status == DeliveryStatus.SENT and delivery.delivered_at is None
    # The frame is the REST inbox item.
    listed = requests.get(f"{web_tier.url}/api/v1/notifications/", timeout=10,
                          headers={"Authorization": f"Token {token_for(user)}"}).json()["results"]
    assert listed[0] == pushed

    # An outsider's socket hears nothing, and acking someone else's notification changes nothing.
    theirs.send(json.dumps({"type": "ack", "id": pushed["id"]}))
    with pytest.raises(TimeoutError):
        theirs.recv(timeout=1.5)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT

    mine.send(json.dumps({"type": "ack", "id": pushed["id"]}))
    wait_until(lambda: NotificationDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED,
               timeout=10, message="ack → DELIVERED")
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None

    # Reading it in the inbox makes it OPENED and the open socket hears the new count.
    assert requests.post(f"{web_tier.url}/api/v1/notifications/{pushed['id']}/read/", timeout=10,
                         headers={"Authorization": f"Token {token_for(user)}"}).status_code == 200
    assert frame_of(mine, "unread_count") == {"type": "unread_count", "count": 0}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.OPENED and delivery.opened_at is not None
    mine.close()
    theirs.close()


def test_offline_recipient_keeps_the_item_sent_and_the_bus_message_is_acked(web_tier, user, organization):
    from notifications.engine.realtime import bus_connection, bus_queue

    event_type_with_template()
    notification, deliveries = notification_with_deliveries(organization=organization, recipient=user)
    deliver_batch(delivery_ids=[d.pk for d in deliveries])  # commits, then publishes

    def queue_empty() -> bool:
        with bus_connection() as conn:
            _, count, _ = bus_queue()(conn.default_channel).queue_declare(passive=True)
        return count == 0

    wait_until(queue_empty, timeout=20, message="the web tier consumed the in-app message")
    assert NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.SENT
    # Connecting later: the inbox has it, the count says so.
    with ws(web_tier, token=token_for(user)) as conn:
        assert frame(conn) == {"type": "unread_count", "count": 1}


# --- who may connect ------------------------------------------------------------------------


def test_socket_refuses_anonymous_foreign_origins_api_keys_and_too_many_connections(web_tier, user, api_key):
    assert refused(web_tier) == 403
    assert refused(web_tier, token="not-a-token") == 403
    assert refused(web_tier, headers={"Authorization": f"Api-Key {api_key}"}) == 403  # an organization has no inbox

    cookie = {"Cookie": f"sessionid={session_cookie(user)}"}
    assert refused(web_tier, headers={**cookie, "Origin": "https://evil.example"}) == 403
    with ws(web_tier, headers={**cookie, "Origin": web_tier.url}) as conn:
        assert frame(conn) == {"type": "unread_count", "count": 0}

    token = token_for(user)
    held = [ws(web_tier, token=token) for _ in range(10)]  # WS_MAX_CONNECTIONS_PER_USER
    extra = ws(web_tier, token=token)
    assert frame(extra) == {"type": "error", "error": "too_many_connections"}
    with pytest.raises(Exception):
        extra.recv(timeout=5)
    assert extra.close_code == 4429
    # Bad frames are answered, not fatal.
    held[0].recv(timeout=5)
    held[0].send("not json")
    assert frame(held[0])["type"] == "error"
    held[0].send(json.dumps({"type": "ack", "id": "1; DROP TABLE"}))
    assert frame(held[0])["type"] == "error"
    held[0].send(json.dumps({"type": "presence", "status": "sleeping"}))
    assert frame(held[0])["type"] == "error"
    for status in (["away"], {"away": True}, None, 3):  # not a string at all: still answered, not fatal
        held[0].send(json.dumps({"type": "presence", "status": status}))
        assert frame(held[0])["type"] == "error"
    for conn in held:
        conn.close()


# --- presence -------------------------------------------------------------------------------


def test_presence_follows_connections_with_a_grace_period(web_tier, user, organization):
    from notifications.models import Notification
    from notifications.services import event_emit

    from .intake_support import EVENT, intake_event_type, statuses, user_pref

    intake_event_type()
    user_pref(user, channels={Channel.EMAIL: {"enabled": True, "only_when_offline": True}})

    def email_status() -> str:
        result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk],
                            channels=[Channel.IN_APP, Channel.EMAIL])
        return statuses(Notification.objects.get(event_id=result.event_id))[Channel.EMAIL]

    def db_status() -> str | None:
        row = UserPresence.objects.filter(user=user).first()
        return row.status if row else None

    assert presence_online_user_ids(user_ids=[user.pk]) == set()
    token = token_for(user)
    first, second = ws(web_tier, token=token), ws(web_tier, token=token)
    frame(first), frame(second)
    assert presence_online_user_ids(user_ids=[user.pk]) == {user.pk}
    assert db_status() == PresenceStatus.ONLINE
    # Routing reads it: the only-when-offline email is skipped while the app is open.
    assert email_status() == DeliveryStatus.SKIPPED

    first.send(json.dumps({"type": "presence", "status": "away"}))
    wait_until(lambda: db_status() == PresenceStatus.AWAY, timeout=10, message="AWAY mirrored")
    assert presence_online_user_ids(user_ids=[user.pk]) == set()  # only_when_offline channels apply again
    first.send(json.dumps({"type": "presence", "status": "online"}))
    wait_until(lambda: presence_online_user_ids(user_ids=[user.pk]) == {user.pk}, timeout=10, message="online again")

    first.close()
    time.sleep(1.5)
    assert presence_online_user_ids(user_ids=[user.pk]) == {user.pk}  # one tab is still open
    second.close()
    # A reload reconnects within the grace period: still online right after the close…
    assert presence_online_user_ids(user_ids=[user.pk]) == {user.pk}
    # …then OFFLINE, in Redis and in the mirrored row.
    wait_until(lambda: db_status() == PresenceStatus.OFFLINE, timeout=10, message="OFFLINE after the grace")
    assert presence_online_user_ids(user_ids=[user.pk]) == set()
    assert email_status() == DeliveryStatus.PENDING


# --- the SSE fallback -------------------------------------------------------------------------


def _sse_events(response):
    event, data = None, None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and event:
            yield event, data
            event, data = None, None


def test_sse_stream_on_the_same_tier(web_tier, user, other_user, organization, api_key):
    assert requests.get(f"{web_tier.url}/api/v1/notifications/stream/", timeout=10).status_code == 401
    assert requests.get(f"{web_tier.url}/api/v1/notifications/stream/", timeout=10,
                        headers={"Authorization": f"Api-Key {api_key}"}).status_code == 403

    response = requests.get(f"{web_tier.url}/api/v1/notifications/stream/", stream=True, timeout=30,
                            headers={"Authorization": f"Token {token_for(user)}"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    events = _sse_events(response)
    assert next(events) == ("unread_count", {"count": 0})

    event_type_with_template()
    _, theirs = notification_with_deliveries(organization=organization, recipient=other_user)
    notification, mine = notification_with_deliveries(organization=organization, recipient=user)
    deliver_batch(delivery_ids=[theirs[0].pk, mine[0].pk])
    event, data = next(events)
    assert event == "notification" and data["id"] == notification.pk and data["unread_count"] == 1
    assert data["title"] == "Alice assigned you Fix <login>"
    response.close()
