"""`channel_options` on an event (API.md "Channel options on an event"): checked at intake (a 400
naming the channel and key, nothing saved), merged over the template, and the IN_APP fields
served by the inbox API and the realtime frames."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.engine.delivery import deliver_batch
from notifications.engine.payloads import event_validated_payload
from notifications.engine.realtime import inapp_items
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationDelivery, NotificationTemplate, TemplateChannel
from common.exceptions import ValidationError

from .intake_support import EVENT, intake_event_type

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/events/"


@pytest.fixture
def event_type(db):
    return intake_event_type(allowed_channels=[Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS])


def _post(client, user, options, channels=("IN_APP",), **extra):
    return client.post(URL, {"type": EVENT, "recipient_ids": [str(user.pk)], "channels": list(channels),
                             "data": {"taskTitle": "Fix login"}, "channel_options": options, **extra}, format="json")


def _deliver_all():
    ids = list(NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True))
    return deliver_batch(delivery_ids=ids)


def test_in_app_fields_reach_the_inbox_api_and_the_realtime_frame(key_client, auth_client, user, event_type):
    expires = (timezone.now() + timedelta(days=1)).isoformat()
    options = {"IN_APP": {
        "type": "banner", "group_key": "deploy-42", "expires_at": expires, "persistent": True,
        "icon": "https://cdn.example.com/icon.png", "image_url": "https://cdn.example.com/big.png",
        "metadata": {"build": 42},
        "actions": [{"id": "open", "label": "Open", "action": "navigate", "url": "/deploys/42"},
                    {"id": "later", "label": "Later", "action": "dismiss"},
                    {"id": "rollback", "label": "Roll back", "action": "custom", "data": {"deploy": 42}}],
    }}
    assert _post(key_client, user, options).status_code == 202
    _deliver_all()

    body = auth_client.get("/api/v1/notifications/").json()
    (item,) = body["results"]
    assert item["type"] == "banner" and item["persistent"] is True and item["group_key"] == "deploy-42"
    assert item["icon"] == "https://cdn.example.com/icon.png" and item["image_url"] == "https://cdn.example.com/big.png"
    assert item["metadata"] == {"build": 42}
    assert [a["action"] for a in item["actions"]] == ["navigate", "dismiss", "custom"]
    assert item["actions"][0]["url"] == "/deploys/42" and item["actions"][2]["data"] == {"deploy": 42}
    assert item["expires_at"].startswith(expires[:16].replace("+00:00", ""))

    n = Notification.objects.get()
    (frame,) = inapp_items(notifications=[n])
    assert {k: frame["notification"][k] for k in ("type", "group_key", "persistent", "actions")} == {
        k: item[k] for k in ("type", "group_key", "persistent", "actions")}

    # the inbox groups by group_key
    assert len(auth_client.get("/api/v1/notifications/", {"group_key": "deploy-42"}).json()["results"]) == 1
    assert auth_client.get("/api/v1/notifications/", {"group_key": "other"}).json()["results"] == []


def test_an_expired_in_app_item_is_no_longer_listed_nor_counted(key_client, auth_client, user, event_type):
    soon = (timezone.now() + timedelta(seconds=30)).isoformat()
    assert _post(key_client, user, {"IN_APP": {"expires_at": soon}}).status_code == 202
    _deliver_all()
    assert len(auth_client.get("/api/v1/notifications/").json()["results"]) == 1
    assert auth_client.get("/api/v1/notifications/unread-count/").json()["count"] == 1

    Notification.objects.update(inbox_expires_at=timezone.now() - timedelta(seconds=1))  # time passes
    assert auth_client.get("/api/v1/notifications/").json()["results"] == []
    assert auth_client.get("/api/v1/notifications/unread-count/").json()["count"] == 0


def test_the_event_wins_over_the_template_which_wins_over_the_defaults(key_client, auth_client, user, event_type):
    template = NotificationTemplate.objects.create(key=EVENT, event_type=EVENT, name="t")
    TemplateChannel.objects.create(template=template, channel=Channel.IN_APP, title_en="Hello",
                                   extra={"type": "silent", "group_key": "from-template", "persistent": True})
    assert _post(key_client, user, {"IN_APP": {"group_key": "from-event"}}).status_code == 202
    _deliver_all()
    (item,) = auth_client.get("/api/v1/notifications/").json()["results"]
    assert (item["type"], item["group_key"], item["persistent"]) == ("silent", "from-event", True)


@pytest.mark.parametrize("options, path", [
    ({"PIGEON": {}}, ["PIGEON"]),
    ({"IN_APP": {"colour": "red"}}, ["IN_APP", "colour"]),
    ({"IN_APP": {"type": "popup"}}, ["IN_APP", "type"]),
    ({"IN_APP": {"actions": [{"id": "a", "label": "A", "action": "navigate"}]}}, ["IN_APP", "actions", "0", "url"]),
    ({"IN_APP": {"actions": [{"id": "a", "label": "A", "action": "navigate", "url": "javascript:alert(1)"}]}},
     ["IN_APP", "actions", "0", "url"]),
    ({"IN_APP": {"expires_at": "2001-01-01T00:00:00Z"}}, ["IN_APP", "expires_at"]),
    ({"EMAIL": {"cc": ["not-an-address"]}}, ["EMAIL", "cc"]),
    ({"EMAIL": {"headers": {"Bcc": "x@example.com"}}}, ["EMAIL", "headers", "Bcc"]),
    ({"EMAIL": {"headers": {"X-Troubadour-Delivery": "1"}}}, ["EMAIL", "headers", "X-Troubadour-Delivery"]),
    ({"EMAIL": {"headers": {"X-Note": "a\r\nBcc: x@example.com"}}}, ["EMAIL", "headers", "X-Note"]),
    ({"EMAIL": {"attachments": [{"filename": "a.exe", "content_type": "application/x-msdownload",
                                 "content_base64": "aGk="}]}}, ["EMAIL", "attachments", "0", "content_type"]),
    ({"EMAIL": {"attachments": [{"filename": "a.txt", "content_type": "text/plain"}]}},
     ["EMAIL", "attachments", "0", "non_field_errors"]),
    ({"EMAIL": {"attachments": [{"filename": "a.txt", "content_type": "text/plain", "content_base64": "%%%"}]}},
     ["EMAIL", "attachments", "0", "content_base64"]),
    ({"EMAIL": {"attachments": [{"filename": "../a.txt", "content_type": "text/plain", "content_base64": "aGk="}]}},
     ["EMAIL", "attachments", "0", "filename"]),
    ({"PUSH": {"android": {"priority": "urgent"}}}, ["PUSH", "android", "priority"]),
    ({"PUSH": {"web": {"require_interaction": "yes"}}}, ["PUSH", "web", "require_interaction"]),
    ({"SMS": {"max_segments": 0}}, ["SMS", "max_segments"]),
    ({"SMS": {"from": "A sender id far too long"}}, ["SMS", "from"]),
    ({"WHATSAPP": {"media_type": "audio"}}, ["WHATSAPP", "media_type"]),
    ({"WHATSAPP": {"buttons": [{"type": "url", "text": "Open"}]}}, ["WHATSAPP", "buttons", "0", "url"]),
    ({"VOICE": {"acknowledgment_digit": "12"}}, ["VOICE", "acknowledgment_digit"]),
    ({"VOICE": {"max_retries": 9}}, ["VOICE", "max_retries"]),
    ("everything", []),
])
def test_bad_channel_options_are_a_400_naming_them_and_nothing_is_saved(key_client, user, event_type, options, path):
    response = _post(key_client, user, options)
    assert response.status_code == 400, response.content
    detail = response.json()["channel_options"]
    for key in path:
        assert key in detail, (key, detail)
        detail = detail[key]
    assert not Notification.objects.exists() and not NotificationDelivery.objects.exists()


def test_an_attachment_over_the_size_limit_is_refused_at_intake(key_client, user, event_type, settings):
    settings.EMAIL_ATTACHMENT_MAX_BYTES = 1024
    big = base64.b64encode(b"x" * 2048).decode()
    response = _post(key_client, user, {"EMAIL": {"attachments": [
        {"filename": "big.txt", "content_type": "text/plain", "content_base64": big}]}}, channels=("EMAIL",))
    assert response.status_code == 400
    assert "1024 bytes" in str(response.json()["channel_options"]["EMAIL"]["attachments"]["0"]["content_base64"])
    assert not Notification.objects.exists()


def test_the_bus_payload_is_checked_the_same_way_camel_case_included():
    with pytest.raises(ValidationError) as caught:
        event_validated_payload({"eventType": EVENT, "recipientIds": ["1"], "channelOptions": {"SMS": {"sender": "x"}}})
    assert "sender" in caught.value.detail["channel_options"]["SMS"]
    payload = event_validated_payload({"eventType": EVENT, "recipientIds": ["1"], "channelOptions": {"SMS": {"max_segments": 2}}})
    assert payload["channel_options"] == {"SMS": {"max_segments": 2}}


def test_inline_attachments_for_a_large_audience_must_go_by_url(key_client, user, event_type, settings, organization):
    from .intake_support import member

    settings.EMAIL_INLINE_ATTACHMENTS_EVENT_MAX_BYTES = 100
    others = [member(organization) for _ in range(3)]
    body = base64.b64encode(b"y" * 30).decode()  # 40 characters, times 4 recipients: over 100
    response = key_client.post(URL, {"type": EVENT, "recipient_ids": [str(u.pk) for u in (user, *others)], "channels": ["EMAIL"],
                                     "channel_options": {"EMAIL": {"attachments": [
                                         {"filename": "a.txt", "content_type": "text/plain", "content_base64": body}]}}},
                               format="json")
    assert response.status_code == 400
    assert "give them by url" in str(response.json()["channel_options"]["EMAIL"]["attachments"])
    assert not Notification.objects.exists()


def test_an_organizations_channel_settings_are_checked_like_options(auth_client, organization):
    url = "/api/v1/admin/channel-configurations/"
    bad = auth_client.post(url, {"channel": "SMS", "settings": {"from": "A sender id far too long"}}, format="json")
    assert bad.status_code == 400 and "from" in bad.json()["settings"]
    bad = auth_client.post(url, {"channel": "EMAIL", "settings": {"track_clicks": "maybe"}}, format="json")
    assert bad.status_code == 400 and "track_clicks" in bad.json()["settings"]
    good = auth_client.post(url, {"channel": "SMS", "settings": {"from": "ACME", "requiresOptIn": False}}, format="json")
    assert good.status_code == 201, good.content
    assert good.json()["settings"] == {"from": "ACME", "requiresOptIn": False}


def test_the_inbox_list_reads_only_the_in_app_options(key_client, auth_client, user, event_type):
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    attachment = {"filename": "a.txt", "content_type": "text/plain", "content_base64": base64.b64encode(b"z" * 300).decode()}
    assert _post(key_client, user, {"IN_APP": {"type": "banner"}, "EMAIL": {"attachments": [attachment]}},
                 channels=("IN_APP",)).status_code == 202
    _deliver_all()
    with CaptureQueriesContext(connection) as queries:
        (item,) = auth_client.get("/api/v1/notifications/").json()["results"]
    assert item["type"] == "banner"
    whole_column = [q["sql"] for q in queries.captured_queries if re.search(r'"channel_options"(?!\s*->)', q["sql"])]
    assert whole_column == []  # the email's inline attachment is not read for the inbox
