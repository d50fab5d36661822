"""End to end through a real worker: a roleplay invitation batch where some addresses are refused
by the SMTP server; the batch job's counters end equal to the real delivery outcome."""
from __future__ import annotations

import threading

import pytest

from batchjobs.models import BatchJob
from invitations.models import StoryInvitation
from notifications.enums import DELIVERY_SUCCESS_STATUSES, Channel
from notifications.models import NotificationDelivery
from providers.models import ProviderOutbox

from ..conftest import wait_until
from ..notifications.test_e2e import _free_port
from ..roleplay.conftest import roles_of, template  # noqa: F401 - fixtures
from ..roleplay.conftest import story  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class RefusingSmtp:
    """Accepts mail, except for recipients whose address starts with "gone" (550, permanent)."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def refusing_smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    handler = RefusingSmtp()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(controller.port))
    yield handler
    controller.stop()


@pytest.fixture
def worker(refusing_smtp, request):
    return request.getfixturevalue("live_worker")


def test_roleplay_batch_with_failures_counts_the_real_outcome(phone_consent, worker, refusing_smtp, auth_client, story, template, settings):  # noqa: F811
    settings.CELERY_TASK_ALWAYS_EAGER = False
    roles = roles_of(template)
    response = auth_client.post(f"/api/v1/stories/{story.pk}/invitations/", {"invitations": [
        {"email": "ada@example.com", "conversation_style": "jovial", "roleplay_character_role_id": roles["Mara"]},
        {"phone": "+14155550100", "conversation_style": "jovial", "roleplay_character_role_id": roles["Captain"]},
        {"email": "bea@example.com", "conversation_style": "siblings"},
        {"email": "gone1@example.com", "conversation_style": "siblings"},
        {"email": "gone2@example.com", "conversation_style": "jovial"},
    ]}, format="json")
    assert response.status_code == 201, response.content
    sent = response.json()["invitations"]
    assert [i["invitation_type"] for i in sent[:3]] == ["roleplay_character", "roleplay_character", "story_collaboration"]
    job_id = sent[0]["batch_job_id"]

    def finished():
        body = auth_client.get(f"/api/v1/batch-jobs/{job_id}/").json()
        return body if body["status"] in ("completed", "failed") else None

    body = wait_until(finished, timeout=120, message=f"the batch job to finish\n{worker.log[-3000:]}")
    assert body["status"] == "completed" and body["total_count"] == 5
    # What really happened, read from the delivery rows.
    notification_ids = StoryInvitation.objects.filter(batch_job_id=job_id).values_list("notification_id", flat=True)
    rows = NotificationDelivery.objects.filter(notification_id__in=notification_ids, escalation_level=0)
    succeeded = {r.recipient_address for r in rows if r.status in DELIVERY_SUCCESS_STATUSES}
    assert succeeded == {"ada@example.com", "+14155550100", "bea@example.com"}
    assert (body["processed_count"], body["success_count"], body["failed_count"]) == (5, 3, 2)
    assert sorted(refusing_smtp.accepted) == ["ada@example.com", "bea@example.com"]
    sms = ProviderOutbox.objects.get(channel=Channel.SMS, to="+14155550100")
    assert sent[1]["invite_url"] in sms.text
    job = BatchJob.objects.get(pk=job_id)
    assert job.started_at and job.completed_at and job.processed_count == job.success_count + job.failed_count
