"""event_emit: validation, fan-out, statuses, dedup, scheduling, audit, and a fixed query count."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.exceptions import ValidationError
from notifications.engine.normalize import event_payload_normalize
from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus
from notifications.models import (
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
)
from notifications.services import event_emit

from .intake_support import EVENT, intake_event_type, member, members_bulk, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def event_type(db):
    return intake_event_type()


def test_emit_creates_one_notification_per_recipient_with_default_channels(organization, user, event_type, django_capture_on_commit_callbacks):
    other = member(organization, phone="+14155550100")
    with django_capture_on_commit_callbacks() as callbacks:
        result = event_emit(
            organization=organization, type=EVENT, recipient_ids=[str(user.pk), other.pk],
            actor={"id": "42", "type": "user", "name": "Ada"}, resource={"type": "task", "id": "T-1", "name": "Fix login"},
            data={"taskTitle": "Fix login"}, correlation_id="corr-1",
        )
    assert len(result.notifications) == 2
    assert {rid for _, rid, _ in result.notifications} == {str(user.pk), str(other.pk)}
    rows = Notification.objects.filter(event_id=result.event_id).order_by("recipient_id")
    assert [n.status for n in rows] == [NotificationStatus.PENDING] * 2
    n = rows[0]
    assert n.organization_id == organization.pk
    assert (n.event_type, n.category, n.criticality) == (EVENT, "PROJECT_MANAGEMENT", "MEDIUM")
    assert (n.actor_id, n.actor_name, n.resource_id, n.resource_name) == ("42", "Ada", "T-1", "Fix login")
    assert n.channels_requested == [Channel.IN_APP, Channel.EMAIL]
    # In-app is recorded SENT at intake (the inbox row is the send); email waits for a worker.
    assert statuses(n) == {Channel.IN_APP: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.PENDING}
    assert n.trace[Channel.EMAIL]["used"] is True and n.trace["routing"]["channel_source"] == "event_type"
    # After commit: one callback queues the PENDING deliveries in batches, one hands the
    # in-app items to the in-app bus.
    assert len(callbacks) == 2
    created = NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_CREATED, notification__event_id=result.event_id)
    assert created.count() == 2


def test_unknown_event_type_is_rejected_and_nothing_saved(organization, user, event_type):
    with pytest.raises(ValidationError) as exc:
        event_emit(organization=organization, type="no.such.event", recipient_ids=[user.pk])
    assert "type" in exc.value.detail
    assert not Notification.objects.exists()


def test_unknown_and_foreign_recipients_are_listed(organization, user, other_user, event_type):
    with pytest.raises(ValidationError) as exc:
        event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk, other_user.pk, "999999", "abc"])
    message = exc.value.detail["recipient_ids"][0]
    for bad in (str(other_user.pk), "999999", "abc"):
        assert bad in message
    assert str(user.pk) + "," not in message
    assert not Notification.objects.exists()


def test_bare_address_errors_are_reported_per_item(organization, event_type):
    with pytest.raises(ValidationError) as exc:
        event_emit(
            organization=organization, type=EVENT,
            recipients=[{"email": "ok@example.com"}, {"email": "not-an-email"}, {}, {"phone": "12"}, {"email": "x@example.com", "timezone": "Mars/Base"}],
        )
    errors = exc.value.detail["recipients"]
    assert set(errors) == {"1", "2", "3", "4"}
    assert "email" in errors["1"] and "phone" in errors["3"] and "timezone" in errors["4"]
    assert not Notification.objects.exists()


def test_bare_address_without_phone_skips_sms_and_in_app_with_reasons(organization, event_type):
    result = event_emit(
        organization=organization, type=EVENT, recipients=[{"email": "Guest@Example.com", "locale": "fr"}],
        channels=[Channel.IN_APP, Channel.EMAIL, Channel.SMS],
    )
    n = Notification.objects.get(pk=result.notifications[0][0])
    assert n.recipient_id is None and n.recipient_email == "guest@example.com" and n.recipient_locale == "fr"
    assert statuses(n) == {Channel.IN_APP: DeliveryStatus.SKIPPED, Channel.EMAIL: DeliveryStatus.PENDING, Channel.SMS: DeliveryStatus.SKIPPED}
    sms = n.deliveries.get(channel=Channel.SMS)
    assert "phone" in sms.skip_reason
    assert n.trace[Channel.SMS]["reason"] == "no_address" and n.trace[Channel.SMS]["used"] is False
    assert n.status == NotificationStatus.PENDING


def test_member_without_phone_sms_skipped_not_failed(organization, user, event_type):
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.SMS])
    n = Notification.objects.get(pk=result.notifications[0][0])
    assert statuses(n) == {Channel.SMS: DeliveryStatus.SKIPPED}
    assert n.status == NotificationStatus.SKIPPED
    assert result.notifications[0][2] == NotificationStatus.SKIPPED


def test_requested_channel_not_allowed_is_excluded_with_reason(organization, user, event_type):
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.EMAIL, Channel.VOICE])
    n = Notification.objects.get(pk=result.notifications[0][0])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.PENDING}
    assert n.trace[Channel.VOICE] | {"steps": None, "cost_tier": None} == {
        "used": False, "decision": "excluded", "reason": "not_allowed", "detail": f"VOICE is not allowed for {EVENT}.", "steps": None,
        "cost_tier": None,
    }


def test_deduplication_key_returns_the_first_notifications(organization, user, event_type):
    first = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], deduplication_key="task-T-1-assigned")
    again = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], deduplication_key="task-T-1-assigned")
    assert again.deduplicated and again.event_id == first.event_id
    assert again.notifications == first.notifications
    assert Notification.objects.count() == 1
    assert NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_DEDUPLICATED).count() == 1


def test_deduplication_window_and_organization_scope(organization, user, other_user, event_type):
    first = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], deduplication_key="k")
    Notification.objects.filter(pk=first.notifications[0][0]).update(created_at=timezone.now() - timedelta(hours=2))
    later = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], deduplication_key="k")
    assert not later.deduplicated and later.event_id != first.event_id
    other_org = other_user.memberships.get().organization
    elsewhere = event_emit(organization=other_org, type=EVENT, recipient_ids=[other_user.pk], deduplication_key="k")
    assert not elsewhere.deduplicated
    assert Notification.objects.count() == 3


def test_scheduled_event_is_not_enqueued(organization, user, event_type, django_capture_on_commit_callbacks):
    when = timezone.now() + timedelta(days=1)
    with django_capture_on_commit_callbacks() as callbacks:
        result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], scheduled_for=when.isoformat())
    assert callbacks == []
    n = Notification.objects.get(pk=result.notifications[0][0])
    assert n.status == NotificationStatus.SCHEDULED and result.notifications[0][2] == NotificationStatus.SCHEDULED
    assert n.scheduled_for == when
    # The deliveries wait in PostgreSQL until their time (the due-retry job picks them up then).
    assert set(n.deliveries.values_list("status", "next_retry_at")) == {(DeliveryStatus.PENDING, when)}


def test_expiry_in_the_past_is_rejected(organization, user, event_type):
    with pytest.raises(ValidationError) as exc:
        event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], expires_at=timezone.now() - timedelta(minutes=1))
    assert "expires_at" in exc.value.detail


def test_team_and_project_must_belong_to_the_organization(organization, user, other_user, event_type):
    from tests.factories import ProjectFactory, TeamFactory

    foreign_team = TeamFactory(organization=other_user.memberships.get().organization)
    with pytest.raises(ValidationError) as exc:
        event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], team_id=foreign_team.pk)
    assert "team_id" in exc.value.detail
    team = TeamFactory(organization=organization)
    project = ProjectFactory(organization=organization, team=team)
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], project_id=str(project.pk))
    n = Notification.objects.get(pk=result.notifications[0][0])
    assert (n.team_id, n.project_id) == (team.pk, project.pk)


def _emit_queries(organization, ids: list[int]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        event_emit(organization=organization, type=EVENT, recipient_ids=ids, channels=[Channel.IN_APP, Channel.EMAIL],
                   deduplication_key=f"count-{len(ids)}", data={"taskTitle": "x"})
    return len(ctx.captured_queries)


def test_query_count_is_the_same_for_10_and_1000_recipients(organization, event_type, django_assert_max_num_queries):
    few = members_bulk(organization, 10, prefix="few")
    many = members_bulk(organization, 1000, prefix="many")
    # Warm-up (content types, template lookups cached by Django) so both runs compare like for like.
    _emit_queries(organization, few[:1])
    with django_assert_max_num_queries(25):
        q10 = _emit_queries(organization, few)
    q1000 = _emit_queries(organization, many)
    assert q10 + 1 == q1000  # an event over 100 recipients also records its batch job (one INSERT)
    assert Notification.objects.filter(deduplication_key="count-1000").count() == 1000
    assert NotificationDelivery.objects.filter(notification__deduplication_key="count-1000").count() == 2000


# --- normalization shared with the consumer ---------------------------------------------------


def test_camel_case_payload_is_normalized():
    payload = event_payload_normalize(
        {
            "eventType": "task.assigned", "recipientIds": [17, "18"], "organizationId": 3, "teamId": None,
            "suggestedCriticality": "HIGH", "suggestedChannels": ["EMAIL"], "deduplicationKey": "d",
            "correlationId": "c", "scheduledFor": "2026-12-01T09:00:00Z", "actorId": "42", "actorType": "user",
            "resourceType": "task", "resourceId": "T-1", "resourceName": "Fix login", "data": {"taskTitle": "x"},
            "recipients": [{"email": "a@example.com", "phoneNumber": "+14155550100", "timeZone": "Europe/Paris"}],
        }
    )
    assert payload["type"] == "task.assigned"
    assert payload["recipient_ids"] == ["17", "18"]
    assert payload["organization_id"] == "3"
    assert payload["criticality"] == "HIGH" and payload["channels"] == ["EMAIL"]
    assert payload["deduplication_key"] == "d" and payload["correlation_id"] == "c"
    assert payload["scheduled_for"] == "2026-12-01T09:00:00Z"
    assert payload["actor"] == {"id": "42", "type": "user"}
    assert payload["resource"] == {"type": "task", "id": "T-1", "name": "Fix login"}
    assert payload["data"] == {"taskTitle": "x"}
    assert payload["recipients"] == [{"email": "a@example.com", "phone": "+14155550100", "timezone": "Europe/Paris"}]


def test_snake_case_wins_over_camel_case_and_routing_key_fills_type():
    payload = event_payload_normalize({"recipient_ids": ["1"], "recipientIds": ["2"]}, routing_key="task.assigned")
    assert payload == {"recipient_ids": ["1"], "type": "task.assigned"}
