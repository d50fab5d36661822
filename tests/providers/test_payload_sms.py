"""The SMS field group (seed 004 §4.6) from the event to Twilio's loopback peer: the sender per
organization (or per event), unicode, and max_segments refused at send and at preview."""
from __future__ import annotations

import pytest

from notifications.enums import Channel, DeliveryStatus
from notifications.models import ChannelConfiguration

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply
from .test_sms import MESSAGES, SID, twilio_message

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def twilio(peer, make_provider, user):
    user.phone = "+14155550100"
    user.save(update_fields=["phone"])
    server = peer(latency=LATENCY).on("POST", MESSAGES, lambda req: Reply(201, twilio_message(req.form, segments="1")))
    make_provider("twilio_sms", config={"base_url": server.url, "from_number": "+14155550111"},
                  secrets={"account_sid": SID, "auth_token": "tw-secret-token"})
    return server


def test_the_organizations_sender_id_then_the_events_reaches_twilio(twilio, organization, user):
    payload_event_type()
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.SMS, settings={"from": "ACME"})
    deliveries = trigger(organization=organization, user=user, channels=[Channel.SMS])
    assert deliveries[Channel.SMS].status == DeliveryStatus.SENT, deliveries[Channel.SMS].error
    form = twilio.calls()[-1].form
    assert form["From"] == ["ACME"] and form["Body"] == ["Deploy apollo-7 finished."] and form["To"] == ["+14155550100"]

    trigger(organization=organization, user=user, channels=[Channel.SMS], options={"SMS": {"from": "+14155550999"}})
    assert twilio.calls()[-1].form["From"] == ["+14155550999"]


def test_unicode_false_asks_twilio_for_gsm_look_alikes(twilio, organization, user):
    payload_event_type()
    trigger(organization=organization, user=user, channels=[Channel.SMS], data={"deployName": "“apollo”"},
            options={"SMS": {"unicode": False}})
    assert twilio.calls()[-1].form["SmartEncoded"] == ["true"]


def test_max_segments_of_the_template_refuses_the_send_with_a_clear_error(twilio, organization, user):
    payload_event_type(extra={Channel.SMS: {"max_segments": 1}})
    deliveries = trigger(organization=organization, user=user, channels=[Channel.SMS], data={"deployName": "x" * 200})
    delivery = deliveries[Channel.SMS]
    assert delivery.status == DeliveryStatus.FAILED
    assert "needs 2 segments" in delivery.error and "max_segments is 1" in delivery.error
    assert twilio.calls() == []  # nothing was sent

    # the event may allow more for itself
    deliveries = trigger(organization=organization, user=user, channels=[Channel.SMS], data={"deployName": "x" * 200},
                         options={"SMS": {"max_segments": 2}})
    assert deliveries[Channel.SMS].status == DeliveryStatus.SENT and len(twilio.calls()) == 1


def test_max_segments_refuses_the_preview_too(auth_client, organization, user):
    from rest_framework.test import APIClient

    template = payload_event_type(extra={Channel.SMS: {"max_segments": 1}})
    staff = APIClient()
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    staff.force_authenticate(user)
    url = f"/api/v1/admin/templates/{template.pk}/preview/"
    response = staff.post(url, {"channel": "SMS", "variables": {"deploy.name": "x" * 200}}, format="json")
    assert response.status_code == 400
    assert "max_segments is 1" in str(response.json())
    assert staff.post(url, {"channel": "SMS", "variables": {"deploy.name": "short"}}, format="json").status_code == 200
