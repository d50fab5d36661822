"""The PUSH field group (seed 004 §4.5) from the event to the requests FCM's and a Web Push
service's loopback peers receive: icon, badge, sound, click action, data, device targeting,
Android channel/priority/TTL, iOS badge/sound/content-available, Web require-interaction."""
from __future__ import annotations

import pytest

from notifications.enums import Channel, DeliveryStatus
from providers.models import PushSubscription, PushSubscriptionKind

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply
from .test_push import Browser, _service_account, b64, vapid  # noqa: F401 — the VAPID key fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

OPTIONS = {"PUSH": {
    "icon": "https://cdn.example.com/icon.png", "badge": 3, "sound": "chime", "click_action": "https://app.example.com/deploys/7",
    "data": {"deploy": "D-7"}, "device_tokens": ["phone-token"],
    "android": {"channel_id": "deploys", "priority": "high", "ttl": 600},
    "ios": {"badge": 4, "sound": "ping.caf", "content_available": True},
    "web": {"require_interaction": True},
}}


@pytest.fixture
def fcm(peer, make_provider):
    google = peer(latency=LATENCY)
    google.on("POST", "/token", Reply(200, {"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}))
    google.on("POST", "/v1/projects/troubadour-test/messages:send",
              lambda req: Reply(200, {"name": f"projects/troubadour-test/messages/{req.json['message']['token']}-id"}))
    make_provider("fcm", config={"base_url": google.url}, secrets={"service_account": _service_account(f"{google.url}/token")})
    return google


def test_every_push_option_reaches_fcm_and_only_the_targeted_device(fcm, organization, user):
    for token in ("phone-token", "tablet-token"):
        PushSubscription.objects.create(user=user, kind=PushSubscriptionKind.FCM, endpoint=token)
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.PUSH], options=OPTIONS)
    assert deliveries[Channel.PUSH].status == DeliveryStatus.SENT, deliveries[Channel.PUSH].error

    (call,) = fcm.calls("POST", "/v1/projects/troubadour-test/messages:send")  # the tablet was not targeted
    message = call.json["message"]
    assert message["token"] == "phone-token"
    assert message["notification"] == {"title": "Deploy apollo-7", "body": "Deploy apollo-7 finished."}
    assert message["data"]["deploy"] == "D-7" and message["data"]["url"] == "https://app.example.com/deploys/7"
    assert message["android"]["ttl"] == "600s" and message["android"]["priority"] == "HIGH"
    assert message["android"]["notification"] == {"channel_id": "deploys", "icon": "https://cdn.example.com/icon.png",
                                                  "sound": "chime", "notification_count": 3}
    assert message["apns"]["payload"]["aps"] == {"badge": 4, "sound": "ping.caf", "content-available": 1}
    assert message["webpush"]["notification"]["requireInteraction"] is True
    assert message["webpush"]["notification"]["icon"] == "https://cdn.example.com/icon.png"
    assert message["webpush"]["fcm_options"] == {"link": "https://app.example.com/deploys/7"}
    assert message["webpush"]["headers"] == {"TTL": "600", "Urgency": "high"}


def test_web_push_payload_carries_the_options_and_the_templates_require_interaction(peer, make_provider, organization, user,
                                                                                     vapid):  # noqa: F811
    browser = Browser()
    received = []

    def endpoint(req):
        received.append((req, browser.decrypt(req.body)))
        return Reply(201, b"", {"Location": f"{push.url}/msg/1"})

    push = peer(latency=LATENCY).on("POST", "/push/device-1", endpoint)
    PushSubscription.objects.create(user=user, endpoint=f"{push.url}/push/device-1", p256dh=browser.p256dh,
                                    auth=b64(browser.auth_secret))
    make_provider("webpush")
    # The shipped push templates say it flat (critical events): it reaches the browser.
    payload_event_type(extra={Channel.PUSH: {"require_interaction": True}})
    deliveries = trigger(organization=organization, user=user, channels=[Channel.PUSH],
                         options={"PUSH": {"icon": "https://cdn.example.com/icon.png", "data": {"deploy": "D-7"},
                                           "web": {"badge": "https://cdn.example.com/badge.png"}}})
    assert deliveries[Channel.PUSH].status == DeliveryStatus.SENT, deliveries[Channel.PUSH].error
    (_req, payload) = received[0]
    assert payload["requireInteraction"] is True
    assert payload["icon"] == "https://cdn.example.com/icon.png" and payload["badge"] == "https://cdn.example.com/badge.png"
    assert payload["data"]["deploy"] == "D-7" and payload["title"] == "Deploy apollo-7"


def test_targeting_a_device_the_user_does_not_have_fails_clearly(fcm, organization, user):
    PushSubscription.objects.create(user=user, kind=PushSubscriptionKind.FCM, endpoint="phone-token")
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.PUSH],
                         options={"PUSH": {"device_tokens": ["someone-elses-token"]}})
    assert deliveries[Channel.PUSH].status == DeliveryStatus.FAILED
    assert "targeted devices" in deliveries[Channel.PUSH].error
    assert fcm.calls("POST", "/v1/projects/troubadour-test/messages:send") == []
