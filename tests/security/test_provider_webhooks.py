"""Provider callbacks as a hostile tenant and as an anonymous caller would send them, over
real HTTP against the running server: a callback changes only what the provider account
that authenticated it sent, and nothing at all when no active provider uses the ESP.

Signatures are computed the way each provider computes them: Twilio's own RequestValidator,
HTTP basic auth as anymail checks it, SendGrid's ECDSA event-webhook signature, Mailgun's
HMAC, Meta's X-Hub-Signature-256 (HMAC-SHA256 of the body with the app secret)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone
from twilio.request_validator import RequestValidator

from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationDelivery
from providers.models import SuppressedAddress, SuppressionReason
from providers.selectors import suppression_check
from providers.services import provider_create
from tests.factories import OrganizationFactory, UserFactory
from tests.providers.factories import DeliveryFactory, NotificationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailWarning")]

VICTIM_SID, VICTIM_TOKEN = "AC" + "a" * 32, "victim-twilio-token"
ATTACKER_TOKEN = "attacker-chosen-token"
PHONE = "+14155550100"


@pytest.fixture(autouse=True)
def _platform(settings, live_server):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.SITE_URL = live_server.url
    # Nothing from the environment: each test says what the platform configured.
    settings.ANYMAIL = {"MAILGUN_API_KEY": ""}


@pytest.fixture
def orgs(transactional_db):
    return OrganizationFactory(name="Victim"), OrganizationFactory(name="Attacker")


def _record(organization, code, *, secrets=None, config=None):
    return provider_create(organization_id=organization.pk if organization else None, code=code, name=f"{code} of {organization}",
                           secrets=secrets or {}, config=config or {})


def _delivery(record, *, channel=Channel.EMAIL, message_id, address, **notification_fields):
    notification = NotificationFactory(organization=record.organization or OrganizationFactory(), recipient=UserFactory(),
                                       title="Database primary is down", **notification_fields)
    return DeliveryFactory(notification=notification, organization=notification.organization, channel=channel, provider=record.code,
                           provider_record=record, provider_message_id=message_id, recipient_address=address)


def _row(delivery) -> dict:
    return NotificationDelivery.objects.filter(pk=delivery.pk).values().get()


def _basic(credentials: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def _postmark_bounce(message_id: str, email: str) -> str:
    return json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "MessageID": message_id, "Email": email, "ID": 7,
                       "BouncedAt": "2026-01-01T00:00:00Z", "Description": "user unknown"})


# --- which email tracking URLs exist ---------------------------------------------------------------


def test_no_tracking_url_answers_for_an_esp_no_active_provider_uses(live_server, orgs):
    victim, _ = orgs
    # The victim's organization sends through its own Postmark account; the platform has no
    # Postmark record, and nobody uses SendGrid, Mandrill or any inbound route.
    postmark = _record(victim, "postmark", secrets={"server_token": "pm", "webhook_secret": "victim:hook"})
    delivery = _delivery(postmark, message_id="pm-victim-1", address="ceo@victim.example")
    before = _row(delivery)
    body = _postmark_bounce("pm-victim-1", "ceo@victim.example")
    for path in ("/webhooks/anymail/postmark/tracking/", "/webhooks/anymail/sendgrid/tracking/", "/webhooks/anymail/mandrill/tracking/",
                 "/webhooks/anymail/postmark/inbound/", "/webhooks/anymail/sendgrid/inbound/", "/webhooks/anymail/mailgun/inbound_mime/",
                 "/webhooks/anymail/amazon_ses/inbound/", "/webhooks/anymail/brevo/tracking/", "/webhooks/anymail/postal/tracking/"):
        response = requests.post(live_server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert response.status_code == 404, path
    # a record of another code, an inactive record, an unknown record: 404 as well
    postmark_url = f"{live_server.url}/webhooks/anymail/postmark/tracking/{postmark.pk}/"
    assert requests.post(f"{live_server.url}/webhooks/anymail/sendgrid/tracking/{postmark.pk}/", data=body, timeout=10).status_code == 404
    assert requests.post(f"{live_server.url}/webhooks/anymail/postmark/tracking/999999/", data=body, timeout=10).status_code == 404
    type(postmark).objects.filter(pk=postmark.pk).update(is_active=False)
    assert requests.post(postmark_url, data=body, headers=_basic("victim:hook"), timeout=10).status_code == 404
    assert _row(delivery) == before and not SuppressedAddress.objects.exists()


def test_the_platform_url_refuses_what_the_platform_secret_did_not_sign(live_server, orgs, settings):
    _record(None, "postmark", secrets={"server_token": "pm"})
    delivery = _delivery(_record(orgs[0], "postmark", secrets={"server_token": "pm-victim"}), message_id="pm-v", address="a@victim.example")
    url = f"{live_server.url}/webhooks/anymail/postmark/tracking/"
    body = _postmark_bounce("pm-v", "a@victim.example")
    # no secret configured: refused, not accepted with a warning
    assert requests.post(url, data=body, timeout=10).status_code == 403
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "platform:hook"}
    assert requests.post(url, data=body, headers=_basic("platform:guess"), timeout=10).status_code == 403
    # even signed with the platform's secret, the platform's URL cannot reach a delivery an
    # organization's own account sent
    assert requests.post(url, data=body, headers=_basic("platform:hook"), timeout=10).status_code == 200
    assert _row(delivery)["status"] == DeliveryStatus.SENT and not SuppressedAddress.objects.exists()


# --- an organization's own ESP account cannot reach another's deliveries ---------------------------


def test_a_tenant_cannot_bounce_another_tenants_email_through_its_own_postmark_account(live_server, orgs):
    victim, attacker = orgs
    victim_pm = _record(victim, "postmark", secrets={"server_token": "pm-v", "webhook_secret": "victim:hook"})
    attacker_pm = _record(attacker, "postmark", secrets={"server_token": "pm-a", "webhook_secret": "attacker:hook"})
    delivery = _delivery(victim_pm, message_id="pm-shared-id", address="ceo@victim.example")
    before = _row(delivery)
    body = _postmark_bounce("pm-shared-id", "ceo@victim.example")

    own_url = f"{live_server.url}/webhooks/anymail/postmark/tracking/{attacker_pm.pk}/"
    victim_url = f"{live_server.url}/webhooks/anymail/postmark/tracking/{victim_pm.pk}/"
    assert requests.post(own_url, data=body, headers=_basic("attacker:hook"), timeout=10).status_code == 200  # accepted, matches nothing
    assert requests.post(victim_url, data=body, headers=_basic("attacker:hook"), timeout=10).status_code == 403
    assert requests.post(victim_url, data=body, timeout=10).status_code == 403
    assert _row(delivery) == before and not SuppressedAddress.objects.exists()
    assert suppression_check(addresses=["ceo@victim.example"], channel=Channel.EMAIL, organization_id=victim.pk) == {}

    # the victim's own account still works
    assert requests.post(victim_url, data=body, headers=_basic("victim:hook"), timeout=10).status_code == 200
    assert _row(delivery)["status"] == DeliveryStatus.BOUNCED


def test_sendgrid_and_mailgun_signatures_of_one_account_do_not_reach_another(live_server, orgs):
    victim, attacker = orgs
    victim_key, attacker_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def public(key) -> str:
        return base64.b64encode(key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

    victim_sg = _record(victim, "sendgrid", secrets={"api_key": "SG.v"}, config={"webhook_verification_key": public(victim_key)})
    attacker_sg = _record(attacker, "sendgrid", secrets={"api_key": "SG.a"}, config={"webhook_verification_key": public(attacker_key)})
    sg_delivery = _delivery(victim_sg, message_id="sg-victim-1", address="ceo@victim.example")
    body = json.dumps([{"email": "ceo@victim.example", "timestamp": 1767225600, "event": "bounce", "type": "bounce",
                        "reason": "550 user unknown", "anymail_id": "sg-victim-1", "sg_event_id": "e1"}]).encode()

    def sendgrid_post(record, key) -> int:
        signature = base64.b64encode(key.sign(b"1767225600" + body, ec.ECDSA(hashes.SHA256()))).decode()
        headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": signature,
                   "X-Twilio-Email-Event-Webhook-Timestamp": "1767225600"}
        return requests.post(f"{live_server.url}/webhooks/anymail/sendgrid/tracking/{record.pk}/", data=body, headers=headers, timeout=10).status_code

    victim_mg = _record(victim, "mailgun", secrets={"api_key": "key-v", "webhook_signing_key": "victim-signing"})
    attacker_mg = _record(attacker, "mailgun", secrets={"api_key": "key-a", "webhook_signing_key": "attacker-signing"})
    mg_delivery = _delivery(victim_mg, message_id="<mg-victim-1@mg.example>", address="cfo@victim.example")

    def mailgun_post(record, signing_key: str) -> int:
        signature = hmac.new(signing_key.encode(), b"1767225600tok-1", hashlib.sha256).hexdigest()
        payload = {"signature": {"timestamp": "1767225600", "token": "tok-1", "signature": signature},
                   "event-data": {"event": "failed", "severity": "permanent", "reason": "bounce", "recipient": "cfo@victim.example",
                                  "timestamp": 1767225600.0, "id": "ev-1", "message": {"headers": {"message-id": "mg-victim-1@mg.example"}},
                                  "delivery-status": {"code": 550, "message": "5.1.1 user unknown", "description": ""}}}
        return requests.post(f"{live_server.url}/webhooks/anymail/mailgun/tracking/{record.pk}/", json=payload, timeout=10).status_code

    before = (_row(sg_delivery), _row(mg_delivery))
    assert sendgrid_post(attacker_sg, attacker_key) == 200 and mailgun_post(attacker_mg, "attacker-signing") == 200  # their own URLs
    assert sendgrid_post(victim_sg, attacker_key) == 403 and mailgun_post(victim_mg, "attacker-signing") == 403
    assert mailgun_post(victim_mg, "") == 403  # an empty key signs nothing
    assert (_row(sg_delivery), _row(mg_delivery)) == before and not SuppressedAddress.objects.exists()

    assert sendgrid_post(victim_sg, victim_key) == 200 and mailgun_post(victim_mg, "victim-signing") == 200
    assert _row(sg_delivery)["status"] == _row(mg_delivery)["status"] == DeliveryStatus.BOUNCED


# --- suppression scope and address ----------------------------------------------------------------


def test_a_bounce_suppresses_the_deliverys_own_address_for_the_sending_organization_only(live_server, orgs, settings):
    victim, attacker = orgs
    attacker_pm = _record(attacker, "postmark", secrets={"server_token": "pm-a", "webhook_secret": "attacker:hook"})
    own = _delivery(attacker_pm, message_id="pm-own", address="someone@attacker.example")
    # A genuine bounce of the attacker's own message that names the victim's CEO as the bounced address.
    body = _postmark_bounce("pm-own", "ceo@victim.example")
    url = f"{live_server.url}/webhooks/anymail/postmark/tracking/{attacker_pm.pk}/"
    assert requests.post(url, data=body, headers=_basic("attacker:hook"), timeout=10).status_code == 200
    assert _row(own)["status"] == DeliveryStatus.BOUNCED
    rows = list(SuppressedAddress.objects.values_list("address", "organization_id", "reason"))
    assert rows == [("someone@attacker.example", attacker.pk, SuppressionReason.HARD_BOUNCE)]
    for address in ("ceo@victim.example", "someone@attacker.example"):
        assert suppression_check(addresses=[address], channel=Channel.EMAIL, organization_id=victim.pk) == {}

    # the platform's own provider may suppress for everyone
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "platform:hook"}
    platform_pm = _record(None, "postmark", secrets={"server_token": "pm-p"})
    sent = _delivery(platform_pm, message_id="pm-platform", address="Dead@Mailbox.example")
    response = requests.post(f"{live_server.url}/webhooks/anymail/postmark/tracking/", data=_postmark_bounce("pm-platform", "x@elsewhere.example"),
                             headers=_basic("platform:hook"), timeout=10)
    assert response.status_code == 200 and _row(sent)["status"] == DeliveryStatus.BOUNCED
    assert suppression_check(addresses=["dead@mailbox.example"], channel=Channel.EMAIL, organization_id=victim.pk) == {
        "dead@mailbox.example": SuppressionReason.HARD_BOUNCE}
    assert not SuppressedAddress.objects.filter(address="x@elsewhere.example").exists()


# --- Twilio ----------------------------------------------------------------------------------------


def _twilio_post(live_server, path: str, params: dict, token: str) -> requests.Response:
    url = live_server.url + path
    signature = RequestValidator(token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)


@pytest.fixture
def twilio(orgs):
    victim, attacker = orgs
    victim_record = _record(victim, "twilio_sms", secrets={"account_sid": VICTIM_SID, "auth_token": VICTIM_TOKEN},
                            config={"from_number": "+14155550111"})
    # An organization admin may type any account SID and any token into their own record.
    attacker_record = _record(attacker, "twilio_sms", secrets={"account_sid": VICTIM_SID, "auth_token": ATTACKER_TOKEN},
                              config={"from_number": "+14155550111"})
    return victim_record, attacker_record


def test_twilio_status_callbacks_are_checked_with_the_sending_accounts_token(live_server, twilio):
    victim_record, attacker_record = twilio
    sid = "SM" + "1" * 32
    victim_delivery = _delivery(victim_record, channel=Channel.SMS, message_id=sid, address=PHONE)
    # The attacker even has a delivery of its own with the same message id (its record can
    # point at any API and get any id back).
    attacker_delivery = _delivery(attacker_record, channel=Channel.SMS, message_id=sid, address="+14155550199")
    before = _row(victim_delivery)
    failed = {"AccountSid": VICTIM_SID, "MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30005", "To": PHONE}

    assert _twilio_post(live_server, "/webhooks/twilio/status/", failed, ATTACKER_TOKEN).status_code == 204
    assert _row(victim_delivery) == before  # only the attacker's own delivery moved
    assert _row(attacker_delivery)["status"] == DeliveryStatus.FAILED

    # the victim's token, but AccountSid missing or someone else's: refused
    no_account = {k: v for k, v in failed.items() if k != "AccountSid"}
    assert _twilio_post(live_server, "/webhooks/twilio/status/", no_account, VICTIM_TOKEN).status_code == 403
    assert _twilio_post(live_server, "/webhooks/twilio/status/", {**failed, "AccountSid": "AC" + "b" * 32}, VICTIM_TOKEN).status_code == 403
    assert _row(victim_delivery) == before

    delivered = {**failed, "MessageStatus": "delivered", "ErrorCode": ""}
    assert _twilio_post(live_server, "/webhooks/twilio/status/", delivered, VICTIM_TOKEN).status_code == 204
    assert _row(victim_delivery)["status"] == DeliveryStatus.DELIVERED


def test_an_sms_ack_signed_by_another_tenant_does_not_stop_the_victims_escalation(live_server, twilio):
    victim_record, attacker_record = twilio
    escalate_at = timezone.now() + timedelta(minutes=5)
    page = _delivery(victim_record, channel=Channel.SMS, message_id="SM" + "2" * 32, address=PHONE, next_escalation_at=escalate_at)
    ack = {"AccountSid": VICTIM_SID, "From": PHONE, "To": "+14155550111", "Body": "ACK", "MessageSid": "SM" + "3" * 32}

    # nothing of the attacker's went to that phone: its token verifies nothing
    assert _twilio_post(live_server, "/webhooks/twilio/sms/inbound/", ack, ATTACKER_TOKEN).status_code == 403
    # once it has texted the phone too, its ACK acknowledges its own notification only
    own = _delivery(attacker_record, channel=Channel.SMS, message_id="SM" + "4" * 32, address=PHONE)
    response = _twilio_post(live_server, "/webhooks/twilio/sms/inbound/", ack, ATTACKER_TOKEN)
    assert response.status_code == 200 and "Database primary" not in response.text
    victim = Notification.objects.get(pk=page.notification_id)
    assert victim.acknowledged_at is None and victim.next_escalation_at == escalate_at
    assert Notification.objects.get(pk=own.notification_id).acknowledged_at is not None

    # the victim's own account acknowledges, and the answer does not echo the title
    response = _twilio_post(live_server, "/webhooks/twilio/sms/inbound/", ack, VICTIM_TOKEN)
    assert response.status_code == 200 and "Acknowledged" in response.text and "Database primary" not in response.text
    victim.refresh_from_db()
    assert victim.acknowledged_at is not None and victim.next_escalation_at is None


def test_a_voice_gather_signed_by_another_tenant_acknowledges_nothing(live_server, orgs):
    victim, attacker = orgs
    voice = _record(victim, "twilio_voice", secrets={"account_sid": VICTIM_SID, "auth_token": VICTIM_TOKEN}, config={"from_number": "+14155550111"})
    _record(attacker, "twilio_voice", secrets={"account_sid": VICTIM_SID, "auth_token": ATTACKER_TOKEN}, config={"from_number": "+14155550111"})
    call = _delivery(voice, channel=Channel.VOICE, message_id="CA" + "1" * 32, address=PHONE)
    params = {"AccountSid": VICTIM_SID, "CallSid": "CA" + "1" * 32, "Digits": "1"}

    assert _twilio_post(live_server, "/webhooks/twilio/voice/gather/", params, ATTACKER_TOKEN).status_code == 403
    assert Notification.objects.get(pk=call.notification_id).acknowledged_at is None
    assert _twilio_post(live_server, "/webhooks/twilio/voice/gather/", {**params, "AccountSid": ""}, VICTIM_TOKEN).status_code == 403
    assert Notification.objects.get(pk=call.notification_id).acknowledged_at is None

    response = _twilio_post(live_server, "/webhooks/twilio/voice/gather/", params, VICTIM_TOKEN)
    assert response.status_code == 200 and "Acknowledged" in response.text and "Database primary" not in response.text
    assert Notification.objects.get(pk=call.notification_id).acknowledged_at is not None


# --- Meta WhatsApp ---------------------------------------------------------------------------------


def test_meta_status_signed_with_another_tenants_app_secret_is_refused(live_server, orgs):
    victim, attacker = orgs
    victim_meta = _record(victim, "meta_whatsapp", secrets={"access_token": "EAAv", "app_secret": "victim-app-secret"}, config={"phone_number_id": "1055"})
    _record(attacker, "meta_whatsapp", secrets={"access_token": "EAAa", "app_secret": "attacker-app-secret"}, config={"phone_number_id": "2077"})
    delivery = _delivery(victim_meta, channel=Channel.WHATSAPP, message_id="wamid.V1", address=PHONE)
    before = _row(delivery)
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "metadata": {"phone_number_id": "1055"},
        "statuses": [{"id": "wamid.V1", "status": "failed", "timestamp": "1767225600", "recipient_id": "14155550100",
                      "errors": [{"code": 131026}]}]}}]}]}).encode()

    def post(secret: str) -> int:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return requests.post(f"{live_server.url}/webhooks/meta/whatsapp/", data=body,
                             headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}, timeout=10).status_code

    assert post("attacker-app-secret") == 403
    assert _row(delivery) == before
    assert post("victim-app-secret") == 200
    assert _row(delivery)["status"] == DeliveryStatus.FAILED


def test_a_tenants_meta_signature_opens_no_window_on_another_tenants_number(live_server, orgs):
    """A webhook signed with the attacker's app secret that also names the victim's business
    number opens the 24-hour window only for the attacker's own number."""
    import time

    from providers.whatsapp.window import window_open

    victim, attacker = orgs
    _record(victim, "meta_whatsapp", secrets={"access_token": "EAAv", "app_secret": "victim-app-secret"}, config={"phone_number_id": "1055"})
    _record(attacker, "meta_whatsapp", secrets={"access_token": "EAAa", "app_secret": "attacker-app-secret"}, config={"phone_number_id": "2077"})
    now = str(int(time.time()))

    def change(number_id: str, customer: str) -> dict:
        return {"value": {"metadata": {"phone_number_id": number_id},
                          "messages": [{"id": f"wamid.in-{number_id}-{customer}", "from": customer, "timestamp": now,
                                        "type": "text", "text": {"body": "hello"}}]}}

    body = json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"changes": [change("2077", "14155550111"), change("1055", "14155550122")]}]}).encode()
    signature = "sha256=" + hmac.new(b"attacker-app-secret", body, hashlib.sha256).hexdigest()
    answer = requests.post(f"{live_server.url}/webhooks/meta/whatsapp/", data=body,
                           headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}, timeout=10)
    assert answer.status_code == 200
    assert window_open(business_number_id="2077", customer="14155550111")
    assert not window_open(business_number_id="1055", customer="14155550122")


