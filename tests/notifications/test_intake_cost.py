"""What one REST event costs the web process: its queries, and the memos that save them
(accounts.key_cache for API keys, notifications.engine.config_memo for the configuration)
without ever using a revoked key or an edited template."""
from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from notifications.enums import Channel
from notifications.models import Notification, NotificationTemplate, TemplateChannel

from ..factories import MembershipFactory, UserFactory
from .intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.rabbitmq]

URL = "/api/v1/events/"


@pytest.fixture
def memo_on(settings):
    settings.NOTIFICATION_CONFIG_MEMO = True  # as in every server process (the suite turns it off)


def _body(user_id, **extra):
    return {"type": EVENT, "recipient_ids": [str(user_id)], "channels": [Channel.IN_APP],
            "data": {"taskTitle": "Fix login"}, **extra}


def test_one_rest_event_to_one_user_costs_ten_queries(organization, memo_on, django_assert_max_num_queries,
                                                     django_capture_on_commit_callbacks):
    intake_event_type()
    user = member(organization)
    _, raw = api_key_create(organization=organization, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(URL, _body(user.pk), format="json").status_code == 202  # warms both memos
    # Recipient, preferences, quiet hours, ids, three set-based inserts, BEGIN/COMMIT and the
    # unread count published with the frame; no API key, event type, template, channel
    # configuration or webhook lookup (21 before the memos and without the savepoint).
    with django_assert_max_num_queries(10) as ctx, django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, _body(user.pk), format="json")
    assert response.status_code == 202, response.content
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    for table in ("accounts_apikey", "notifications_eventtype", "notifications_notificationtemplate",
                  "notifications_channelconfiguration", "notifications_webhook"):
        assert table not in sql
    assert sql.count("SAVEPOINT") <= 2  # the event's own transaction (a savepoint inside the test's), no second one
    [item] = response.json()["notifications"]
    assert Notification.objects.get(pk=item["id"]).deliveries.get().status == "SENT"


def test_a_revoked_key_is_refused_at_once_though_it_was_memoized(organization, memo_on):
    intake_event_type()
    user = member(organization)
    key, raw = api_key_create(organization=organization, name="soon revoked")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post(URL, _body(user.pk), format="json").status_code == 202
    assert client.post(URL, _body(user.pk), format="json").status_code == 202  # from the memo
    api_key_revoke(api_key=key)
    response = client.post(URL, _body(user.pk), format="json")
    assert response.status_code == 401 and "revoked" in response.json()["detail"].lower()


def test_a_key_dies_with_its_creators_membership_though_it_was_memoized(organization, memo_on):
    intake_event_type()
    user = member(organization)
    creator = UserFactory()
    membership = MembershipFactory(user=creator, organization=organization)
    _, raw = api_key_create(organization=organization, name="creator's", created_by=creator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post(URL, _body(user.pk), format="json").status_code == 202
    membership.delete()
    assert client.post(URL, _body(user.pk), format="json").status_code == 401
    assert ApiKey.objects.get(name="creator's").revoked_at is not None


def test_the_memoized_key_is_a_copy_and_last_used_is_written_once_a_minute(organization, memo_on,
                                                                            django_assert_max_num_queries):
    intake_event_type()
    user = member(organization)
    _, raw = api_key_create(organization=organization, name="copy")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post(URL, _body(user.pk), format="json").status_code == 202
    first = ApiKey.objects.get(name="copy").last_used_at
    assert first is not None
    from accounts.key_cache import api_keys
    from accounts.selectors import api_key_get_active

    one, two = api_key_get_active(raw_key=raw), api_key_get_active(raw_key=raw)
    assert one is not two and one.organization is not two.organization
    assert all(entry[1] is not one for entry in api_keys._entries.values())
    with django_assert_max_num_queries(12) as ctx:
        assert client.post(URL, _body(user.pk), format="json").status_code == 202
    assert not any("accounts_apikey" in q["sql"] for q in ctx.captured_queries)  # no read, no last_used write


def test_an_edited_template_is_used_by_the_next_event(organization, memo_on):
    intake_event_type()
    user = member(organization)
    _, raw = api_key_create(organization=organization, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    template = NotificationTemplate.objects.create(organization=organization, key=EVENT, name="Ours", is_active=True)
    block = TemplateChannel.objects.create(template=template, channel=Channel.IN_APP, title="Before {{ task.title }}",
                                           body="b")
    block.refresh_from_db()
    first = client.post(URL, _body(user.pk), format="json").json()["notifications"][0]["id"]
    assert Notification.objects.get(pk=first).title.startswith("Before")
    block.title = "After {{ task.title }}"
    block.save()
    second = client.post(URL, _body(user.pk), format="json").json()["notifications"][0]["id"]
    assert Notification.objects.get(pk=second).title == "After Fix login"


def test_a_full_channel_layer_drops_visibly(caplog):
    """channels_redis skips a full channel on group_send at INFO: it becomes a counted WARNING."""
    import asyncio

    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    from notifications.realtime.layer_health import FRAMES_DROPPED

    async def overflow() -> None:
        layer = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test:layerfull", capacity=1)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "x"})
        await layer.group_send("g", {"type": "x"})  # over capacity: dropped
        await layer.flush()
        await layer.close_pools()

    before = FRAMES_DROPPED._value.get()
    with caplog.at_level(logging.INFO, logger="channels_redis.core"):
        asyncio.run(overflow())
    assert FRAMES_DROPPED._value.get() == before + 1
    assert any(r.levelno == logging.WARNING and "frames dropped" in r.getMessage() for r in caplog.records)


def test_small_events_reach_the_bus_from_the_publisher_thread(organization, settings, django_capture_on_commit_callbacks):
    """The answer does not wait for the bus: the items are published by the process's publisher
    thread (engine.inapp_publisher), those of events committed together in one message."""
    import time

    from kombu import Queue

    from notifications.engine import realtime

    settings.INAPP_PUBLISH_INLINE = False
    intake_event_type()
    users = [member(organization) for _ in range(3)]
    _, raw = api_key_create(organization=organization, name="bus")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    received: list[dict] = []
    with realtime.bus_connection() as conn:
        probe = Queue(f"test-intake-cost-{time.monotonic_ns()}", exchange=realtime.bus_exchange(),
                      routing_key=realtime.ROUTING_KEY, exclusive=True, auto_delete=True)
        with conn.Consumer([probe], callbacks=[lambda body, message: (received.append(body), message.ack())],
                           accept=["json"]):
            ids = []
            with django_capture_on_commit_callbacks(execute=True):
                for u in users:
                    response = client.post(URL, _body(u.pk), format="json")
                    assert response.status_code == 202
                    ids.append(response.json()["notifications"][0]["id"])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and sum(len(b["items"]) for b in received) < 3:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
    items = [item for body in received for item in body["items"]]
    assert sorted(i["notification"]["id"] for i in items) == sorted(ids)
    assert {i["user_id"] for i in items} == {u.pk for u in users}
