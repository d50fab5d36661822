"""The realtime tier's limits and durability, against `make serve`'s command as real processes.

A client flooding acks or presence frames is rate-limited and then closed (4408) without the
database seeing more than one write per batch; a web tier that is down while in-app items are
published loses none of them; the realtime endpoints are in the OpenAPI schema.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from notifications.engine.delivery import deliver_batch
from notifications.engine.presence import presence_online_user_ids
from notifications.enums import AuditAction, DeliveryStatus
from notifications.models import NotificationAuditLog, NotificationDelivery, UserPresence
from tests.conftest import wait_until

from .realtime_support import start_web_tier
from .test_delivery_support import event_type_with_template, notification_with_deliveries
from .test_realtime import frame, frame_of, token_for, ws

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web_tier(transactional_db, tmp_path):
    tier = start_web_tier(tmp_path, workers=1)
    yield tier
    tier.stop()


def _closed_code(conn, timeout: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            conn.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None
    return None


def test_a_client_flooding_acks_is_limited_then_closed_and_the_database_sees_one_write(web_tier, user, organization):
    event_type_with_template()
    notification, deliveries = notification_with_deliveries(organization=organization, recipient=user)
    token = token_for(user)
    flooder, bystander = ws(web_tier, token=token), ws(web_tier, token=token)
    frame(flooder), frame(bystander)
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    assert frame_of(flooder, "notification")["notification"]["id"] == notification.pk

    # 1,000 acks as fast as the socket takes them (the bucket allows a burst of 100 and 20/s).
    ack = json.dumps({"type": "ack", "id": notification.pk})
    sent = 0
    try:
        for _ in range(1000):
            flooder.send(ack)
            sent += 1
    except ConnectionClosed:
        pass
    answers = []
    code = None
    try:
        while True:
            answers.append(json.loads(flooder.recv(timeout=10)))
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
    assert {"type": "error", "error": "rate_limited"} in answers
    assert answers.count({"type": "error", "error": "rate_limited"}) == 1  # told once, not once per frame
    assert code == 4408, f"closed with {code} after {sent} frames"

    # The ack itself counted, once: one transition, one audit row, however many frames carried it.
    wait_until(lambda: NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.DELIVERED,
               timeout=10, message="the ack was written")
    assert NotificationAuditLog.objects.filter(delivery_id=deliveries[0].pk,
                                               action=AuditAction.DELIVERY_DELIVERED).count() == 1
    # The process and the user's other socket are unharmed.
    bystander.send(json.dumps({"type": "presence", "status": "away"}))
    wait_until(lambda: UserPresence.objects.filter(user=user, status="AWAY").exists(), timeout=10,
               message="the other socket still works")
    with ws(web_tier, token=token) as again:
        assert frame(again) == {"type": "unread_count", "count": 1}
    bystander.close()


def test_presence_changes_are_limited_per_connection(web_tier, user):
    conn = ws(web_tier, token=token_for(user))
    frame(conn)
    for i in range(40):  # WS_PRESENCE_PER_MINUTE (30): a burst of 15 passes
        conn.send(json.dumps({"type": "presence", "status": "away" if i % 2 else "dnd"}))
    assert frame_of(conn, "error", timeout=10) == {"type": "error", "error": "rate_limited"}
    # Dropped, not fatal: an ack is still taken (the general bucket is not empty).
    conn.send(json.dumps({"type": "ack", "id": 1}))
    with pytest.raises(TimeoutError):
        conn.recv(timeout=1)
    conn.close()


def test_items_published_while_the_consuming_web_tier_is_down_reach_the_socket_after_it_restarts(
        tmp_path, transactional_db, user, other_user, organization):
    """Nothing is lost across a restart: the queue is durable and a message is acked only after
    its push. The user's socket lives on a process that does not consume the exchange; the
    consuming process is down while the item is published, and pushes it once it is back."""
    from notifications.engine.realtime import bus_connection, bus_queue

    holder = start_web_tier(tmp_path, workers=1, consuming=False, env={"REALTIME_BUS_CONSUMER": "false"})
    consumer = start_web_tier(tmp_path, workers=1)
    consumer.stop()
    try:
        mine, theirs = ws(holder, token=token_for(user)), ws(holder, token=token_for(other_user))
        frame(mine), frame(theirs)
        event_type_with_template()
        notification, deliveries = notification_with_deliveries(organization=organization, recipient=user)
        deliver_batch(delivery_ids=[d.pk for d in deliveries])

        with bus_connection() as conn:
            _, waiting, _ = bus_queue()(conn.default_channel).queue_declare(passive=True)
        assert waiting >= 1  # kept by the broker while no web process consumes
        with pytest.raises(TimeoutError):
            mine.recv(timeout=1)

        consumer = start_web_tier(tmp_path, workers=1)
        pushed = frame_of(mine, "notification")["notification"]
        assert pushed["id"] == notification.pk
        assert frame(mine) == {"type": "unread_count", "count": 1}
        # Another user's socket on the same process hears nothing of it.
        with pytest.raises(TimeoutError):
            theirs.recv(timeout=1.5)
        mine.send(json.dumps({"type": "ack", "id": pushed["id"]}))
        wait_until(lambda: NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.DELIVERED,
                   timeout=10, message="ack → DELIVERED")
        mine.close()
        theirs.close()
    finally:
        consumer.stop()
        holder.stop()


def test_the_stream_and_the_socket_are_in_the_openapi_schema(auth_client):
    schema = auth_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    stream = schema["paths"]["/api/v1/notifications/stream/"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert stream["operationId"] == "notifications_stream" and stream["tags"] == ["notifications"]
    assert any(code.startswith("4") for code in stream["responses"])
    socket = schema["paths"]["/ws/notifications/"]["get"]
    assert "101" in socket["responses"] and "4408" in socket["description"] and "4429" in socket["description"]
    frames = schema["components"]["schemas"]
    assert set(frames["ServerFrame"]["properties"]["type"]["enum"]) == {"notification", "unread_count", "error"}
    assert set(frames["ClientFrame"]["properties"]["type"]["enum"]) == {"ack", "presence"}
    assert frames["ServerFrame"]["properties"]["notification"]["allOf"][0]["$ref"].endswith("/InboxNotification")


def test_a_crashed_web_process_leaves_nobody_online_past_the_presence_ttl(tmp_path, transactional_db, user, settings):
    """Presence lives in Redis with a TTL: a process killed outright (no close, no grace, no
    mirror update) cannot keep its users online; routing sees them offline once it expires."""
    settings.PRESENCE_TTL_SECONDS = 3  # every process of a deployment shares the setting
    tier = start_web_tier(tmp_path, workers=1, env={"PRESENCE_TTL_SECONDS": "3"})
    try:
        conn = ws(tier, token=token_for(user))
        frame(conn)
        assert presence_online_user_ids(user_ids=[user.pk]) == {user.pk}
        os.killpg(tier.proc.pid, signal.SIGKILL)
        tier.proc.wait(timeout=10)
        assert presence_online_user_ids(user_ids=[user.pk]) == {user.pk}  # nothing closed it
        wait_until(lambda: presence_online_user_ids(user_ids=[user.pk]) == set(), timeout=10,
                   message="offline once the crashed process's entries expire")
    finally:
        tier.stop()


def test_the_refresh_pushes_every_local_connection_forward_in_chunks(transactional_db, user, other_user, settings):
    """The refresher keeps a process's connections (and their status keys) alive in Redis, a
    chunk of connections per script call, and touches the mirrored rows."""
    import asyncio

    from notifications.engine import presence as engine_presence
    from notifications.realtime import presence

    async def run() -> dict[str, float]:
        client = presence._client()
        conns = {f"conn-{i}": (user.pk if i % 2 else other_user.pk) for i in range(5)}
        for name, uid in conns.items():
            assert await presence.connection_open(user_id=uid, connection=name, cap=10)
        await presence.status_set(user_id=user.pk, status="AWAY")
        stale = time.time() + 1
        for name, uid in conns.items():
            await client.zadd(engine_presence.connections_key(uid), {name: stale})
        await client.expire(engine_presence.status_key(user.pk), 2)
        try:
            await presence.refresh_local()
            scores = {name: await client.zscore(engine_presence.connections_key(uid), name) for name, uid in conns.items()}
            scores["status_ttl"] = await client.ttl(engine_presence.status_key(user.pk))
            return scores
        finally:
            for name, uid in conns.items():
                presence._local.pop(name, None)
                await client.delete(engine_presence.connections_key(uid), engine_presence.status_key(uid))

    original = presence.REFRESH_CHUNK
    presence.REFRESH_CHUNK = 2  # three script calls for five connections
    try:
        scores = asyncio.run(run())
    finally:
        presence.REFRESH_CHUNK = original
    ttl = settings.PRESENCE_TTL_SECONDS
    assert all(scores[f"conn-{i}"] > time.time() + ttl - 30 for i in range(5)), scores
    assert scores["status_ttl"] > 2
    assert UserPresence.objects.filter(user_id__in=[user.pk, other_user.pk]).count() == 2
