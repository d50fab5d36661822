"""Email status webhooks through the hardened anymail views: each ESP's own authentication
(SendGrid signed event webhook, Mailgun HMAC, Postmark basic auth, SES through signed SNS
messages) — a valid one updates the delivery, a forged or missing one is a 403 that changes
nothing, and without any configured secret every request is refused."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client

from notifications.enums import DeliveryStatus
from notifications.models import NotificationDelivery
from providers.models import NotificationProvider
from providers.models import SuppressedAddress, SuppressionReason

from .factories import DeliveryFactory
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailWarning")]

BASIC = "Basic " + base64.b64encode(b"hook:s3cret").decode()
WRONG_BASIC = "Basic " + base64.b64encode(b"hook:guess").decode()


def _row(delivery) -> dict:
    return NotificationDelivery.objects.filter(pk=delivery.pk).values().get()


@pytest.fixture
def anymail(settings, make_provider):
    """A clean ANYMAIL setting (the environment's values must not leak into these tests), and
    the platform's record of each ESP: a tracking URL answers only for an ESP in use."""
    settings.ANYMAIL = {"MAILGUN_API_KEY": ""}
    for code in ("sendgrid", "mailgun", "postmark", "amazon_ses"):
        make_provider(code)
    return settings.ANYMAIL


def _sent(**fields) -> NotificationDelivery:
    """A delivery the platform's record of `provider` sent."""
    record = NotificationProvider.objects.get(organization__isnull=True, code=fields["provider"])
    return DeliveryFactory(provider_record=record, **fields)


# --- SendGrid signed event webhook ---------------------------------------------------------------


def _sendgrid_key(anymail) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    anymail["SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"] = base64.b64encode(der).decode()
    return key


def _sendgrid_post(body: bytes, key: ec.EllipticCurvePrivateKey | None, timestamp: str = "1767225600"):
    headers = {}
    if key is not None:
        signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
                   "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp}
    return Client().post("/webhooks/anymail/sendgrid/tracking/", body, content_type="application/json", **headers)


def test_sendgrid_signed_event_webhook(anymail):
    key = _sendgrid_key(anymail)
    delivery = _sent(provider="sendgrid", provider_message_id="sg-anymail-1")
    body = json.dumps([{"email": delivery.recipient_address, "timestamp": 1767225600, "event": "open",
                        "anymail_id": "sg-anymail-1", "sg_event_id": "e1"}]).encode()

    before = _row(delivery)
    forged = _sendgrid_post(body, ec.generate_private_key(ec.SECP256R1()))
    unsigned = _sendgrid_post(body, None)
    tampered = _sendgrid_post(body.replace(b'"open"', b'"bounce"'), None)
    assert (forged.status_code, unsigned.status_code, tampered.status_code) == (403, 403, 403)
    assert _row(delivery) == before

    assert _sendgrid_post(body, key).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.OPENED
    assert delivery.opened_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# --- Mailgun HMAC ----------------------------------------------------------------------------


def _mailgun_body(signing_key: str, *, message_id: str, event: dict, token: str = "tok-1") -> bytes:
    timestamp = "1767225600"
    signature = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                       "event-data": {"timestamp": 1767225600.0, "id": "ev-1", "message": {"headers": {"message-id": message_id}},
                                      **event}}).encode()


def test_mailgun_webhook_is_checked_with_the_signing_key(anymail):
    anymail["MAILGUN_WEBHOOK_SIGNING_KEY"] = "mg-signing-key"
    delivery = _sent(provider="mailgun", provider_message_id="<mg-1@mg.example.com>", recipient_address="gone@example.com")
    event = {"event": "failed", "severity": "permanent", "reason": "bounce", "recipient": "gone@example.com",
             "delivery-status": {"code": 550, "message": "5.1.1 user unknown", "description": ""}}
    url = "/webhooks/anymail/mailgun/tracking/"

    before = _row(delivery)
    forged = Client().post(url, _mailgun_body("not-the-key", message_id="mg-1@mg.example.com", event=event), content_type="application/json")
    assert forged.status_code == 403 and _row(delivery) == before and not SuppressedAddress.objects.exists()

    ok = Client().post(url, _mailgun_body("mg-signing-key", message_id="mg-1@mg.example.com", event=event), content_type="application/json")
    assert ok.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED
    assert SuppressedAddress.objects.get().reason == SuppressionReason.HARD_BOUNCE