# --- in-app message ids ----------------------------------------------------------------------------


def test_in_app_message_ids_are_not_guessable(orgs):
    from notifications.engine.delivery import deliver_batch
    from tests.notifications.test_delivery_support import event_type_with_template, notification_with_deliveries

    event_type_with_template()
    ids = []
    for _ in range(2):
        notification, deliveries = notification_with_deliveries(organization=orgs[0], recipient=UserFactory())
        deliver_batch(delivery_ids=[d.pk for d in deliveries])
        delivery = NotificationDelivery.objects.get(pk=deliveries[0].pk)
        assert delivery.status == DeliveryStatus.SENT  # on the in-app bus; the client's ack makes it DELIVERED
        ids.append((notification.pk, delivery.provider_message_id))
    for pk, message_id in ids:
        random_part = message_id.removeprefix("inapp-")
        assert message_id.startswith("inapp-") and len(random_part) == 32 and int(random_part, 16) != pk
        assert message_id != f"notification:{pk}"
    assert ids[0][1] != ids[1][1]


# --- status polling ---------------------------------------------------------------------------------


def test_a_status_poll_answered_by_one_tenants_api_changes_only_that_tenants_deliveries(orgs, settings):
    from notifications import tasks

    settings.OUTBOUND_ALLOW_LOOPBACK = True  # the tenants' APIs are loopback peers
    from tests.providers.peers import HttpPeer, Reply

    victim, attacker = orgs
    sid = "SM" + "7" * 32
    peers = [HttpPeer().start(), HttpPeer().start()]
    try:
        victim_api, attacker_api = peers
        for api, status in ((victim_api, "sent"), (attacker_api, "undelivered")):
            api.on("GET", rf"/2010-04-01/Accounts/{VICTIM_SID}/Messages/{sid}\.json", Reply(200, {
                "sid": sid, "account_sid": VICTIM_SID, "status": status, "price": None, "price_unit": "USD", "error_code": None,
                "date_updated": "Thu, 01 Jan 2026 00:05:00 +0000"}))
        victim_record = _record(victim, "twilio_sms", secrets={"account_sid": VICTIM_SID, "auth_token": VICTIM_TOKEN},
                                config={"from_number": "+14155550111", "base_url": victim_api.url})
        # The attacker's record points at an API of its choosing, which names the victim's message.
        attacker_record = _record(attacker, "twilio_sms", secrets={"account_sid": VICTIM_SID, "auth_token": ATTACKER_TOKEN},
                                  config={"from_number": "+14155550111", "base_url": attacker_api.url})
        victim_delivery = _delivery(victim_record, channel=Channel.SMS, message_id=sid, address=PHONE)
        attacker_delivery = _delivery(attacker_record, channel=Channel.SMS, message_id=sid, address="+14155550199")
        NotificationDelivery.objects.filter(pk__in=[victim_delivery.pk, attacker_delivery.pk]).update(sent_at=timezone.now())
        before = _row(victim_delivery)

        assert tasks.poll_delivery_status_task() == 1
        assert _row(victim_delivery) == before
        assert _row(attacker_delivery)["status"] == DeliveryStatus.FAILED
        assert len(victim_api.calls("GET")) == len(attacker_api.calls("GET")) == 1
    finally:
        for p in peers:
            p.stop()


