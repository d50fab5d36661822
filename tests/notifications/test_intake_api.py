"""POST /api/v1/events/ and GET /api/v1/notifications/{id}/trace/."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from accounts.services import api_key_create
from notifications.engine.payloads import event_payload_hash
from notifications.enums import Channel, IdempotencyStatus, NotificationStatus
from notifications.models import IdempotencyRecord, Notification, NotificationAuditLog
from notifications.services import event_emit, idempotency_claim

from .intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

URL = "/api/v1/events/"


@pytest.fixture
def event_type(db):
    return intake_event_type()


def _body(*ids, **extra):
    return {"type": EVENT, "recipient_ids": [str(i) for i in ids], "data": {"taskTitle": "Fix login"}, **extra}


def test_api_key_event_is_accepted(key_client, organization, user, event_type):
    response = key_client.post(URL, _body(user.pk, channels=["IN_APP", "EMAIL"], organization_id=str(organization.pk)), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"event_id", "notifications"}
    [item] = body["notifications"]
    assert item["recipient_id"] == str(user.pk) and item["status"] == NotificationStatus.PENDING
    n = Notification.objects.get(pk=item["id"])
    assert str(n.event_id) == body["event_id"] and n.source_module == "api"
    audit = NotificationAuditLog.objects.get(notification=n)
    assert audit.actor_type == "API_KEY" and audit.actor_label == "test"


def test_seed_camel_case_payload_is_accepted(key_client, organization, user, event_type):
    response = key_client.post(URL, {
        "eventType": EVENT, "recipientIds": [user.pk], "organizationId": organization.slug,
        "suggestedCriticality": "HIGH", "suggestedChannels": ["EMAIL"], "deduplicationKey": "camel-1",
        "correlationId": "corr-9", "actorId": "42", "actorType": "user", "resourceType": "task", "resourceId": "T-9",
        "data": {"taskTitle": "Camel"},
    }, format="json")
    assert response.status_code == 202, response.content
    n = Notification.objects.get(pk=response.json()["notifications"][0]["id"])
    assert (n.criticality, n.channels_requested, n.deduplication_key, n.correlation_id) == ("HIGH", ["EMAIL"], "camel-1", "corr-9")
    assert (n.actor_id, n.resource_type, n.resource_id) == ("42", "task", "T-9")


def test_per_item_errors_are_400_and_nothing_is_saved(key_client, user, event_type):
    response = key_client.post(URL, {
        "type": EVENT, "recipient_ids": [str(user.pk)], "channels": ["EMAIL", "PIGEON"],
        "recipients": [{"email": "fine@example.com"}, {"email": "broken"}, {"name": "no address"}],
    }, format="json")
    assert response.status_code == 400
    errors = response.json()
    # Errors are keyed by item index: the valid first item is not listed.
    assert set(errors["channels"]) == {"1"}
    assert set(errors["recipients"]) == {"1", "2"} and "email" in errors["recipients"]["1"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"recipient_ids": ["1"]}, "type"),
    ({"type": EVENT}, "recipient_ids"),
    ({"type": EVENT, "recipient_ids": ["1"], "criticality": "URGENT"}, "criticality"),
    ({"type": EVENT, "recipient_ids": ["1"], "scheduled_for": "tomorrow"}, "scheduled_for"),
    ({"type": "nope.nope", "recipient_ids": ["1"]}, "type"),
])
def test_bad_input_is_a_clear_400(key_client, user, event_type, body, field):
    response = key_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_unknown_recipients_are_listed(key_client, user, other_user, event_type):
    response = key_client.post(URL, _body(user.pk, other_user.pk, 987654), format="json")
    assert response.status_code == 400
    message = response.json()["recipient_ids"][0]
    assert str(other_user.pk) in message and "987654" in message
    assert not Notification.objects.exists()


def test_other_organizations_key_cannot_target_our_users(organization, user, other_user, event_type):
    other_org = other_user.memberships.get().organization
    _, raw = api_key_create(organization=other_org, name="theirs")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.post(URL, _body(user.pk), format="json")
    assert response.status_code == 400 and str(user.pk) in response.json()["recipient_ids"][0]
    response = client.post(URL, _body(other_user.pk, organization_id=str(organization.pk)), format="json")
    assert response.status_code == 403
    assert not Notification.objects.exists()


def test_plain_users_cannot_send_events_but_staff_can(auth_client, organization, user, event_type):
    assert auth_client.post(URL, _body(user.pk), format="json").status_code == 403
    staff = member(organization, is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.post(URL, _body(user.pk, organization_id=organization.slug), format="json")
    assert response.status_code == 202
    assert APIClient().post(URL, _body(user.pk), format="json").status_code in (401, 403)


# --- idempotency -----------------------------------------------------------------------------


def test_idempotency_replay_returns_the_first_answer(key_client, user, event_type):
    first = key_client.post(URL, _body(user.pk), format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    assert first.status_code == 202 and "Idempotency-Replay" not in first.headers
    again = key_client.post(URL, _body(user.pk), format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    assert again.status_code == 202
    assert again.headers["Idempotency-Replay"] == "true"
    assert again.json() == first.json()
    assert Notification.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="req-1").status == IdempotencyStatus.COMPLETED


def test_idempotency_key_with_a_different_body_is_422(key_client, user, event_type):
    assert key_client.post(URL, _body(user.pk), format="json", HTTP_IDEMPOTENCY_KEY="req-2").status_code == 202
    response = key_client.post(URL, _body(user.pk, criticality="HIGH"), format="json", HTTP_IDEMPOTENCY_KEY="req-2")
    assert response.status_code == 422
    assert "different" in response.json()["detail"]
    assert Notification.objects.count() == 1


def test_idempotency_key_in_flight_is_409(key_client, organization, user, event_type):
    body = _body(user.pk)
    # Another request holds the key (claimed, not yet completed).
    claimed, _ = idempotency_claim(organization=organization, key="req-3", request_hash=event_payload_hash(body))
    assert claimed is not None and claimed.status == IdempotencyStatus.IN_FLIGHT
    response = key_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="req-3")
    assert response.status_code == 409
    assert not Notification.objects.exists()


def test_failed_request_releases_its_idempotency_key(key_client, user, event_type):
    bad = key_client.post(URL, _body(user.pk, 987654), format="json", HTTP_IDEMPOTENCY_KEY="req-4")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="req-4").exists()
    assert key_client.post(URL, _body(user.pk), format="json", HTTP_IDEMPOTENCY_KEY="req-4").status_code == 202


def test_idempotency_keys_are_per_organization(key_client, organization, user, other_user, event_type):
    assert key_client.post(URL, _body(user.pk), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 202
    _, raw = api_key_create(organization=other_user.memberships.get().organization, name="theirs")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.post(URL, _body(other_user.pk), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 202 and "Idempotency-Replay" not in response.headers


# --- trace -----------------------------------------------------------------------------------


def test_trace_is_served_to_the_recipient_and_org_admins_only(organization, user, other_user, event_type):
    recipient = member(organization)
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[recipient.pk], channels=[Channel.EMAIL, Channel.SMS])
    nid = result.notifications[0][0]
    url = f"/api/v1/notifications/{nid}/trace/"

    def client_for(u):
        c = APIClient()
        c.force_authenticate(u)
        return c

    mine = client_for(recipient).get(url)
    assert mine.status_code == 200
    body = mine.json()
    assert body["trace"]["EMAIL"]["used"] is True
    assert body["trace"]["SMS"]["reason"] == "no_address"
    assert {d["channel"]: d["status"] for d in body["deliveries"]} == {"EMAIL": "PENDING", "SMS": "SKIPPED"}
    assert client_for(user).get(url).status_code == 200  # owner of the organization
    assert client_for(member(organization, role=MembershipRole.MEMBER)).get(url).status_code == 404
    assert client_for(other_user).get(url).status_code == 404
    assert client_for(recipient).get("/api/v1/notifications/99999999/trace/").status_code == 404