def test_mailgun_without_a_signing_key_refuses_what_an_empty_key_would_sign(anymail):
    # settings define MAILGUN_API_KEY as "" when unset; anymail would then accept an HMAC
    # computed with an empty key
    delivery = _sent(provider="mailgun", provider_message_id="<mg-2@mg.example.com>")
    body = _mailgun_body("", message_id="mg-2@mg.example.com", event={"event": "delivered", "recipient": "a@example.com"})
    before = _row(delivery)
    assert Client().post("/webhooks/anymail/mailgun/tracking/", body, content_type="application/json").status_code == 403
    assert _row(delivery) == before


# --- Postmark (basic auth) --------------------------------------------------------------------


def test_postmark_webhook_needs_the_webhook_secret_and_soft_bounces_do_not_suppress(anymail):
    url = "/webhooks/anymail/postmark/tracking/"
    hard = _sent(provider="postmark", provider_message_id="pm-hard", recipient_address="gone@example.com")
    soft = _sent(provider="postmark", provider_message_id="pm-soft", recipient_address="full@example.com")

    def bounce(message_id: str, kind: str, email: str) -> str:
        return json.dumps({"RecordType": "Bounce", "Type": kind, "MessageID": message_id, "Email": email, "ID": 42,
                           "BouncedAt": "2026-01-01T00:00:00Z", "Description": f"{kind} for {email}"})

    before = _row(hard)
    # no secret configured at all: refused, not accepted with a warning
    assert Client().post(url, bounce("pm-hard", "HardBounce", "gone@example.com"), content_type="application/json").status_code == 403
    anymail["WEBHOOK_SECRET"] = "hook:s3cret"
    for auth in ({}, {"HTTP_AUTHORIZATION": WRONG_BASIC}):
        response = Client().post(url, bounce("pm-hard", "HardBounce", "gone@example.com"), content_type="application/json", **auth)
        assert response.status_code == 403
    assert _row(hard) == before and not SuppressedAddress.objects.exists()

    for payload in (bounce("pm-hard", "HardBounce", "gone@example.com"), bounce("pm-soft", "SoftBounce", "full@example.com")):
        assert Client().post(url, payload, content_type="application/json", HTTP_AUTHORIZATION=BASIC).status_code == 200
    hard.refresh_from_db(), soft.refresh_from_db()
    assert hard.status == soft.status == DeliveryStatus.BOUNCED
    assert list(SuppressedAddress.objects.values_list("address", flat=True)) == ["gone@example.com"]


# --- Amazon SES through signed SNS messages ------------------------------------------------------


