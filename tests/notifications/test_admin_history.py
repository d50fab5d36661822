"""/api/v1/admin/audit-log/ and /api/v1/admin/history/: filters, organization scoping,
cursor pagination, the detail with deliveries and audit trail, and a fixed query count."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.enums import AuditAction, AuditActorType, Channel, DeliveryStatus, NotificationStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery
from notifications.services import event_emit

from .intake_support import member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

AUDIT = "/api/v1/admin/audit-log/"
HISTORY = "/api/v1/admin/history/"
EVENT = "task.assigned"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _walk(client, url: str) -> list[dict]:
    """Every row of a cursor-paginated list, following `next`."""
    rows: list[dict] = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        rows += page.json()["results"]
        url = page.json()["next"]
    return rows


@pytest.fixture
def emitted(organization, user, other_user):
    mine = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.IN_APP, Channel.EMAIL],
                      actor={"id": "42", "type": "user", "name": "Ada"})
    other_org = other_user.memberships.get().organization
    theirs = event_emit(organization=other_org, type=EVENT, recipient_ids=[other_user.pk])
    return mine.notifications[0][0], theirs.notifications[0][0]


def test_audit_log_filters_and_scoping(auth_client, organization, emitted):
    mine, theirs = emitted
    rows = _walk(auth_client, AUDIT + "?page_size=1")
    assert rows and {r["organization_id"] for r in rows} == {organization.pk}
    assert theirs not in {r["notification_id"] for r in rows}
    assert len({r["id"] for r in rows}) == len(rows)  # the cursor walks each row once

    created = auth_client.get(AUDIT + f"?action=NOTIFICATION_CREATED&notification={mine}").json()["results"]
    assert [(r["action"], r["notification_id"]) for r in created] == [("NOTIFICATION_CREATED", mine)]
    assert created[0]["actor_type"] == AuditActorType.USER and created[0]["actor_id"] == "42"
    assert [r["id"] for r in auth_client.get(AUDIT + "?actor=42").json()["results"]] == [created[0]["id"]]
    assert auth_client.get(AUDIT + f"?notification={theirs}").json()["results"] == []

    delivery = NotificationDelivery.objects.filter(notification_id=mine).first()
    NotificationAuditLog.objects.create(organization=organization, action=AuditAction.DELIVERY_FAILED,
                                        notification_id=mine, delivery=delivery, error_message="bounced")
    by_delivery = auth_client.get(AUDIT + f"?delivery={delivery.pk}").json()["results"]
    assert [(r["action"], r["delivery_id"]) for r in by_delivery] == [("DELIVERY_FAILED", delivery.pk)]

    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert auth_client.get(AUDIT, {"since": later}).json()["results"] == []
    assert len(auth_client.get(AUDIT, {"until": later, "page_size": 200}).json()["results"]) == len(rows) + 1
    for bad in ("action=NOPE", "notification=abc", "since=yesterday"):
        assert auth_client.get(AUDIT + "?" + bad).status_code == 400


def test_members_and_api_keys_are_refused_staff_see_everything(organization, emitted, key_client, other_user):
    mine, theirs = emitted
    plain = _client(member(organization, role=MembershipRole.MEMBER))
    for url in (AUDIT, HISTORY, HISTORY + f"{mine}/"):
        assert plain.get(url).status_code == 403
        assert key_client.get(url).status_code == 403
    staff = _client(member(organization, is_staff=True, is_superuser=True))
    seen = {r["id"] for r in _walk(staff, HISTORY)}
    assert {mine, theirs} <= seen
    assert staff.get(HISTORY + f"{theirs}/").status_code == 200


def test_history_lists_channel_statuses_and_filters(auth_client, organization, user, emitted):
    mine, theirs = emitted
    NotificationDelivery.objects.filter(notification_id=mine, channel=Channel.EMAIL).update(status=DeliveryStatus.FAILED)
    Notification.objects.filter(pk=mine).update(status=NotificationStatus.PARTIALLY_DELIVERED)
    other_type = event_emit(organization=organization, type="incident.created", recipient_ids=[user.pk]).notifications[0][0]

    [row] = auth_client.get(HISTORY + f"?event_type={EVENT}").json()["results"]
    assert row["id"] == mine and row["event_type"] == EVENT and row["criticality"] == "MEDIUM"
    assert row["status"] == "PARTIALLY_DELIVERED" and row["recipient"]["user_id"] == user.pk
    assert row["channels"] == {"IN_APP": "SENT", "EMAIL": "FAILED"}  # in-app is recorded SENT at intake
    assert "created_at" in row
    assert [r["id"] for r in auth_client.get(HISTORY + "?status=PARTIALLY_DELIVERED").json()["results"]] == [mine]
    assert {r["id"] for r in auth_client.get(HISTORY + f"?recipient={user.pk}").json()["results"]} == {mine, other_type}
    assert theirs not in {r["id"] for r in _walk(auth_client, HISTORY)}
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert auth_client.get(HISTORY, {"since": later}).json()["results"] == []
    assert auth_client.get(HISTORY + "?status=SOMEWHERE").status_code == 400


def test_history_detail_has_deliveries_and_audit_trail_and_hides_other_organizations(auth_client, emitted):
    mine, theirs = emitted
    detail = auth_client.get(HISTORY + f"{mine}/")
    assert detail.status_code == 200
    body = detail.json()
    assert {d["channel"] for d in body["deliveries"]} == {"IN_APP", "EMAIL"}
    assert body["channels"] == {d["channel"]: d["status"] for d in body["deliveries"]}
    actions = [a["action"] for a in body["audit_trail"]]
    assert actions[0] == AuditAction.NOTIFICATION_CREATED and all(a["notification_id"] == mine for a in body["audit_trail"])
    assert auth_client.get(HISTORY + f"{theirs}/").status_code == 404
    assert auth_client.get(HISTORY + "999999999/").status_code == 404


def _bulk_notifications(organization, user, count: int) -> None:
    now = timezone.now()
    rows = Notification.objects.bulk_create(
        Notification(organization=organization, recipient=user, event_type=EVENT, category="PROJECT_MANAGEMENT",
                     status=NotificationStatus.DELIVERED, processed_at=now)
        for _ in range(count)
    )
    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(notification=n, organization=organization, channel=channel, status=DeliveryStatus.DELIVERED)
        for n in rows for channel in (Channel.IN_APP, Channel.EMAIL)
    )


def _history_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(HISTORY + "?page_size=100")
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.json()["results"])


def test_history_page_costs_the_same_queries_for_5_and_50_notifications(organization, user, django_assert_max_num_queries):
    client = _client(user)
    _bulk_notifications(organization, user, 5)
    with django_assert_max_num_queries(6):
        small, rows = _history_queries(client)
    assert rows == 5
    _bulk_notifications(organization, user, 45)
    large, rows = _history_queries(client)
    assert rows == 50 and large == small
