"""After a send: polling asks the account that sent (now that deliveries name their provider
record), and a delivery no report ever came for says why in its trace instead of staying SENT
without a word."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from notifications.engine.provider_events import deliveries_unconfirmed_note, delivery_statuses_poll
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from tests.providers.factories import DeliveryFactory
from tests.providers.peers import HttpPeer, Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"


@pytest.fixture
def plivo(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    peer = HttpPeer().start()
    yield peer
    peer.stop()


def test_polling_asks_the_record_that_sent_and_applies_its_answer(plivo, organization):
    from providers.services import provider_create

    record = provider_create(organization_id=organization.pk, code="plivo_sms", name="Ours",
                             config={"base_url": plivo.url, "from_number": "+14155550122"},
                             secrets={"auth_id": PLIVO_ID, "auth_token": "plivo-token-0000"})
    plivo.on("GET", rf"/v1/Account/{PLIVO_ID}/Message/pl-1/", Reply(200, {"message_state": "delivered", "total_amount": "0.0065"}))
    row = DeliveryFactory(organization=organization, notification__organization=organization, channel=Channel.SMS,
                          provider="plivo_sms", provider_record=record, provider_message_id="pl-1", sent_at=timezone.now(),
                          recipient_address="+14155550100")

    assert delivery_statuses_poll() == 1
    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED and row.cost_amount == Decimal("0.0065")
    (call,) = plivo.calls("GET")
    assert call.header("Authorization").startswith("Basic ")  # the record's own credentials


def test_deliveries_left_sent_get_the_reason_in_their_trace(organization):
    old = timezone.now() - timedelta(hours=60)
    polled = DeliveryFactory(provider="plivo_sms", sent_at=old, provider_response={"selection": "chose plivo_sms: x"})
    silent = DeliveryFactory(provider="django_email", sent_at=old, provider_response=None)
    fresh = DeliveryFactory(provider="plivo_sms", sent_at=timezone.now())
    done = DeliveryFactory(provider="plivo_sms", sent_at=old, status=DeliveryStatus.DELIVERED)

    assert deliveries_unconfirmed_note() == 2
    assert deliveries_unconfirmed_note() == 0  # noted once

    rows = NotificationDelivery.objects.in_bulk([polled.pk, silent.pk, fresh.pk, done.pk])
    assert rows[polled.pk].provider_response == {
        "selection": "chose plivo_sms: x",
        "status_note": "No delivery report from plivo_sms within 48 h (it answers to polling); SENT (handed over) is the last status known."}
    assert rows[silent.pk].provider_response["status_note"] == (
        "django_email reports no delivery status: SENT (handed over) is the last one known.")
    assert rows[fresh.pk].provider_response is None and rows[done.pk].provider_response is None
    assert rows[polled.pk].status == DeliveryStatus.SENT
