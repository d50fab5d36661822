"""A WhatsApp "STOP" to an organization's sender suppresses the number on WhatsApp for that
organization, as an SMS STOP does for SMS: through Twilio's signed inbound webhook and Meta's
signed webhook, from the POST to the request the provider's loopback peer does (not) receive.
Another organization still reaches the number; START lifts it; a replayed STOP does nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from accounts.models import MembershipRole
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification
from providers.models import SuppressedAddress
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CUSTOMER = "+33612345678"
TWILIO = {"A": ("AC" + "a" * 32, "tw-token-a", "+14155550111"), "B": ("AC" + "b" * 32, "tw-token-b", "+14155550122")}
META = {"A": ("1055", "meta-secret-a"), "B": ("2066", "meta-secret-b")}


@pytest.fixture
def other(organization):
    """A second organization with its own member at the same phone number."""
    org = OrganizationFactory(name="Other")
    member = UserFactory(phone=CUSTOMER)
    MembershipFactory(user=member, organization=org, role=MembershipRole.OWNER)
    return org, member


@pytest.fixture
def customer(user):
    user.phone = CUSTOMER
    user.save(update_fields=["phone"])
    return user


def _send(organization, user):
    delivery = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP]).get(Channel.WHATSAPP)
    notification = Notification.objects.filter(recipient=user, organization=organization).order_by("-pk").first()
    return delivery, notification.trace[Channel.WHATSAPP]


def _assert_suppressed(organization, user, peer, path: str) -> None:
    before = len(peer.calls("POST", path))
    delivery, trace = _send(organization, user)
    assert delivery is None or delivery.status == DeliveryStatus.SKIPPED
    assert trace["reason"] == "suppressed" and "suppression list for WHATSAPP (unsubscribe)" in trace["detail"], trace
    assert len(peer.calls("POST", path)) == before  # no provider call


def _assert_sent(organization, user, peer, path: str) -> None:
    before = len(peer.calls("POST", path))
    delivery, trace = _send(organization, user)
    assert delivery.status == DeliveryStatus.SENT, (delivery.error, trace)
    assert len(peer.calls("POST", path)) == before + 1


# --- Twilio --------------------------------------------------------------------------------------


@pytest.fixture
def twilio(peer, make_provider, organization, other):
    server = peer(latency=LATENCY)
    for key, org in (("A", organization), ("B", other[0])):
        sid, token, sender = TWILIO[key]
        server.on("POST", rf"/2010-04-01/Accounts/{sid}/Messages\.json", lambda req: Reply(201, {
            "sid": f"SM{len(server.calls()):032d}", "status": "queued", "price": None, "price_unit": "USD"}))
        make_provider("twilio_whatsapp", organization=org, config={"base_url": server.url, "from_number": sender,
                                                                   "templates": {"deploy_done": "HX" + "d" * 32}},
                      secrets={"account_sid": sid, "auth_token": token})
    payload_event_type(extra={Channel.WHATSAPP: {"template_name": "deploy_done", "body_parameters": ["{{ deploy.name }}"]}})
    return server


def _twilio_inbound(*, body: str, message_sid: str, key: str = "A", token: str | None = None) -> int:
    sid, own_token, sender = TWILIO[key]
    params = {"MessageSid": message_sid, "SmsSid": message_sid, "AccountSid": sid, "From": f"whatsapp:{CUSTOMER}",
              "To": f"whatsapp:{sender}", "Body": body, "NumMedia": "0", "WaId": CUSTOMER.lstrip("+")}
    url = "https://troubadour.test/webhooks/twilio/whatsapp/inbound/"
    signature = RequestValidator(token or own_token).compute_signature(url, params)
    return Client().post("/webhooks/twilio/whatsapp/inbound/", params, HTTP_X_TWILIO_SIGNATURE=signature).status_code


def test_a_twilio_whatsapp_stop_silences_the_number_for_the_senders_organization_only(twilio, organization, customer, other):
    path_a, path_b = (rf"/2010-04-01/Accounts/{TWILIO[k][0]}/Messages\.json" for k in "AB")
    _assert_sent(organization, customer, twilio, path_a)

    # signed with the other organization's token: refused, nothing suppressed
    assert _twilio_inbound(body="STOP", message_sid="SM" + "0" * 32, token=TWILIO["B"][1]) == 403
    assert not SuppressedAddress.objects.exists()

    assert _twilio_inbound(body="Stop.", message_sid="SM" + "1" * 32) == 200
    assert list(SuppressedAddress.objects.values_list("organization_id", "address", "channel")) == [
        (organization.pk, CUSTOMER, Channel.WHATSAPP)]
    _assert_suppressed(organization, customer, twilio, path_a)
    _assert_sent(other[0], other[1], twilio, path_b)  # another organization still reaches the number

    assert _twilio_inbound(body="START", message_sid="SM" + "2" * 32) == 200
    assert not SuppressedAddress.objects.exists()
    assert _twilio_inbound(body="Stop.", message_sid="SM" + "1" * 32) == 200  # the STOP replayed: nothing
    assert not SuppressedAddress.objects.exists()
    _assert_sent(organization, customer, twilio, path_a)


# --- Meta ----------------------------------------------------------------------------------------


@pytest.fixture
def graph(peer, make_provider, organization, other):
    server = peer(latency=LATENCY)
    for key, org in (("A", organization), ("B", other[0])):
        number_id, secret = META[key]
        server.on("POST", f"/v21.0/{number_id}/messages", lambda req: Reply(200, {
            "messaging_product": "whatsapp", "contacts": [{"input": req.json["to"], "wa_id": req.json["to"]}],
            "messages": [{"id": f"wamid.{len(server.calls())}"}]}))
        make_provider("meta_whatsapp", organization=org, config={"base_url": server.url, "phone_number_id": number_id},
                      secrets={"access_token": f"EAAG-{key}", "app_secret": secret})
    payload_event_type(extra={Channel.WHATSAPP: {"template_name": "deploy_done", "body_parameters": ["{{ deploy.name }}"]}})
    return server


def _meta_inbound(*, text: str, message_id: str, key: str = "A", secret: str | None = None) -> int:
    number_id, own_secret = META[key]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "14155550199", "phone_number_id": number_id},
        "contacts": [{"profile": {"name": "Ada"}, "wa_id": CUSTOMER.lstrip("+")}],
        "messages": [{"from": CUSTOMER.lstrip("+"), "id": message_id, "timestamp": str(int(time.time()) - 5), "type": "text",
                      "text": {"body": text}}]}}]}]}).encode()
    signature = hmac.new((secret or own_secret).encode(), body, hashlib.sha256).hexdigest()
    return Client().post("/webhooks/meta/whatsapp/", body, content_type="application/json",
                         HTTP_X_HUB_SIGNATURE_256=f"sha256={signature}").status_code


def test_a_meta_whatsapp_stop_silences_the_number_for_the_senders_organization_only(graph, organization, customer, other):
    path_a, path_b = (f"/v21.0/{META[k][0]}/messages" for k in "AB")
    _assert_sent(organization, customer, graph, path_a)

    # the other organization's secret signing a STOP to our number: refused, nothing suppressed
    assert _meta_inbound(text="STOP", message_id="wamid.forged", secret=META["B"][1]) == 403
    assert not SuppressedAddress.objects.exists()

    assert _meta_inbound(text="unsubscribe", message_id="wamid.stop") == 200
    assert list(SuppressedAddress.objects.values_list("organization_id", "address", "channel")) == [
        (organization.pk, CUSTOMER, Channel.WHATSAPP)]
    _assert_suppressed(organization, customer, graph, path_a)
    _assert_sent(other[0], other[1], graph, path_b)  # another organization still reaches the number

    assert _meta_inbound(text="UNSTOP", message_id="wamid.start") == 200
    assert not SuppressedAddress.objects.exists()
    assert _meta_inbound(text="unsubscribe", message_id="wamid.stop") == 200  # the STOP replayed: nothing
    assert not SuppressedAddress.objects.exists()
    _assert_sent(organization, customer, graph, path_a)
    assert _meta_inbound(text="hello", message_id="wamid.hello") == 200  # not a keyword
    assert not SuppressedAddress.objects.exists()
