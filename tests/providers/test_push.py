from __future__ import annotations

import base64
import json
import os
import time

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import Channel
from providers.base import OutboundMessage
from providers.models import PushSubscription, PushSubscriptionKind
from providers.registry import registry

from .peers import Reply

pytestmark = pytest.mark.postgres


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Browser:
    """What a browser keeps for a push subscription: its ECDH key pair and auth secret."""

    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.p256dh = b64(self.private_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"))


@pytest.fixture
def vapid(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PRIVATE_KEY = b64(key.private_numbers().private_value.to_bytes(32, "big"))
    settings.VAPID_SUBJECT = "mailto:ops@troubadour.test"
    return key


def _push(user, criticality="MEDIUM") -> OutboundMessage:
    return OutboundMessage(channel=Channel.PUSH, to=str(user.pk), title="Incident", text="Database down",
                           criticality=criticality, action_url="https://troubadour.test/n/1", idempotency_key="55")


def test_web_push_payload_is_rfc8291_encrypted_for_the_subscription(peer, user, vapid):
    browser = Browser()
    received = []

    def endpoint(req):
        received.append((req, browser.decrypt(req.body)))
        return Reply(201, b"", {"Location": f"{push.url}/msg/1"})

    push = peer().on("POST", "/push/device-1", endpoint)
    PushSubscription.objects.create(user=user, endpoint=f"{push.url}/push/device-1", p256dh=browser.p256dh, auth=b64(browser.auth_secret))

    result = registry.get("webpush")().send(_push(user, criticality="CRITICAL"))

    (req, payload) = received[0]
    assert payload == {"title": "Incident", "body": "Database down", "url": "https://troubadour.test/n/1", "delivery_id": "55"}
    assert req.header("Content-Encoding") == "aes128gcm"
    assert (req.header("TTL"), req.header("Urgency")) == ("900", "high")  # critical: short-lived, urgent
    scheme, params = req.header("Authorization").split(" ", 1)
    assert scheme == "vapid"
    token = dict(p.strip().split("=", 1) for p in params.split(","))["t"]
    claims = jwt.decode(token, vapid.public_key(), algorithms=["ES256"], audience=push.url)
    assert claims["sub"] == "mailto:ops@troubadour.test"
    assert result.provider_message_id == f"{push.url}/msg/1"


def test_gone_subscriptions_are_removed_and_the_live_one_still_gets_it(peer, user, vapid):
    browser = Browser()
    push = peer().on("POST", "/push/gone", Reply(410)).on("POST", "/push/lost", Reply(404)).on("POST", "/push/live", Reply(201))
    for name in ("gone", "lost", "live"):
        PushSubscription.objects.create(user=user, endpoint=f"{push.url}/push/{name}", p256dh=browser.p256dh, auth=b64(browser.auth_secret))

    result = registry.get("webpush")().send(_push(user, criticality="LOW"))

    assert result.raw["devices"] == 1 and result.raw["removed"] == 2
    assert list(PushSubscription.objects.filter(user=user).values_list("endpoint", flat=True)) == [f"{push.url}/push/live"]
    assert push.calls(path_regex="/push/live")[0].header("Urgency") == "low"
    # no subscription left at all → permanent, nothing to retry
    PushSubscription.objects.filter(user=user).delete()
    with pytest.raises(ProviderPermanentError):
        registry.get("webpush")().send(_push(user))


def test_push_service_overload_is_transient(peer, user, vapid):
    browser = Browser()
    push = peer().on("POST", "/push/busy", Reply(503))
    PushSubscription.objects.create(user=user, endpoint=f"{push.url}/push/busy", p256dh=browser.p256dh, auth=b64(browser.auth_secret))
    with pytest.raises(ProviderTransientError):
        registry.get("webpush")().send(_push(user))
    assert PushSubscription.objects.filter(user=user).count() == 1


def _service_account(token_uri: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "troubadour-test", "private_key_id": "k1", "private_key": pem,
            "client_email": f"fcm-{time.time_ns()}@troubadour-test.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": token_uri}


def test_fcm_v1_authenticates_with_the_service_account_and_fans_out(peer, user, other_user):
    sent = []

    def fcm_send(req):
        assert req.header("Authorization") == "Bearer ya29.test-token"
        token = req.json["message"]["token"]
        sent.append(req.json["message"])
        if token == "stale-token":
            return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                                         "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})
        return Reply(200, {"name": f"projects/troubadour-test/messages/{token}-id"})

    google = peer()
    google.on("POST", "/token", Reply(200, {"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}))
    google.on("POST", "/v1/projects/troubadour-test/messages:send", fcm_send)
    for owner, token in ((user, "phone-token"), (user, "stale-token"), (other_user, "tablet-token")):
        PushSubscription.objects.create(user=owner, kind=PushSubscriptionKind.FCM, endpoint=token)
    provider = registry.get("fcm")(config={"base_url": google.url}, credentials={"service_account": _service_account(f"{google.url}/token")})

    results = provider.send_batch([_push(user, criticality="HIGH"), _push(other_user)])

    assert [r.provider_message_id for r in results] == ["projects/troubadour-test/messages/phone-token-id",
                                                        "projects/troubadour-test/messages/tablet-token-id"]
    assert len(google.calls("POST", "/token")) == 1  # one access token for the whole batch
    assert sorted(m["token"] for m in sent) == ["phone-token", "stale-token", "tablet-token"]
    high = next(m for m in sent if m["token"] == "phone-token")
    assert high["android"]["priority"] == "HIGH" and high["data"]["delivery_id"] == "55"
    assert not PushSubscription.objects.filter(endpoint="stale-token").exists()  # UNREGISTERED token removed
