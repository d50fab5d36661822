"""The inbox stream: Server-Sent Events through Redis pub/sub, polling without Redis."""
from __future__ import annotations

import json

import pytest

from notifications.engine import sse
from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel

from .test_delivery_support import event_type_with_template, inbox_item, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def parse(chunk: str | bytes) -> tuple[str, dict]:
    text = chunk.decode() if isinstance(chunk, bytes) else chunk
    fields = dict(line.split(": ", 1) for line in text.strip().splitlines() if ": " in line and not line.startswith(":"))
    return fields.get("event", ""), json.loads(fields["data"])


@pytest.mark.redis
def test_stream_yields_an_event_when_a_notification_is_delivered(auth_client, user, organization, other_user,
                                                                 django_capture_on_commit_callbacks):
    inbox_item(organization=organization, recipient=user)
    response = auth_client.get("/api/v1/notifications/stream/", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    stream = iter(response.streaming_content)
    first = next(stream)
    assert first.decode().startswith("retry: ")
    assert parse(first.decode().split("\n", 1)[1]) == ("unread_count", {"count": 1})

    # Someone else's notification is not on this user's channel; this user's is.
    event_type_with_template()
    _, theirs = notification_with_deliveries(organization=organization, recipient=other_user, channels=(Channel.IN_APP,))
    notification, mine = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.IN_APP,))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_batch(delivery_ids=[theirs[0].pk, mine[0].pk])

    event, data = parse(next(stream))
    assert event == "notification"
    assert data["id"] == notification.pk
    assert data["title"] == "Alice assigned you Fix <login>"
    assert data["unread_count"] == 2
    response.close()


@pytest.mark.redis
def test_reading_publishes_the_new_unread_count(auth_client, user, organization, django_capture_on_commit_callbacks):
    item = inbox_item(organization=organization, recipient=user)
    stream = iter(sse.inbox_stream(user_id=user.pk, heartbeat=30))
    assert "unread_count" in next(stream)
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.post(f"/api/v1/notifications/{item.pk}/read/").status_code == 200
    assert parse(next(stream)) == ("unread_count", {"count": 0})
    stream.close()


@pytest.mark.redis
def test_stream_sends_heartbeats_when_idle(user):
    stream = sse.inbox_stream(user_id=user.pk, heartbeat=0.2)
    next(stream)
    assert next(stream) == ": heartbeat\n\n"
    stream.close()


def test_without_redis_the_stream_polls_the_unread_count(user, organization, settings):
    settings.REDIS_URL = ""
    assert sse.redis_client() is None
    stream = sse.inbox_stream(user_id=user.pk, poll_interval=0.1, heartbeat=60)
    assert parse(next(stream).split("\n", 1)[1]) == ("unread_count", {"count": 0})
    inbox_item(organization=organization, recipient=user)
    assert parse(next(stream)) == ("unread_count", {"count": 1})
    stream.close()
    # Publishing without Redis is a no-op, never an error.
    assert sse.inbox_publish(messages=[(user.pk, "unread_count", {"count": 1})]) == 0


def test_stream_needs_a_signed_in_user(api_client, key_client):
    assert api_client.get("/api/v1/notifications/stream/").status_code in (401, 403)
    assert key_client.get("/api/v1/notifications/stream/").status_code == 403
