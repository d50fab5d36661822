"""End to end: invitations posted to the API are delivered by a real Celery worker on RabbitMQ."""
from __future__ import annotations

import signal

import pytest

from invitations.models import StoryInvitation
from narrations.services import narrations_ensure_shared
from notifications.enums import Channel
from notifications.models import NotificationDelivery
from providers.models import ProviderOutbox

from ..conftest import start_worker, wait_until
from .conftest import invite_url

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
def mail_dir(tmp_path):
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def mail_worker(transactional_db, tmp_path, mail_dir, monkeypatch, settings, celery_purge):
    """A worker process whose email backend writes files we can read (it inherits os.environ)."""
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.fail("RabbitMQ required")
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(mail_dir))
    monkeypatch.setenv("SITE_URL", "https://troubadour.example")
    worker = start_worker(tmp_path, name="invitations")
    yield worker
    if worker.proc.poll() is None:
        worker.kill(signal.SIGTERM)


def _mail_text(mail_dir) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(mail_dir.glob("*.log")))


def test_posted_invitations_are_delivered_by_the_worker(phone_consent, mail_worker, mail_dir, auth_client, story, settings):
    # The web process queues to the broker; only the worker process sends.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.SITE_URL = "https://troubadour.example"
    narrations_ensure_shared(story=story, styles=["jovial"])  # nothing to pre-generate: the worker only delivers

    response = auth_client.post(
        invite_url(story.pk),
        {"message": "For you both.",
         "invitations": [{"email": "ada@example.com", "conversation_style": "jovial"},
                         {"phone": "+14155550100", "conversation_style": "jovial"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    links = {i["email"] or i["phone"]: i["invite_url"] for i in response.json()["invitations"]}

    text = wait_until(lambda: links["ada@example.com"] in _mail_text(mail_dir) and _mail_text(mail_dir),
                      timeout=60, message=f"the invitation email in {mail_dir}\n{mail_worker.log[-3000:]}")
    assert "To: ada@example.com" in text and "For you both." in text
    assert links["+14155550100"] not in text
    sms = wait_until(lambda: ProviderOutbox.objects.filter(channel=Channel.SMS, to="+14155550100").first(),
                     timeout=60, message="the SMS in the log provider's outbox")
    assert links["+14155550100"] in sms.text

    def settled():
        rows = {r["email"] or r["phone"]: r["deliveries"] for r in auth_client.get(invite_url(story.pk)).json()}
        return rows if rows == {"ada@example.com": {"EMAIL": "sent"}, "+14155550100": {"SMS": "delivered"}} else None

    wait_until(settled, timeout=60, message="the list to show the worker's delivery statuses")
    assert StoryInvitation.objects.filter(notification__isnull=False).count() == 2
    # Sent by the worker: the provider it used and its message id are on the delivery rows.
    email = NotificationDelivery.objects.get(channel=Channel.EMAIL, recipient_address="ada@example.com")
    assert email.provider == "django_email" and email.provider_message_id
