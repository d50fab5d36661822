"""The EMAIL field group (seed 004 §4.4) from the event to the request SendGrid's loopback peer
receives: copies, reply-to, custom headers, attachments (base64 and by URL), tracking, and the
provider's own template."""
from __future__ import annotations

import base64

import pytest

from notifications.enums import Channel, DeliveryStatus
from notifications.models import ChannelConfiguration

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PDF = b"%PDF-1.4 a tiny report"


@pytest.fixture
def sendgrid(peer, make_provider):
    server = peer(latency=LATENCY).on("POST", "/v3/mail/send", Reply(202, b"", {"X-Message-Id": "sg-1"}))
    make_provider("sendgrid", config={"api_url": f"{server.url}/v3/", "from_email": "no-reply@troubadour.test"},
                  secrets={"api_key": "SG.payload-test-key"})
    return server


def test_every_email_option_of_the_event_reaches_sendgrid(sendgrid, peer, organization, user):
    files = peer().on("GET", "/report.pdf", Reply(200, PDF, {"Content-Type": "application/pdf"}))
    payload_event_type()
    options = {"EMAIL": {
        "cc": ["lead@example.com"], "bcc": ["audit@example.com"], "reply_to": "ops@example.com",
        "headers": {"X-Deploy-Id": "D-7"},
        "attachments": [{"filename": "notes.txt", "content_type": "text/plain",
                         "content_base64": base64.b64encode(b"release notes").decode()},
                        {"filename": "report.pdf", "content_type": "application/pdf", "url": f"{files.url}/report.pdf"}],
    }}
    deliveries = trigger(organization=organization, user=user, channels=[Channel.EMAIL], options=options)
    assert deliveries[Channel.EMAIL].status == DeliveryStatus.SENT, deliveries[Channel.EMAIL].error

    (call,) = sendgrid.calls("POST", "/v3/mail/send")
    body = call.json
    (personalization,) = body["personalizations"]
    assert personalization["to"] == [{"email": user.email}]
    assert personalization["cc"] == [{"email": "lead@example.com"}]
    assert personalization["bcc"] == [{"email": "audit@example.com"}]
    assert body["reply_to_list"] == [{"email": "ops@example.com"}]
    assert body["headers"]["X-Deploy-Id"] == "D-7"
    assert body["subject"] == "Deploy apollo-7"
    attachments = {a["filename"]: a for a in body["attachments"]}
    assert base64.b64decode(attachments["notes.txt"]["content"]) == b"release notes"
    assert attachments["report.pdf"]["type"] == "application/pdf"
    assert base64.b64decode(attachments["report.pdf"]["content"]) == PDF  # fetched by the platform, not by SendGrid
    # open and click tracking are on by default where the provider supports them
    assert body["tracking_settings"]["open_tracking"]["enable"] is True
    assert body["tracking_settings"]["click_tracking"]["enable"] is True
    assert "content_base64" not in str(deliveries[Channel.EMAIL].rendered)  # the payload is not stored twice


def test_tracking_follows_the_organization_then_the_template_then_the_event(sendgrid, organization, user):
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.EMAIL, settings={"track_clicks": False})
    payload_event_type(extra={Channel.EMAIL: {"track_opens": False}})
    trigger(organization=organization, user=user, channels=[Channel.EMAIL])
    tracking = sendgrid.calls()[-1].json["tracking_settings"]
    assert (tracking["open_tracking"]["enable"], tracking["click_tracking"]["enable"]) == (False, False)

    trigger(organization=organization, user=user, channels=[Channel.EMAIL], options={"EMAIL": {"track_opens": True}})
    tracking = sendgrid.calls()[-1].json["tracking_settings"]
    assert (tracking["open_tracking"]["enable"], tracking["click_tracking"]["enable"]) == (True, False)


def test_the_providers_own_template_gets_its_id_and_data(sendgrid, organization, user):
    payload_event_type()
    trigger(organization=organization, user=user, channels=[Channel.EMAIL],
            options={"EMAIL": {"template_id": "d-0123456789abcdef", "template_data": {"deploy": "apollo-7", "count": 3}}})
    body = sendgrid.calls()[-1].json
    assert body["template_id"] == "d-0123456789abcdef"
    assert body["personalizations"][0]["dynamic_template_data"] == {"deploy": "apollo-7", "count": 3}


def test_an_attachment_url_serving_another_type_fails_the_delivery_clearly(sendgrid, peer, organization, user):
    files = peer().on("GET", "/report.pdf", Reply(200, b"<html>login page</html>", {"Content-Type": "text/html"}))
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.EMAIL], options={"EMAIL": {"attachments": [
        {"filename": "report.pdf", "content_type": "application/pdf", "url": f"{files.url}/report.pdf"}]}})
    delivery = deliveries[Channel.EMAIL]
    assert delivery.status == DeliveryStatus.FAILED
    assert "served as 'text/html', not 'application/pdf'" in delivery.error
    assert sendgrid.calls() == []


def test_an_attachment_url_that_is_down_is_retried_later(sendgrid, peer, organization, user):
    files = peer().on("GET", "/report.pdf", Reply(503, b"busy"))
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.EMAIL], options={"EMAIL": {"attachments": [
        {"filename": "report.pdf", "content_type": "application/pdf", "url": f"{files.url}/report.pdf"}]}})
    delivery = deliveries[Channel.EMAIL]
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_retry_at is not None
    assert "HTTP 503" in delivery.error and sendgrid.calls() == []


def test_an_attachment_larger_than_the_limit_is_not_fetched_whole(sendgrid, peer, organization, user, settings):
    settings.EMAIL_ATTACHMENT_MAX_BYTES = 1000
    files = peer().on("GET", "/big.pdf", Reply(200, b"x" * 5000, {"Content-Type": "application/pdf"}))
    payload_event_type()
    deliveries = trigger(organization=organization, user=user, channels=[Channel.EMAIL], options={"EMAIL": {"attachments": [
        {"filename": "big.pdf", "content_type": "application/pdf", "url": f"{files.url}/big.pdf"}]}})
    assert deliveries[Channel.EMAIL].status == DeliveryStatus.FAILED
    assert "larger than 1000 bytes" in deliveries[Channel.EMAIL].error


def test_sealed_links_are_never_click_tracked(sendgrid, organization, user):
    """An invitation's link is sealed in the event data: it must not go through the ESP's
    click redirector, whatever the tracking settings say (opens are still tracked)."""
    from common.sealing import organization_scope, value_seal

    payload_event_type()
    link = value_seal("https://troubadour.test/i/secret-token/", scope=organization_scope(organization.pk))
    trigger(organization=organization, user=user, channels=[Channel.EMAIL], data={"inviteUrl": link},
            options={"EMAIL": {"track_clicks": True}})
    tracking = sendgrid.calls()[-1].json["tracking_settings"]
    assert (tracking["open_tracking"]["enable"], tracking["click_tracking"]["enable"]) == (True, False)
