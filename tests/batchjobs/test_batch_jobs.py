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
