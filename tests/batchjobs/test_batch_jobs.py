"""Batch jobs: one per invitation send and per event over 100 recipients; scoped reads."""
from __future__ import annotations

import pytest

from accounts.models import MembershipRole
from accounts.services import api_key_create
from batchjobs.models import BatchJob, BatchJobStatus, BatchJobType
from batchjobs.services import batch_jobs_refresh
from invitations.models import StoryInvitation
from narrations.services import story_create
from notifications.models import NotificationDelivery
from notifications.services import event_emit

from ..factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _inline(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


@pytest.fixture
def story(user, organization):
    return story_create(owner=user, title="The Lighthouse", content="A lamp.", organization=organization)


def _send(auth_client, story, n: int = 3) -> dict:
    response = auth_client.post(f"/api/v1/stories/{story.pk}/invitations/", {"invitations": [
        {"email": f"guest{i}@example.com", "conversation_style": "jovial"} for i in range(n)]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_an_invitation_send_records_a_job_that_completes_with_the_deliveries(auth_client, story, user):
    sent = _send(auth_client, story)
    job_ids = {i["batch_job_id"] for i in sent["invitations"]}
    assert len(job_ids) == 1 and None not in job_ids
    (job_id,) = job_ids
    assert set(StoryInvitation.objects.values_list("batch_job_id", flat=True)) == {job_id}
    body = auth_client.get(f"/api/v1/batch-jobs/{job_id}/").json()
    assert body["job_type"] == "invitation_batch" and body["total_count"] == 3
    # Delivered inline (locmem email): the counters follow the real deliveries.
    assert body["status"] == "completed", body
    assert (body["processed_count"], body["success_count"], body["failed_count"]) == (3, 3, 0)
    assert body["started_at"] and body["completed_at"] and body["error_message"] == ""
    # The inviter's list of invitations names the job too.
    listed = auth_client.get(f"/api/v1/stories/{story.pk}/invitations/").json()
    assert {i["batch_job_id"] for i in listed} == {job_id}


@pytest.mark.django_db(transaction=True)
def test_counters_are_recomputed_from_delivery_outcomes(auth_client, story):
    sent = _send(auth_client, story, n=4)
    job = BatchJob.objects.get(pk=sent["invitations"][0]["batch_job_id"])
    # Two recipients turn out unreachable (e.g. a bounce reported later): the job is reopened
    # and a refresh counts them as failed, in one pass.
    emails = ["guest0@example.com", "guest1@example.com"]
    NotificationDelivery.objects.filter(recipient_address__in=emails).update(status="BOUNCED")
    BatchJob.objects.filter(pk=job.pk).update(status=BatchJobStatus.PROCESSING, completed_at=None)
    assert batch_jobs_refresh(job_ids=[job.pk]) == 1
    job.refresh_from_db()
    assert (job.processed_count, job.success_count, job.failed_count, job.status) == (4, 2, 2, "completed")


@pytest.mark.django_db(transaction=True)
def test_an_event_over_100_recipients_records_a_job_and_a_small_one_does_not(organization, settings):
    recipients = [{"email": f"r{i}@example.com"} for i in range(101)]
    event_emit(organization=organization, type="system.maintenance", recipients=recipients, channels=["EMAIL"])
    event_emit(organization=organization, type="system.maintenance", recipients=recipients[:100], channels=["EMAIL"])
    job = BatchJob.objects.get()
    assert job.job_type == BatchJobType.EVENT_FANOUT and job.total_count == 101 and job.organization == organization
    batch_jobs_refresh()
    job.refresh_from_db()
    assert job.status == "completed" and job.processed_count == 101 == job.success_count + job.failed_count


@pytest.mark.django_db(transaction=True)
def test_who_may_read_a_job(api_client, auth_client, story, organization, user):
    job_id = _send(auth_client, story, n=1)["invitations"][0]["batch_job_id"]
    url = f"/api/v1/batch-jobs/{job_id}/"
    admin, member = UserFactory(), UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    MembershipFactory(user=member, organization=organization, role=MembershipRole.MEMBER)
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=OrganizationFactory(), role=MembershipRole.OWNER)
    api_client.force_authenticate(admin)
    assert api_client.get(url).status_code == 200
    api_client.force_authenticate(member)
    assert api_client.get(url).status_code == 404
    api_client.force_authenticate(stranger)
    assert api_client.get(url).status_code == 404
    assert api_client.get("/api/v1/batch-jobs/abc/").status_code == 404
    api_client.force_authenticate(None)
    _, raw = api_key_create(organization=organization, name="ops")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api_client.get(url).status_code == 200
    _, other_raw = api_key_create(organization=OrganizationFactory(), name="other")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_raw}")
    assert api_client.get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_chunks_recount_a_job_at_most_once_per_interval_and_always_after_the_last_one(organization, settings):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batchjobs.services import batch_jobs_refresh_for_deliveries, refresh_throttle_key

    settings.BATCH_JOB_REFRESH_INTERVAL = 60
    recipients = [{"email": f"r{i}@example.com"} for i in range(150)]
    event_emit(organization=organization, type="system.maintenance", recipients=recipients, channels=["EMAIL"])
    job = BatchJob.objects.get()
    # The chunk that left nothing in flight recounted: complete without any other refresh.
    assert (job.status, job.processed_count, job.success_count) == ("completed", 150, 150)

    # Reopened with 50 recipients still in flight, and a recount made a moment ago by another chunk.
    rows = NotificationDelivery.objects.filter(notification__event_id=job.event_id).order_by("pk")
    waiting = list(rows.values_list("pk", flat=True)[:50])
    done = rows.exclude(pk__in=waiting).values_list("pk", flat=True)[0]
    NotificationDelivery.objects.filter(pk__in=waiting).update(status="PENDING")
    BatchJob.objects.filter(pk=job.pk).update(status="processing", completed_at=None, processed_count=0, success_count=0,
                                              failed_count=0)
    cache.set(refresh_throttle_key(job.pk), 1, timeout=60)
    assert batch_jobs_refresh_for_deliveries(delivery_ids=[done]) == 0
    job.refresh_from_db()
    assert (job.status, job.processed_count) == ("processing", 0)  # throttled: no recount of the whole event

    # The last chunk: its failures leave nothing in flight, so it recounts despite the throttle.
    NotificationDelivery.objects.filter(pk__in=waiting).update(status="FAILED")
    with CaptureQueriesContext(connection) as queries:
        assert batch_jobs_refresh_for_deliveries(delivery_ids=waiting) == 1
    job.refresh_from_db()
    assert (job.status, job.processed_count, job.success_count, job.failed_count) == ("completed", 150, 100, 50)
    assert job.completed_at is not None
    # Set-based: the job lookup, the in-flight check, the job's row, one aggregate, one UPDATE.
    assert len(queries) <= 5, [q["sql"] for q in queries]
    cache.delete(refresh_throttle_key(job.pk))


@pytest.mark.django_db(transaction=True)
def test_a_recount_that_reaches_nobody_fails_the_job(organization):
    recipients = [{"email": f"r{i}@example.com"} for i in range(101)]
    event_emit(organization=organization, type="system.maintenance", recipients=recipients, channels=["EMAIL"])
    job = BatchJob.objects.get()
    NotificationDelivery.objects.filter(notification__event_id=job.event_id).update(status="BOUNCED")
    BatchJob.objects.filter(pk=job.pk).update(status="processing", completed_at=None)
    assert batch_jobs_refresh(job_ids=[job.pk]) == 1
    job.refresh_from_db()
    assert (job.status, job.processed_count, job.success_count, job.failed_count) == ("failed", 101, 0, 101)
    assert job.error_message == "No recipient could be reached." and job.completed_at is not None
