"""Invitation tokens are credentials: never at rest in clear, never in a log line, yet every
delivery, retry and dead-letter replay still sends a link that opens the invitation.

Driven end to end: invitations posted over HTTP to the live server, sent by a real Celery worker
on RabbitMQ (first against an SMTP server that is down, then replayed from its dead letter
once it is up), the links followed over HTTP, and every text and JSON column of the database
searched for the tokens at each step.
"""
from __future__ import annotations

import re
import signal

import pytest
import requests
from aiosmtpd.controller import Controller
from django.db import transaction
from rest_framework.authtoken.models import Token

from invitations.models import StoryInvitation
from narrations.services import narrations_ensure_shared, story_create
from notifications.engine.retry import deliveries_dead_letter
from notifications.enums import Channel, DeliveryStatus, NotificationStatus
from notifications.models import DeadLetter, Notification, NotificationDelivery
from providers.models import ProviderOutbox

from ..conftest import start_worker, wait_until
from ..providers.test_email import _Inbox
from .conftest import columns_holding, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def worker(transactional_db, tmp_path, monkeypatch, settings, celery_purge, live_server, smtp_port):
    """A real worker whose email goes to an SMTP server on `smtp_port` (down until the test starts it)."""
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(smtp_port))
    monkeypatch.setenv("SITE_URL", live_server.url)
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    process = start_worker(tmp_path, name="tokens")
    yield process
    if process.proc.poll() is None:
        process.kill(signal.SIGTERM)


def _assert_nowhere_at_rest(tokens: list[str]) -> None:
    for token in tokens:
        assert columns_holding(token) == [], f"token {token[:6]}… stored in clear"


def test_links_work_through_retry_and_replay_and_no_token_is_ever_at_rest(phone_consent, worker, live_server, user, smtp_port):
    story = story_create(owner=user, title="The Lighthouse", content="The lamp at the end of the pier.", characters=[])
    narrations_ensure_shared(story=story, styles=["jovial"])
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"

    answer = http.post(f"{live_server.url}/api/v1/stories/{story.pk}/invitations/", json={
        "message": "For you.",
        "invitations": [{"email": "ada@example.com", "conversation_style": "jovial"},
                        {"phone": "+14155550100", "conversation_style": "jovial"}],
    }, timeout=30)
    assert answer.status_code == 201, answer.text
    links = {i["email"] or i["phone"]: i["invite_url"] for i in answer.json()["invitations"]}
    tokens = [link.rsplit("/i/", 1)[1] for link in links.values()]

    # SMS goes out at once (log provider); the email fails transiently: SMTP is down.
    email = wait_until(
        lambda: NotificationDelivery.objects.filter(channel=Channel.EMAIL, recipient_address="ada@example.com",
                                                    status=DeliveryStatus.PENDING, attempts__gte=1).exclude(error="").first(),
        timeout=60, message=f"a failed first email attempt\n{worker.log[-3000:]}")
    sms = wait_until(lambda: ProviderOutbox.objects.filter(channel=Channel.SMS, to="+14155550100").first(),
                     timeout=60, message="the SMS in the log provider's outbox")
    _assert_nowhere_at_rest(tokens)
    notification = Notification.objects.get(pk=email.notification_id)
    assert notification.data["inviteUrl"].startswith("sealed:v1:")  # waiting for the retry, sealed

    # Exhausted: an operator finds it among the dead letters, without the link in clear.
    with transaction.atomic():
        deliveries_dead_letter(delivery_ids=[email.pk], reason="SMTP down")
    letter = DeadLetter.objects.get(delivery_id=email.pk)
    assert letter.payload["data"]["inviteUrl"] == "[sealed]"
    _assert_nowhere_at_rest(tokens)

    # The SMS link opens the invitation.
    assert links["+14155550100"] in sms.text
    landing = requests.get(links["+14155550100"], timeout=30)
    assert landing.status_code == 200 and "The Lighthouse" in landing.text

    # SMTP comes back; the operator replays the dead letter over the API: the email carries a working link.
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        replay = http.post(f"{live_server.url}/api/v1/admin/dead-letters/{letter.pk}/replay/", timeout=30)
        assert replay.status_code == 202, replay.text
        wait_until(lambda: inbox.messages, timeout=60, message=f"the replayed email\n{worker.log[-3000:]}")
    finally:
        controller.stop()
    _from, rcpts, message = inbox.messages[0]
    assert rcpts == ["ada@example.com"]
    text = message.get_body(preferencelist=("plain",)).get_content()
    emailed = re.search(r"https?://\S+/i/[A-Za-z0-9_-]+", text).group(0)
    assert emailed == links["ada@example.com"]
    landing = requests.get(emailed, timeout=30)
    assert landing.status_code == 200 and "The Lighthouse" in landing.text

    # Everything went out: the sealed link itself is gone; nothing holds a token.
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == NotificationStatus.DELIVERED,
               timeout=60, message="the notification to be delivered")
    assert "inviteUrl" not in Notification.objects.get(pk=notification.pk).data
    stored = NotificationDelivery.objects.get(pk=email.pk)
    assert "/i/[redacted]" in stored.rendered["body"] and stored.status == DeliveryStatus.SENT
    _assert_nowhere_at_rest(tokens)
    assert StoryInvitation.objects.filter(status="pending").count() == 2
    for token in tokens:
        assert token not in worker.log


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_request_logs_of_the_production_servers_never_show_a_token(server, server_factory):
    port = free_port()
    command = {
        "gunicorn": ["gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                     "--access-logfile", "-"],
        "uvicorn": ["uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
    }[server]
    web = server_factory(command, port=port, name=server)
    token = "Zq9" + "x" * 40
    assert requests.get(f"{web.url}/i/{token}", timeout=30).status_code == 404
    assert requests.get(f"{web.url}/api/v1/invitations/by-token/{token}/", timeout=30).status_code == 404
    assert requests.post(f"{web.url}/api/v1/invitations/by-token/{token}/accept/", timeout=30).status_code == 404

    log = wait_until(lambda: web.log if web.log.count("/by-token/") >= 2 else None, timeout=30,
                     message=f"{server}'s request log")
    assert token not in log, log
    assert "/i/***" in log and "/by-token/***" in log
