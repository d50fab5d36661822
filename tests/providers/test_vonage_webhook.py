"""Vonage Voice call events: accepted only with a JWT signed by the signature secret of the
account that placed the call, fresh, used once, and whose payload_hash is this body's."""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt
import pytest
from django.test import Client

from notifications.enums import Channel, DeliveryStatus

from .factories import DeliveryFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/webhooks/vonage/voice/event/"
SECRET = "vonage-signature-secret-0123456789"


@pytest.fixture
def call(make_provider):
    ours = make_provider("vonage_voice", config={"from_number": "+14155550133"},
                         secrets={"application_id": "app-ours", "private_key": "-----BEGIN PRIVATE KEY-----x", "signature_secret": SECRET})
    return DeliveryFactory(provider_record=ours, channel=Channel.VOICE, provider="vonage_voice",
                           provider_message_id="63f61863-4a51-4f6b-86e1-46edebcf9356", recipient_address="+33612345678")


def _post(body: dict, *, secret: str = SECRET, iat: float | None = None, jti: str | None = None, payload_hash: str | None = None):
    raw = json.dumps(body).encode()
    claims = {"iat": int(iat if iat is not None else time.time()), "jti": jti or str(uuid.uuid4()), "iss": "Vonage",
              "payload_hash": payload_hash or hashlib.sha256(raw).hexdigest(), "application_id": "app-ours"}
    token = jwt.encode(claims, secret, algorithm="HS256")
    return Client().post(URL, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def _event(call, status: str) -> dict:
    return {"uuid": call.provider_message_id, "status": status, "direction": "outbound", "to": "33612345678",
            "timestamp": "2026-11-30T18:00:00.000Z", "conversation_uuid": "CON-1"}


def test_a_signed_event_updates_the_call(call):
    response = _post(_event(call, "answered"))
    assert response.status_code == 204
    call.refresh_from_db()
    assert call.status == DeliveryStatus.DELIVERED


def test_a_rejected_call_fails_with_its_reason_and_an_unanswered_one_is_placed_again(call):
    assert _post(_event(call, "rejected")).status_code == 204
    call.refresh_from_db()
    assert call.status == DeliveryStatus.FAILED and "call rejected" in call.error
    call.status, call.error = DeliveryStatus.SENT, ""
    call.save(update_fields=["status", "error"])
    assert _post(_event(call, "unanswered")).status_code == 204
    call.refresh_from_db()
    assert call.status == DeliveryStatus.PENDING and call.error.startswith("call no-answer: calling again in")


@pytest.mark.parametrize("forgery", ["other secret", "stale", "body swapped", "unsigned"])
def test_forged_stale_or_swapped_events_are_refused_and_change_nothing(call, forgery):
    body = _event(call, "busy")
    if forgery == "other secret":
        response = _post(body, secret="someone-elses-secret-000000000000")
    elif forgery == "stale":
        response = _post(body, iat=time.time() - 3600)
    elif forgery == "body swapped":
        response = _post(body, payload_hash=hashlib.sha256(b'{"status": "answered"}').hexdigest())
    else:
        response = Client().post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    call.refresh_from_db()
    assert call.status == DeliveryStatus.SENT


def test_a_replayed_token_is_refused(call):
    assert _post(_event(call, "ringing"), jti="once").status_code == 204
    assert _post(_event(call, "busy"), jti="once").status_code == 403
    call.refresh_from_db()
    assert call.status == DeliveryStatus.SENT


def test_the_digit_pressed_is_answered_with_an_ncco(call):
    response = _post({"uuid": call.provider_message_id, "conversation_uuid": "CON-1", "dtmf": {"digits": "1", "timed_out": False}})
    assert response.status_code == 200
    (action,) = response.json()
    assert action["action"] == "talk" and action["text"] in ("Acknowledged. Thank you.", "No acknowledgment recorded. Goodbye.")


def test_a_call_event_signed_with_another_tenants_secret_changes_nothing(call, make_provider):
    from tests.factories import OrganizationFactory

    make_provider("vonage_voice", organization=OrganizationFactory(), config={"from_number": "+14155550134"},
                  secrets={"application_id": "app-theirs", "private_key": "-----BEGIN PRIVATE KEY-----y",
                           "signature_secret": "their-own-signature-secret-00000"})
    assert _post(_event(call, "rejected"), secret="their-own-signature-secret-00000").status_code == 403
    call.refresh_from_db()
    assert call.status == DeliveryStatus.SENT


# --- SMS delivery receipts -------------------------------------------------------------------

SMS_URL = "/webhooks/vonage/sms/status/"
SMS_SECRET = "vonage-sms-signature-secret-000"


@pytest.fixture
def sms(make_provider):
    record = make_provider("vonage_sms", config={"from_number": "Troubadour", "signature_method": "sha256"},
                           secrets={"api_key": "vk-ours", "api_secret": "vonage-api-secret", "signature_secret": SMS_SECRET})
    return DeliveryFactory(provider_record=record, channel=Channel.SMS, provider="vonage_sms", provider_message_id="0A0000001234ABCD",
                           recipient_address="+447400123456")


def _receipt(delivery, status: str, *, err: str = "0", key: str = "vk-ours", secret: str = SMS_SECRET, method: str = "sha256",
             timestamp: int | None = None) -> dict:
    from vonage_http_client.auth import Auth

    params = {"msisdn": "447400123456", "to": "Troubadour", "network-code": "23410", "messageId": delivery.provider_message_id,
              "price": "0.03330000", "status": status, "scts": "2611301800", "err-code": err, "api-key": key,
              "message-timestamp": "2026-11-30 18:00:00", "timestamp": str(timestamp or int(time.time())), "nonce": str(uuid.uuid4())}
    params["sig"] = Auth(api_key=key, signature_secret=secret, signature_method=method).sign_params(dict(params))
    return params


def test_a_signed_receipt_delivers_the_sms_with_its_price(sms):
    response = Client().post(SMS_URL, json.dumps(_receipt(sms, "delivered")), content_type="application/json")
    assert response.status_code == 204
    sms.refresh_from_db()
    assert sms.status == DeliveryStatus.DELIVERED and str(sms.cost_amount) == "0.033300" and sms.cost_currency == "EUR"


def test_a_failed_receipt_fails_the_sms_with_the_error_code_and_get_works_too(sms):
    response = Client().get(SMS_URL, _receipt(sms, "failed", err="1"))
    assert response.status_code == 204
    sms.refresh_from_db()
    assert sms.status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED) and "Vonage DLR failed (error 1)" in sms.error


@pytest.mark.parametrize("forgery", ["other secret", "other api key", "stale", "tampered", "replayed", "unsigned"])
def test_forged_receipts_are_refused(sms, forgery):
    params = _receipt(sms, "delivered")
    if forgery == "other secret":
        params = _receipt(sms, "delivered", secret="someone-elses-secret-0000000")
    elif forgery == "other api key":
        params = _receipt(sms, "delivered", key="vk-theirs")
    elif forgery == "stale":
        params = _receipt(sms, "delivered", timestamp=int(time.time()) - 3600)
    elif forgery == "tampered":
        params["status"] = "failed"
    elif forgery == "replayed":
        assert Client().post(SMS_URL, params).status_code == 204
        sms.status = DeliveryStatus.SENT
        sms.save(update_fields=["status"])
    else:
        params.pop("sig")
    assert Client().post(SMS_URL, params).status_code == 403
    sms.refresh_from_db()
    assert sms.status == DeliveryStatus.SENT
