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