def test_an_organization_admin_configures_its_own_postmark_webhook_end_to_end(live_server, orgs):
    from rest_framework.test import APIClient

    from accounts.models import MembershipRole
    from tests.factories import MembershipFactory

    victim, _ = orgs
    admin = UserFactory()
    MembershipFactory(user=admin, organization=victim, role=MembershipRole.ADMIN)
    api = APIClient()
    api.force_authenticate(admin)
    created = api.post("/api/v1/admin/providers/", {"code": "postmark", "name": "Our Postmark",
                                                     "secrets": {"server_token": "pm-token", "webhook_secret": "ours:hook-secret"}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert "hook-secret" not in created.content.decode()
    assert body["status_webhook_url"] == f"{live_server.url}/webhooks/anymail/postmark/tracking/{body['id']}/"

    record = type(victim).objects.get(pk=victim.pk).notification_providers.get(pk=body["id"])
    delivery = _delivery(record, message_id="pm-e2e", address="reader@victim.example")
    opened = json.dumps({"RecordType": "Open", "MessageID": "pm-e2e", "Recipient": "reader@victim.example",
                         "ReceivedAt": "2026-01-01T00:00:00Z", "FirstOpen": True})
    assert requests.post(body["status_webhook_url"], data=opened, headers=_basic("ours:hook-secret"), timeout=10).status_code == 200
    assert _row(delivery)["status"] == DeliveryStatus.OPENED
