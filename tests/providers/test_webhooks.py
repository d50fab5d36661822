from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus
from notifications.models import NotificationAuditLog
from providers.base import DeliveryEvent, DeliveryEventType
from providers.models import SuppressedAddress, SuppressionReason
from notifications.engine.provider_events import delivery_status_apply

from .factories import DeliveryFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SID = "AC0123456789abcdef0123456789abcdef"
STATUS_URL = "https://troubadour.test/webhooks/twilio/status/"
GATHER_URL = "https://troubadour.test/webhooks/twilio/voice/gather/"


@pytest.fixture
def twilio_record(make_provider):
    return make_provider("twilio_sms", config={"from_number": "+14155550111"}, secrets={"account_sid": SID, "auth_token": "tw-auth-token-123"})


def _signed_post(client: Client, url: str, params: dict, token: str = "tw-auth-token-123"):
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(url.replace("https://troubadour.test", ""), params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_valid_twilio_status_callback_updates_the_delivery(twilio_record):
    delivery = DeliveryFactory(provider_record=twilio_record, channel=Channel.SMS, provider="twilio_sms", provider_message_id="SM" + "1" * 32, recipient_address="+14155550100")
    params = {"AccountSid": SID, "MessageSid": delivery.provider_message_id, "MessageStatus": "delivered", "To": "+14155550100",
              "Price": "-0.0079", "PriceUnit": "USD"}
    response = _signed_post(Client(), STATUS_URL, params)

    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at is not None
    assert (delivery.cost_amount, delivery.cost_currency) == (Decimal("0.007900"), "USD")
    assert delivery.notification.__class__.objects.get(pk=delivery.notification_id).status == NotificationStatus.DELIVERED


@pytest.mark.parametrize("signature", ["forged", None])
def test_forged_or_missing_twilio_signature_is_refused_and_changes_nothing(twilio_record, signature):
    delivery = DeliveryFactory(provider_record=twilio_record, channel=Channel.SMS, provider="twilio_sms", provider_message_id="SM" + "2" * 32)
    params = {"AccountSid": SID, "MessageSid": delivery.provider_message_id, "MessageStatus": "failed"}
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    response = Client().post("/webhooks/twilio/status/", params, **headers)
    assert response.status_code == 403
    # signed with another account's token: refused as well
    assert _signed_post(Client(), STATUS_URL, params, token="someone-elses-token").status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_unknown_message_id_is_ignored(twilio_record):
    params = {"AccountSid": SID, "MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"}
    assert _signed_post(Client(), STATUS_URL, params).status_code == 204
    assert not NotificationAuditLog.objects.exclude(action=AuditAction.PROVIDER_CONFIGURED).exists()


def test_pressing_1_on_the_call_acknowledges_the_notification(make_provider):
    record = make_provider("twilio_voice", config={"from_number": "+14155550111"}, secrets={"account_sid": SID, "auth_token": "tw-auth-token-123"})
    delivery = DeliveryFactory(provider_record=record, channel=Channel.VOICE, provider="twilio_voice", provider_message_id="CA" + "1" * 32, recipient_address="+14155550100")
    response = _signed_post(Client(), GATHER_URL, {"AccountSid": SID, "CallSid": delivery.provider_message_id, "Digits": "1"})
    assert response.status_code == 200 and b"Acknowledged" in response.content
    notification = delivery.notification
    notification.refresh_from_db()
    assert notification.acknowledged_at is not None
    assert NotificationAuditLog.objects.filter(action=AuditAction.ACKNOWLEDGED, notification=notification).exists()


def test_another_digit_does_not_acknowledge(make_provider):
    record = make_provider("twilio_voice", config={"from_number": "+14155550111"}, secrets={"account_sid": SID, "auth_token": "tw-auth-token-123"})
    delivery = DeliveryFactory(provider_record=record, channel=Channel.VOICE, provider="twilio_voice", provider_message_id="CA" + "2" * 32)
    _signed_post(Client(), GATHER_URL, {"AccountSid": SID, "CallSid": delivery.provider_message_id, "Digits": "5"})
    delivery.notification.refresh_from_db()
    assert delivery.notification.acknowledged_at is None


@pytest.fixture
def sendgrid_record(make_provider):
    return make_provider("sendgrid", secrets={"api_key": "SG.platform"})


@pytest.fixture
def anymail_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:s3cret"}
    return "Basic " + base64.b64encode(b"hook:s3cret").decode()


def test_sendgrid_tracking_webhook_bounce_marks_the_delivery_and_suppresses_the_address(anymail_secret, sendgrid_record):
    delivery = DeliveryFactory(provider_record=sendgrid_record, provider="sendgrid", provider_message_id="2f1c0d4e-anymail-id", recipient_address="gone@example.com")
    events = [{"email": "gone@example.com", "timestamp": 1767225600, "event": "bounce", "type": "bounce",
               "reason": "550 5.1.1 user unknown", "anymail_id": "2f1c0d4e-anymail-id", "sg_event_id": "e1"}]
    response = Client().post("/webhooks/anymail/sendgrid/tracking/", json.dumps(events), content_type="application/json",
                             HTTP_AUTHORIZATION=anymail_secret)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED and "user unknown" in delivery.error
    assert delivery.failed_at == datetime(2026, 1, 1, tzinfo=UTC)
    suppressed = SuppressedAddress.objects.get()
    assert (suppressed.address, suppressed.reason, suppressed.organization_id) == ("gone@example.com", SuppressionReason.HARD_BOUNCE, None)


def test_anymail_webhook_without_the_secret_changes_nothing(anymail_secret, sendgrid_record):
    delivery = DeliveryFactory(provider_record=sendgrid_record, provider="sendgrid", provider_message_id="id-x")
    events = [{"email": "a@example.com", "timestamp": 1767225600, "event": "delivered", "anymail_id": "id-x"}]
    response = Client().post("/webhooks/anymail/sendgrid/tracking/", json.dumps(events), content_type="application/json",
                             HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:wrong").decode())
    assert response.status_code in (400, 403)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_meta_whatsapp_status_webhook_checks_the_app_secret_signature(make_provider):
    record = make_provider("meta_whatsapp", config={"phone_number_id": "1055"}, secrets={"access_token": "EAAG", "app_secret": "meta-app-secret"})
    delivery = DeliveryFactory(provider_record=record, channel=Channel.WHATSAPP, provider="meta_whatsapp", provider_message_id="wamid.X1")
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [
        {"id": "wamid.X1", "status": "read", "timestamp": "1767225600", "recipient_id": "33612345678"}]}}]}]}).encode()
    forged = Client().post("/webhooks/meta/whatsapp/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64)
    assert forged.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    signature = hmac.new(b"meta-app-secret", body, hashlib.sha256).hexdigest()
    ok = Client().post("/webhooks/meta/whatsapp/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=f"sha256={signature}")
    assert ok.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.OPENED and delivery.opened_at and delivery.delivered_at


def test_status_apply_is_set_based_monotonic_and_suppresses_complaints(django_assert_max_num_queries):
    deliveries = [DeliveryFactory(provider="sendgrid") for _ in range(5)]
    now = datetime.now(UTC)
    events = [DeliveryEvent(d.provider_message_id, DeliveryEventType.CLICKED, now) for d in deliveries[:3]]
    events += [DeliveryEvent(deliveries[0].provider_message_id, DeliveryEventType.DELIVERED, now)]  # late, must not go backwards
    events += [DeliveryEvent(deliveries[4].provider_message_id, DeliveryEventType.COMPLAINED, now, recipient="Angry@Example.com")]
    events += [DeliveryEvent("unknown-id", DeliveryEventType.DELIVERED, now)]
    # lock, update, notifications refresh (lock + read + update), audit insert, suppression insert, savepoint
    with django_assert_max_num_queries(9):
        changed = delivery_status_apply(provider_code="sendgrid", events=events, provider_id=None, unbound_codes=("sendgrid",))
    assert changed == 4
    statuses = {d.pk: d.status for d in deliveries[0].__class__.objects.filter(pk__in=[d.pk for d in deliveries])}
    assert [statuses[d.pk] for d in deliveries] == [DeliveryStatus.CLICKED] * 3 + [DeliveryStatus.SENT, DeliveryStatus.COMPLAINED]
    complaint = SuppressedAddress.objects.get()
    assert complaint.reason == SuppressionReason.COMPLAINT and complaint.organization_id == deliveries[4].organization_id
    # the delivery's own address, never the one the event names
    assert complaint.address == deliveries[4].recipient_address.lower()
    assert NotificationAuditLog.objects.filter(action=AuditAction.DELIVERY_CLICKED).count() == 3