@pytest.fixture
def sns_signer(peer, settings, anymail):
    """A certificate served like Amazon SNS serves its signing certificates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    server = peer().on("GET", r"/SimpleNotificationService-[a-z0-9]+\.pem", Reply(200, cert.public_bytes(serialization.Encoding.PEM)))
    settings.SNS_SIGNING_CERT_URL_PATTERN = rf"^{re.escape(server.url)}/[^?#]+\.pem$"
    anymail["WEBHOOK_SECRET"] = "hook:s3cret"
    anymail["AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS"] = False

    # Certificates are cached per URL for the life of the process and a later peer may get the
    # same port: each fixture serves its certificate under a name of its own.
    cert_name = f"SimpleNotificationService-{secrets.token_hex(8)}.pem"

    def sign(message: dict, *, with_key=key) -> dict:
        message = {**message, "SignatureVersion": "2", "SigningCertURL": f"{server.url}/{cert_name}"}
        fields = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        if message["Type"] != "Notification":
            fields = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        signed = "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode()
        message["Signature"] = base64.b64encode(with_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())).decode()
        return message

    sign.server = server
    return sign


def _ses_bounce(message_id: str, address: str, bounce_type: str = "Permanent") -> dict:
    ses_event = {"eventType": "Bounce", "mail": {"messageId": message_id, "destination": [address], "timestamp": "2026-01-01T00:00:00.000Z"},
                 "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "timestamp": "2026-01-01T00:00:01.000Z",
                            "bouncedRecipients": [{"emailAddress": address, "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}
    return {"Type": "Notification", "MessageId": f"sns-{message_id}", "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
            "Message": json.dumps(ses_event), "Timestamp": "2026-01-01T00:00:02.000Z"}


def _sns_post(message: dict, auth: str | None = BASIC):
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"], "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"]}
    if auth:
        headers["HTTP_AUTHORIZATION"] = auth
    return Client().post("/webhooks/anymail/amazon_ses/tracking/", json.dumps(message), content_type="text/plain", **headers)


def test_ses_events_through_sns_need_the_secret_and_amazons_signature(sns_signer):
    delivery = _sent(provider="amazon_ses", provider_message_id="ses-1", recipient_address="gone@example.com")
    valid = sns_signer(_ses_bounce("ses-1", "gone@example.com"))
    before = _row(delivery)

    tampered = {**valid, "Message": valid["Message"].replace("Permanent", "Transient")}
    other_signer = sns_signer(_ses_bounce("ses-1", "gone@example.com"), with_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    foreign_cert = {**valid, "SigningCertURL": "https://attacker.example/SimpleNotificationService-abc123.pem"}
    unsigned = {k: v for k, v in valid.items() if k != "Signature"}
    for forged in (tampered, other_signer, foreign_cert, unsigned):
        assert _sns_post(forged).status_code == 403
    assert _sns_post(valid, auth=WRONG_BASIC).status_code == 403
    assert _sns_post(valid, auth=None).status_code == 401  # SNS only sends credentials after this challenge
    assert _row(delivery) == before and not SuppressedAddress.objects.exists()

    assert _sns_post(valid).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED and "550 5.1.1" in delivery.error
    suppressed = SuppressedAddress.objects.get()
    assert (suppressed.address, suppressed.reason) == ("gone@example.com", SuppressionReason.HARD_BOUNCE)
    assert len(sns_signer.server.calls("GET")) == 1  # the certificate is fetched once


def test_ses_transient_bounce_is_recorded_without_suppressing_the_address(sns_signer):
    delivery = _sent(provider="amazon_ses", provider_message_id="ses-2", recipient_address="full@example.com")
    assert _sns_post(sns_signer(_ses_bounce("ses-2", "full@example.com", bounce_type="Transient"))).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED and not SuppressedAddress.objects.exists()


def test_an_unknown_message_id_is_ignored_safely(sns_signer):
    delivery = _sent(provider="amazon_ses", provider_message_id="ses-3")
    before = _row(delivery)
    assert _sns_post(sns_signer(_ses_bounce("ses-unknown", "who@example.com"))).status_code == 200
    assert _row(delivery) == before and not SuppressedAddress.objects.exists()


def test_an_organizations_sns_subscription_is_never_confirmed_with_the_platforms_aws_credentials(sns_signer, anymail, make_provider, peer):
    """Confirming an SNS subscription is an AWS call: the platform's URL makes it with the
    platform's session, an organization record's URL never does."""
    from tests.factories import OrganizationFactory

    sns = peer().on("POST", r"/.*", Reply(200, b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:"
                                               b"us-east-1:123456789012:t:1</SubscriptionArn></ConfirmSubscriptionResult><ResponseMetadata>"
                                               b"<RequestId>r1</RequestId></ResponseMetadata></ConfirmSubscriptionResponse>"))
    anymail.update({"AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": True, "AMAZON_SES_CLIENT_PARAMS": {"endpoint_url": sns.url},
                    "AMAZON_SES_SESSION_PARAMS": {"aws_access_key_id": "AKIAPLATFORM", "aws_secret_access_key": "platform-secret",
                                                  "region_name": "us-east-1"}})
    record = make_provider("amazon_ses", organization=OrganizationFactory(), secrets={"webhook_secret": "org:hook"})
    confirmation = {"Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "tok-1",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:their-topic", "Message": "confirm",
                    "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", "Timestamp": "2026-01-01T00:00:00.000Z"}
    signed = sns_signer(confirmation)
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "SubscriptionConfirmation", "HTTP_X_AMZ_SNS_MESSAGE_ID": "sub-1"}
    org_basic = "Basic " + base64.b64encode(b"org:hook").decode()
    response = Client().post(f"/webhooks/anymail/amazon_ses/tracking/{record.pk}/", json.dumps(signed), content_type="text/plain",
                             HTTP_AUTHORIZATION=org_basic, **headers)
    assert response.status_code == 200 and sns.calls("POST") == []

    response = Client().post("/webhooks/anymail/amazon_ses/tracking/", json.dumps(signed), content_type="text/plain",
                             HTTP_AUTHORIZATION=BASIC, **headers)
    assert response.status_code == 200
    [call] = sns.calls("POST")
    assert b"ConfirmSubscription" in call.body and "AKIAPLATFORM" in call.headers.get("Authorization", "")
