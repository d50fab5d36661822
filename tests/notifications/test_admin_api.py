"""Organization administration API (audit log, history, webhooks) and incoming webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from cryptography.fernet import Fernet
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.engine.webhooks_outgoing import webhook_signature
from notifications.enums import AuditAction, AuditOutcome, Channel
from notifications.models import Notification, NotificationAuditLog, Webhook
from notifications.services import event_emit

from .intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

ADMIN = "/api/v1/admin/"
SECRET = "whsec-very-secret-value-42"


@pytest.fixture
def event_type(db):
    return intake_event_type()


@pytest.fixture
def encryption(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- audit log and history --------------------------------------------------------------------


def test_audit_log_and_history_are_scoped_to_the_admins_organization(auth_client, organization, user, other_user, event_type):
    mine = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], correlation_id="c-1")
    other_org = other_user.memberships.get().organization
    theirs = event_emit(organization=other_org, type=EVENT, recipient_ids=[other_user.pk])

    response = auth_client.get(ADMIN + "audit-log/?action=NOTIFICATION_CREATED")
    assert response.status_code == 200
    notification_ids = {row["notification_id"] for row in response.data["results"]}
    assert notification_ids == {mine.notifications[0][0]}
    assert theirs.notifications[0][0] not in notification_ids

    history = auth_client.get(ADMIN + "history/?correlation_id=c-1").data["results"]
    assert [h["id"] for h in history] == [mine.notifications[0][0]]
    assert {d["channel"] for d in history[0]["deliveries"]} == {Channel.IN_APP, Channel.EMAIL}
    assert history[0]["recipient"]["user_id"] == user.pk
    # Another organization's notification is not reachable through a filter either.
    assert auth_client.get(ADMIN + f"history/?event_id={theirs.event_id}").data["results"] == []


def test_members_and_api_keys_are_refused_and_bad_filters_are_400(organization, key_client, auth_client):
    plain = member(organization, role=MembershipRole.MEMBER)
    for url in ("audit-log/", "history/", "webhooks/"):
        assert _client(plain).get(ADMIN + url).status_code == 403
        assert key_client.get(ADMIN + url).status_code == 403
    assert auth_client.get(ADMIN + "audit-log/?action=NOPE").status_code == 400
    assert auth_client.get(ADMIN + "history/?since=yesterday").status_code == 400
    assert auth_client.get(ADMIN + "history/?recipient_id=abc").status_code == 400


def test_staff_see_every_organization_or_one(organization, user, other_user, event_type):
    event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk])
    other_org = other_user.memberships.get().organization
    event_emit(organization=other_org, type=EVENT, recipient_ids=[other_user.pk])
    # Platform-wide reads are a superuser's (or accounts.administer_platform's), not any staff's.
    staff = member(organization, is_staff=True, is_superuser=True)
    everything = {row["organization_id"] for row in _client(staff).get(ADMIN + "history/").data["results"]}
    assert everything == {organization.pk, other_org.pk}
    one = _client(staff).get(ADMIN + f"history/?organization={other_org.pk}").data["results"]
    assert {row["organization_id"] for row in one} == {other_org.pk}



def test_every_admin_list_takes_one_organization_parameter(organization, user, other_user, event_type, auth_client):
    """`?organization=<id>` (accounts.selectors.admin_scope) on every admin endpoint; the old
    `?organization_id=` is refused rather than read as "every organization"."""
    event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk])
    other_org = other_user.memberships.get().organization
    event_emit(organization=other_org, type=EVENT, recipient_ids=[other_user.pk])
    staff = member(organization, is_staff=True, is_superuser=True)
    for url in ("audit-log/", "history/", "webhooks/", "deliveries/", "dead-letters/"):
        answer = _client(staff).get(ADMIN + f"{url}?organization_id={other_org.pk}")
        assert answer.status_code == 400 and "organization_id" in answer.data, (url, answer.status_code)
        assert _client(staff).get(ADMIN + f"{url}?organization=abc").status_code == 400, url
        assert _client(staff).get(ADMIN + f"{url}?organization={other_org.pk}").status_code == 200, url
    for url in ("history/", "deliveries/"):
        rows = _client(staff).get(ADMIN + f"{url}?organization={other_org.pk}").data["results"]
        assert rows and {row["organization_id"] for row in rows} == {other_org.pk}, url
        # An organization admin names another organization: still their own rows only.
        mine = auth_client.get(ADMIN + f"{url}?organization={other_org.pk}").data["results"]
        assert mine and {row["organization_id"] for row in mine} == {organization.pk}, url


# --- webhook administration ---------------------------------------------------------------------


def test_webhook_crud_keeps_the_secret_encrypted_and_out_of_answers(auth_client, organization, other_user, encryption):
    response = auth_client.post(ADMIN + "webhooks/", {
        "name": "Alerts", "direction": "INCOMING", "auth_type": "HMAC_SHA256", "secret": SECRET,
        "settings": {"event_type": EVENT, "mapping": {"recipient_ids": "alert.to"}},
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["has_secret"] is True and "secret" not in body and SECRET not in response.content.decode()
    assert body["incoming_url"].endswith(f"/webhooks/incoming/{body['public_id']}/")
    webhook = Webhook.objects.get(pk=body["id"])
    assert webhook.organization_id == organization.pk and webhook.secret and SECRET not in webhook.secret

    changed = auth_client.patch(ADMIN + f"webhooks/{webhook.pk}/", {"name": "Pager alerts"}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "Pager alerts" and changed.json()["has_secret"]
    audits = NotificationAuditLog.objects.filter(webhook=webhook, action=AuditAction.WEBHOOK_CONFIGURED)
    assert audits.count() == 2 and SECRET not in json.dumps(list(audits.values_list("details", flat=True)))

    # Another organization's admin cannot see or change it.
    other_admin = _client(other_user)
    other_user.memberships.update(role=MembershipRole.OWNER)
    assert other_admin.get(ADMIN + f"webhooks/{webhook.pk}/").status_code == 404
    assert other_admin.delete(ADMIN + f"webhooks/{webhook.pk}/").status_code == 404
    assert auth_client.delete(ADMIN + f"webhooks/{webhook.pk}/").status_code == 204
    assert not Webhook.objects.filter(pk=webhook.pk).exists()


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "direction": "OUTGOING"}, "url"),
    ({"name": "x", "direction": "INCOMING", "auth_type": "BEARER"}, "secret"),
    ({"name": "x", "direction": "SIDEWAYS"}, "direction"),
    ({"name": "x", "direction": "INCOMING", "auth_type": "NONE", "settings": {"mapping": ["a"]}}, "settings"),
])
def test_invalid_webhooks_are_400_and_nothing_is_saved(auth_client, encryption, body, field):
    response = auth_client.post(ADMIN + "webhooks/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Webhook.objects.exists()


# --- incoming webhooks ---------------------------------------------------------------------------


@pytest.fixture
def incoming(organization, encryption):
    from notifications.engine.webhooks import webhook_create

    return webhook_create(
        organization_id=organization.pk, secret=SECRET, user_id=None, actor_label="test",
        values={"name": "Monitoring", "direction": "INCOMING", "auth_type": "HMAC_SHA256",
                "settings": {"event_type": EVENT, "defaults": {"channels": ["IN_APP"]},
                             "mapping": {"recipient_ids": "alert.to", "data.taskTitle": "alert.title"}}},
    )


def _signed(body: dict, secret: str = SECRET) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    return raw, webhook_signature(secret, raw)


def test_signed_incoming_webhook_becomes_an_event(api_client, incoming, user, event_type):
    raw, signature = _signed({"alert": {"to": [user.pk], "title": "Disk full"}})
    response = api_client.post(f"/webhooks/incoming/{incoming.public_id}/", raw, content_type="application/json",
                               HTTP_X_TROUBADOUR_SIGNATURE=signature)
    assert response.status_code == 202, response.content
    [item] = response.json()["notifications"]
    n = Notification.objects.get(pk=item["id"])
    assert (n.recipient_id, n.data, n.channels_requested, n.source_module) == (user.pk, {"taskTitle": "Disk full"}, ["IN_APP"], "webhook")
    incoming.refresh_from_db()
    assert incoming.last_success_at is not None and incoming.failure_count == 0
    received = NotificationAuditLog.objects.get(webhook=incoming, action=AuditAction.WEBHOOK_RECEIVED)
    assert received.outcome == AuditOutcome.SUCCESS and received.details["event_id"] == response.json()["event_id"]


def test_forged_or_missing_signature_is_403_and_changes_nothing(api_client, incoming, user, event_type):
    raw, _ = _signed({"alert": {"to": [user.pk], "title": "Disk full"}})
    _, forged = _signed({"alert": {"to": [user.pk], "title": "Disk full"}}, secret="guess")
    url = f"/webhooks/incoming/{incoming.public_id}/"
    assert api_client.post(url, raw, content_type="application/json").status_code == 403
    assert api_client.post(url, raw, content_type="application/json", HTTP_X_TROUBADOUR_SIGNATURE=forged).status_code == 403
    assert not Notification.objects.exists()
    incoming.refresh_from_db()
    assert incoming.last_triggered_at is None
    assert api_client.post("/webhooks/incoming/00000000-0000-0000-0000-000000000000/", raw,
                           content_type="application/json").status_code == 404


def test_bad_payload_is_400_counted_as_a_failure_and_saves_nothing(api_client, incoming, other_user, event_type):
    url = f"/webhooks/incoming/{incoming.public_id}/"
    raw, signature = _signed({"alert": {"to": [other_user.pk], "title": "Not ours"}})
    response = api_client.post(url, raw, content_type="application/json", HTTP_X_TROUBADOUR_SIGNATURE=signature)
    assert response.status_code == 400 and "recipient_ids" in response.json()
    garbage = b"{not json"
    signature = webhook_signature(SECRET, garbage)
    assert api_client.post(url, garbage, content_type="application/json",
                           HTTP_X_TROUBADOUR_SIGNATURE=signature).status_code == 400
    assert not Notification.objects.exists()
    incoming.refresh_from_db()
    assert incoming.failure_count == 2 and incoming.last_error
    assert NotificationAuditLog.objects.filter(webhook=incoming, outcome=AuditOutcome.FAILURE).count() == 2


def test_bearer_webhook_without_mapping_takes_an_event_and_filters_types(api_client, organization, user, encryption, event_type):
    from notifications.engine.webhooks import webhook_create

    hook = webhook_create(organization_id=organization.pk, secret=SECRET, user_id=None, actor_label="test",
                          values={"name": "CI", "direction": "INCOMING", "auth_type": "BEARER", "event_types": [EVENT]})
    url = f"/webhooks/incoming/{hook.public_id}/"
    ok = api_client.post(url, {"eventType": EVENT, "recipientIds": [user.pk]}, format="json",
                         HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    assert ok.status_code == 202, ok.content
    refused = api_client.post(url, {"type": "task.assigned", "recipient_ids": [user.pk]}, format="json",
                              HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    assert refused.status_code == 422
    assert api_client.post(url, {"type": EVENT, "recipient_ids": [user.pk]}, format="json",
                           HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    assert Notification.objects.count() == 1
