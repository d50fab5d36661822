"""Audiences (organization, team, project, topic), topics and their subscribers, chunked fan-out jobs."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Membership, MembershipRole, Project, Team
from batchjobs.models import BatchJob, BatchJobStatus, BatchJobType
from notifications.engine.fanout_jobs import fanout_chunk_run, fanout_job_run
from notifications.engine.intake import event_emit
from notifications.enums import AuditAction, Channel, DeliveryStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery, TopicSubscription
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .intake_support import EVENT, intake_event_type, member, members_bulk

pytestmark = pytest.mark.django_db

TOPICS = "/api/v1/admin/topics/"


@pytest.fixture
def event_type(db):
    return intake_event_type(default_channels=[Channel.IN_APP])


def _admin(organization) -> APIClient:
    admin = UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    client = APIClient()
    client.force_authenticate(admin)
    client.user = admin
    return client


@pytest.fixture
def admin_client(organization):
    return _admin(organization)


def _recipients(event_id) -> list[int]:
    return sorted(Notification.objects.filter(event_id=event_id).values_list("recipient_id", flat=True))


# --- topics API --------------------------------------------------------------------------------------


def test_topic_crud_and_subscribers(organization, admin_client):
    created = admin_client.post(TOPICS, {"key": "releases", "name": "Releases"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["key"] == "releases" and created.json()["subscriber_count"] == 0
    ada, bob = member(organization), member(organization)
    Membership.objects.filter(user=bob, organization=organization).update(external_id="ext-bob")
    added = admin_client.post(TOPICS + "releases/subscribers/", {"user_ids": [ada.pk], "external_ids": ["ext-bob"]},
                              format="json")
    assert added.status_code == 200 and added.json() == {"added": 2}
    again = admin_client.post(TOPICS + "releases/subscribers/", {"user_ids": [str(ada.pk)]}, format="json")
    assert again.json() == {"added": 0}  # idempotent
    listed = admin_client.get(TOPICS + "releases/subscribers/").json()["results"]
    assert [(r["user_id"], r["external_id"]) for r in listed] == sorted([(ada.pk, None), (bob.pk, "ext-bob")])
    assert admin_client.get(TOPICS).json()["results"][0]["subscriber_count"] == 2
    assert admin_client.patch(TOPICS + "releases/", {"name": "Release notes"}, format="json").json()["name"] == "Release notes"
    removed = admin_client.delete(TOPICS + "releases/subscribers/", {"user_ids": [ada.pk]}, format="json")
    assert removed.json() == {"removed": 1}
    assert admin_client.delete(TOPICS + "releases/").status_code == 204
    assert admin_client.get(TOPICS + "releases/").status_code == 404
    assert not TopicSubscription.objects.exists()


def test_topic_bad_input_is_a_400_with_field_errors(organization, admin_client):
    bad = admin_client.post(TOPICS, {"key": "Not A Key!", "name": 5, "colour": "red"}, format="json")
    assert bad.status_code == 400
    fields = bad.json()["errors"] if "errors" in bad.json() else bad.json()
    text = str(fields)
    assert "key" in text and "name" in text and "colour" in text
    assert admin_client.post(TOPICS, {"key": "ops"}, format="json").status_code == 201
    duplicate = admin_client.post(TOPICS, {"key": "ops"}, format="json")
    assert duplicate.status_code == 400 and "already exists" in str(duplicate.json())
    no_one = admin_client.post(TOPICS + "ops/subscribers/", {}, format="json")
    assert no_one.status_code == 400
    stranger = UserFactory()
    unknown = admin_client.post(TOPICS + "ops/subscribers/", {"user_ids": [stranger.pk, "abc"]}, format="json")
    assert unknown.status_code == 400 and str(stranger.pk) in str(unknown.json()) and "abc" in str(unknown.json())
    assert not TopicSubscription.objects.exists()


def test_plain_members_cannot_manage_topics(organization):
    client = APIClient()
    client.force_authenticate(member(organization))
    assert client.get(TOPICS).status_code == 403
    assert client.post(TOPICS, {"key": "x"}, format="json").status_code == 403


def test_a_second_organization_can_neither_see_nor_target_nor_fill_the_first_ones_topic(organization, admin_client,
                                                                                        event_type):
    assert admin_client.post(TOPICS, {"key": "secret"}, format="json").status_code == 201
    insider = member(organization)
    admin_client.post(TOPICS + "secret/subscribers/", {"user_ids": [insider.pk]}, format="json")
    other = OrganizationFactory()
    other_admin = _admin(other)
    assert other_admin.get(TOPICS).json()["results"] == []
    for method in ("get", "patch", "delete"):
        assert getattr(other_admin, method)(TOPICS + "secret/", {}, format="json").status_code == 404
    assert other_admin.get(TOPICS + "secret/subscribers/").status_code == 404
    assert other_admin.post(TOPICS + "secret/subscribers/", {"user_ids": [insider.pk]}, format="json").status_code == 404
    # Its own topic of the same key cannot take the first organization's member either.
    assert other_admin.post(TOPICS, {"key": "secret"}, format="json").status_code == 201
    refused = other_admin.post(TOPICS + "secret/subscribers/", {"user_ids": [insider.pk]}, format="json")
    assert refused.status_code == 400 and str(insider.pk) in str(refused.json())
    # Targeting the topic reaches only its own (empty) topic, never the first organization's members.
    with pytest.raises(Exception) as exc:
        event_emit(organization=other, type=EVENT, audience={"topic": "secret"})
    assert "audience" in str(exc.value.detail)
    assert not Notification.objects.filter(organization=other).exists()


# --- audience events -----------------------------------------------------------------------------------


def test_event_to_each_kind_of_audience_reaches_exactly_its_members(organization, user, event_type):
    team = Team.objects.create(organization=organization, name="Core")
    project = Project.objects.create(organization=organization, team=team, name="Apollo")
    in_team, outside = member(organization), member(organization)
    Membership.objects.get(user=in_team, organization=organization).teams.add(team)
    stranger = UserFactory()
    foreign = OrganizationFactory()
    MembershipFactory(user=stranger, organization=foreign)
    everyone = sorted([user.pk, in_team.pk, outside.pk])
    assert _recipients(event_emit(organization=organization, type=EVENT, audience={"organization": True}).event_id) == everyone
    assert _recipients(event_emit(organization=organization, type=EVENT, audience={"team": team.pk}).event_id) == [in_team.pk]
    assert _recipients(event_emit(organization=organization, type=EVENT, audience={"project_id": str(project.pk)}).event_id) == [
        in_team.pk]
    from notifications.engine.audiences import topic_create, topic_subscribe

    topic_create(organization=organization, data={"key": "news"})
    topic_subscribe(organization=organization, key="news", data={"user_ids": [outside.pk]})
    result = event_emit(organization=organization, type=EVENT, audience={"topic": "news"})
    assert _recipients(result.event_id) == [outside.pk]
    assert NotificationDelivery.objects.get(notification__event_id=result.event_id).status == DeliveryStatus.SENT


@pytest.mark.parametrize("audience, field", [
    ({"team": 999999}, "team"), ({"project": "x"}, "project"), ({"topic": "nope"}, "topic"),
    ({"organization": "yes"}, "organization"), ({"galaxy": 1}, "galaxy"), ({"team": 1, "topic": "a"}, "audience"),
    ([1, 2], "audience"),
])
def test_bad_audience_is_a_400_naming_the_field(key_client, organization, event_type, audience, field):
    answer = key_client.post("/api/v1/events/", {"type": EVENT, "audience": audience}, format="json")
    assert answer.status_code == 400, answer.content
    assert field in str(answer.json())
    assert not Notification.objects.exists()


def test_audience_and_recipients_together_are_refused(key_client, user, event_type):
    answer = key_client.post("/api/v1/events/", {"type": EVENT, "audience": {"organization": True},
                                                  "recipient_ids": [user.pk]}, format="json")
    assert answer.status_code == 400 and "audience" in str(answer.json())


def test_another_organizations_team_is_unknown(organization, event_type):
    foreign_team = Team.objects.create(organization=OrganizationFactory(), name="Theirs")
    with pytest.raises(Exception) as exc:
        event_emit(organization=organization, type=EVENT, audience={"team": foreign_team.pk})
    assert "Unknown team" in str(exc.value.detail)


# --- chunked fan-out jobs --------------------------------------------------------------------------------


def test_big_audience_runs_in_chunks_recorded_in_a_batch_job(organization, settings, event_type,
                                                            django_capture_on_commit_callbacks):
    settings.FANOUT_INLINE_MAX = 5
    settings.FANOUT_CHUNK_SIZE = 4
    ids = members_bulk(organization, 10, prefix="aud")
    with django_capture_on_commit_callbacks() as callbacks:
        result = event_emit(organization=organization, type=EVENT, audience={"organization": True}, correlation_id="c-1")
    assert result.notifications == [] and result.batch_job_id
    assert len(callbacks) == 1  # the runner's task, after commit
    job = BatchJob.objects.get(pk=result.batch_job_id)
    assert (job.job_type, job.status, job.total_count, str(job.event_id)) == (
        BatchJobType.EVENT_FANOUT, BatchJobStatus.PROCESSING, 10, result.event_id)
    assert not Notification.objects.filter(event_id=result.event_id).exists()

    assert fanout_chunk_run(job_id=job.pk) is True  # one chunk, then stop: as a killed worker would
    job.refresh_from_db()
    assert job.metadata["fanout"]["written"] == 4 and job.metadata["fanout"]["cursor"] == sorted(ids)[3]
    assert fanout_job_run(job_id=job.pk) == 2  # the rest resumes from the cursor
    assert fanout_job_run(job_id=job.pk) == 0  # and nothing is written twice
    job.refresh_from_db()
    assert job.metadata["fanout"]["done"] is True and job.metadata["fanout"]["chunks"] == 3
    assert _recipients(result.event_id) == sorted(ids)
    assert Notification.objects.filter(event_id=result.event_id, correlation_id="c-1").count() == 10
    assert (job.status, job.processed_count, job.success_count) == (BatchJobStatus.COMPLETED, 10, 10)
    client = APIClient()
    client.force_authenticate(member(organization, role=MembershipRole.ADMIN))
    shown = client.get(f"/api/v1/batch-jobs/{job.pk}/").json()
    assert shown["fanout"] == {"written": 10, "chunks": 3, "done": True} and shown["status"] == "completed"


def test_chunk_queries_do_not_grow_with_the_chunk(organization, settings, event_type):
    settings.FANOUT_INLINE_MAX = 1

    def chunk_queries(size: int, prefix: str) -> int:
        settings.FANOUT_CHUNK_SIZE = size
        org = OrganizationFactory()
        members_bulk(org, size * 2, prefix=prefix)
        job_id = event_emit(organization=org, type=EVENT, audience={"organization": True}).batch_job_id
        with CaptureQueriesContext(connection) as ctx:
            fanout_chunk_run(job_id=job_id)
        return len(ctx.captured_queries)

    chunk_queries(2, "warm")
    assert chunk_queries(10, "small") == chunk_queries(300, "large")


def test_fanout_query_count_and_one_audit_row_per_event(organization, event_type, django_assert_max_num_queries):
    few = members_bulk(organization, 150, prefix="few")
    many = members_bulk(organization, 1500, prefix="many")
    event_emit(organization=organization, type=EVENT, recipient_ids=few[:1])  # warm-up
    with CaptureQueriesContext(connection) as small:
        r1 = event_emit(organization=organization, type=EVENT, recipient_ids=few)
    with CaptureQueriesContext(connection) as large:
        r2 = event_emit(organization=organization, type=EVENT, recipient_ids=many)
    assert len(small.captured_queries) == len(large.captured_queries) <= 30
    created = NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_CREATED, details__event_id=r2.event_id)
    assert created.count() == 1 and created.get().details["recipients"] == 1500
    # The audit API still answers per notification: the event's row counts for each of them.
    one = r2.notifications[700][0]
    admin = _admin(organization)
    trail = admin.get(f"/api/v1/admin/audit-log/?notification={one}").json()["results"]
    assert [row["action"] for row in trail] == [AuditAction.NOTIFICATION_CREATED]
    history = admin.get(f"/api/v1/admin/history/{one}/").json()
    assert AuditAction.NOTIFICATION_CREATED in [row["action"] for row in history["audit_trail"]]
    other = r1.notifications[0][0]
    assert admin.get(f"/api/v1/admin/audit-log/?notification={other}").json()["results"][0]["details"]["event_id"] == r1.event_id


def test_inline_attachments_are_checked_against_the_audience_size(key_client, organization, user, event_type, settings):
    import base64

    settings.EMAIL_INLINE_ATTACHMENTS_EVENT_MAX_BYTES = 100
    settings.FANOUT_INLINE_MAX = 2  # the check holds for a chunked audience too
    for _ in range(3):
        member(organization)
    body = base64.b64encode(b"y" * 30).decode()  # 40 characters, times 4 members: over 100
    response = key_client.post("/api/v1/events/", {
        "type": EVENT, "audience": {"organization": True}, "channels": ["EMAIL"],
        "channel_options": {"EMAIL": {"attachments": [{"filename": "a.txt", "content_type": "text/plain",
                                                       "content_base64": body}]}}}, format="json")
    assert response.status_code == 400
    assert "give them by url" in str(response.json()["channel_options"]["EMAIL"]["attachments"])
    assert not Notification.objects.exists() and not BatchJob.objects.exists()


@pytest.mark.rabbitmq
def test_a_big_fanout_hands_its_inbox_items_to_the_bus_through_a_task(organization, event_type, settings,
                                                                       django_capture_on_commit_callbacks):
    """Over 100 in-app recipients the request publishes tasks, not the items; the task (run here as
    a worker runs it, from the message on the broker) puts every item on the in-app exchange."""
    from kombu import Connection, Exchange
    from kombu import Queue as KombuQueue

    from notifications.engine.realtime import bus_queue
    from notifications.tasks import inapp_publish_task

    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.fail("RabbitMQ required")
    ids = members_bulk(organization, 150, prefix="bus")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        tasks = KombuQueue("default", Exchange("default", type="direct"), routing_key="default")(conn.default_channel)
        tasks.declare()
        tasks.purge()
        bus = bus_queue()(conn.default_channel)
        bus.declare()
        bus.purge()
        with django_capture_on_commit_callbacks(execute=True):
            result = event_emit(organization=organization, type=EVENT, recipient_ids=ids)
        assert bus.get(no_ack=True) is None  # nothing published by the request itself
        message = tasks.get(no_ack=True)
        assert message.headers["task"] == "notifications.inapp_publish"
        args, _kwargs, _embed = message.decode()
        inapp_publish_task(*args)
        items = []
        while (got := bus.get(no_ack=True)) is not None:
            items += got.decode()["items"]
    assert len(items) == 150
    assert sorted(i["notification"]["id"] for i in items) == sorted(nid for nid, _, _ in result.notifications)
    assert {i["user_id"] for i in items} == set(ids) and {i["unread_count"] for i in items} == {1}
