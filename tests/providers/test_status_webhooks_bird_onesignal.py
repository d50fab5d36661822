"""MessageBird SMS and OneSignal push statuses come back by webhook: an event is sent through
the provider's loopback peer, then the provider's callback — signed as MessageBird signs it, or
at the record's secret URL for OneSignal — changes that delivery, and only a genuine, first
report does."""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
from django.test import Client

from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SIGNING_KEY = "bird-signing-key-for-the-status-report-tests"
BIRD_ID = "e8077d803532c0b5937c639b60216938"
STATUS_PATH = "/webhooks/messagebird/sms/status/"


@pytest.fixture
def bird(peer, make_provider, user):
    user.phone = "+447400123456"
    user.save(update_fields=["phone"])
    server = peer(latency=LATENCY).on("POST", "/messages", Reply(201, {"id": BIRD_ID, "recipients": {"totalCount": 1, "totalSentCount": 1}}))
    make_provider("messagebird_sms", config={"base_url": server.url, "originator": "Troubadour"},
                  secrets={"access_key": "live_bird_access_key", "signing_key": SIGNING_KEY})
    return server


def _bird_jwt(url: str, body: bytes = b"", *, key: str = SIGNING_KEY, **claims) -> str:
    now = int(time.time())
    payload = {"iss": "MessageBird", "nbf": now, "exp": now + 300, "jti": str(uuid.uuid4()),
               "url_hash": hashlib.sha256(url.encode()).hexdigest(), **claims}
    if body:
        payload["payload_hash"] = hashlib.sha256(body).hexdigest()
    return jwt.encode(payload, key, algorithm="HS256")


def _report(status: str, **extra) -> str:
    return STATUS_PATH + "?" + urlencode({"id": BIRD_ID, "reference": "1", "recipient": "447400123456", "status": status,
                                          "statusDatetime": "2026-11-30T21:00:00+00:00", **extra})


def test_a_signed_messagebird_status_report_changes_that_delivery(bird, organization, user):
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.SMS])[Channel.SMS]
    assert delivery.status == DeliveryStatus.SENT and delivery.provider_message_id == BIRD_ID, delivery.error
    assert bird.calls()[-1].json["reportUrl"] == "https://troubadour.test/webhooks/messagebird/sms/status/"
    client = Client()

    delivered = _report("delivered")
    # another key, a token made for another URL, no token: refused, nothing changes
    assert client.get(delivered, HTTP_MESSAGEBIRD_SIGNATURE_JWT=_bird_jwt(f"https://troubadour.test{delivered}", key="another-accounts-signing-key-not-ours-at-all")).status_code == 403
    assert client.get(delivered, HTTP_MESSAGEBIRD_SIGNATURE_JWT=_bird_jwt(f"https://troubadour.test{_report('sent')}")).status_code == 403
    assert client.get(delivered).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT

    token = _bird_jwt(f"https://troubadour.test{delivered}")
    assert client.get(delivered, HTTP_MESSAGEBIRD_SIGNATURE_JWT=token).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at is not None
    assert client.get(delivered, HTTP_MESSAGEBIRD_SIGNATURE_JWT=token).status_code == 403  # replayed


def test_a_failed_messagebird_report_posted_with_a_body_fails_the_delivery_with_the_reason(bird, organization, user):
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.SMS])[Channel.SMS]
    body = json.dumps({"id": BIRD_ID, "recipient": 447400123456, "status": "delivery_failed",
                       "statusReason": "unknown subscriber", "statusErrorCode": 1}).encode()
    url = f"https://troubadour.test{STATUS_PATH}"
    tampered = body.replace(b"delivery_failed", b"delivered")
    assert Client().post(STATUS_PATH, tampered, content_type="application/json",
                         HTTP_MESSAGEBIRD_SIGNATURE_JWT=_bird_jwt(url, body)).status_code == 403
    assert Client().post(STATUS_PATH, body, content_type="application/json",
                         HTTP_MESSAGEBIRD_SIGNATURE_JWT=_bird_jwt(url, body)).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "unknown subscriber (error 1)" in delivery.error


ONESIGNAL_ID = "b98881cc-1e94-4366-bbd9-db8f3429292b"


@pytest.fixture
def onesignal(peer, make_provider):
    server = peer(latency=LATENCY).on("POST", "/notifications", Reply(200, {"id": ONESIGNAL_ID, "external_id": None}))
    record = make_provider("onesignal", config={"base_url": server.url, "app_id": "5eb5a37e-b458-11e3-ac11-000c2940e62c"},
                           secrets={"rest_api_key": "os-rest-key", "webhook_secret": "os-webhook-secret-123"})
    server.record = record
    return server


def _onesignal_post(record_id: int, secret: str, event: str, *, notification_id: str = ONESIGNAL_ID) -> int:
    # As a browser posts it: JSON, sent without CORS (text/plain).
    body = json.dumps({"event": event, "id": notification_id, "userId": "c2b6e1f4-player", "heading": "Deploy apollo-7",
                       "content": "Deploy apollo-7 finished.", "url": "https://troubadour.test/", "data": {}})
    return Client().post(f"/webhooks/onesignal/{record_id}/{secret}/", body, content_type="text/plain").status_code


def test_onesignal_web_push_webhooks_at_the_records_secret_url_change_that_delivery(onesignal, organization, user):
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.PUSH])[Channel.PUSH]
    assert delivery.status == DeliveryStatus.SENT and delivery.provider_message_id == ONESIGNAL_ID, delivery.error
    record_id = onesignal.record.pk

    assert _onesignal_post(record_id, "wrong-secret", "notification.clicked") == 403
    assert _onesignal_post(record_id + 1000, "os-webhook-secret-123", "notification.clicked") == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT

    assert _onesignal_post(record_id, "os-webhook-secret-123", "notification.willDisplay") == 204
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at is not None
    assert _onesignal_post(record_id, "os-webhook-secret-123", "notification.clicked") == 204
    delivery.refresh_from_db()
    assert delivery.clicked_at is not None
    clicked_at = delivery.clicked_at
    assert _onesignal_post(record_id, "os-webhook-secret-123", "notification.clicked") == 204  # again: applied once
    delivery.refresh_from_db()
    assert delivery.clicked_at == clicked_at


def test_a_onesignal_record_changes_only_its_own_deliveries(onesignal, make_provider, organization, user):
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.PUSH])[Channel.PUSH]
    assert NotificationDelivery.objects.get(pk=delivery.pk).provider_record_id == onesignal.record.pk
    from tests.factories import OrganizationFactory

    other = make_provider("onesignal", organization=OrganizationFactory(), config={"app_id": "another-app"},
                          secrets={"rest_api_key": "other-key", "webhook_secret": "other-webhook-secret-456"})
    # the other account's genuine URL, about this record's notification: accepted, changes nothing
    assert _onesignal_post(other.pk, "other-webhook-secret-456", "notification.clicked") == 204
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.clicked_at is None
