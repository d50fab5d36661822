"""End to end on PostgreSQL + RabbitMQ with real processes: the event consumer and a Celery
worker (not eager) that sends email to an SMTP server on loopback.

AMQP event → consumer → notifications → deliver_batch on the worker → inbox API + email;
the same through REST with Idempotency-Key replay, 409 while in flight and 422 on another body.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from email import message_from_bytes, policy

import pytest

from notifications.enums import Channel, DeliveryStatus, IdempotencyStatus
from notifications.models import IdempotencyRecord, NotificationDelivery
from tests.conftest import ROOT, _worker_env, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class SmtpSink:
    """Keeps every message the worker sends (aiosmtpd handler)."""

    def __init__(self) -> None:
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def to(self, address: str):
        with self.lock:
            return [m for rcpts, m in self.messages if address in rcpts]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(monkeypatch):
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    # The worker process reads these from its environment (see _worker_env).
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(controller.port))
    yield sink
    controller.stop()


@pytest.fixture
def worker(smtp_sink, request):
    # Requested after smtp_sink so the worker starts with the SMTP environment.
    return request.getfixturevalue("live_worker")


@pytest.fixture
def consumer(worker, tmp_path):
    log_path = tmp_path / "consumer.log"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "consume_events"], cwd=ROOT, env=_worker_env(),
        stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    log = lambda: log_path.read_text(errors="replace") if log_path.exists() else ""  # noqa: E731
    wait_until(lambda: "consuming" in log() or proc.poll() is not None, timeout=60, message="consumer ready")
    assert proc.poll() is None, log()
    yield log
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _publish(routing_key: str, body: dict) -> None:
    from kombu import Connection, Exchange, Producer

    exchange = Exchange("notification.events", type="topic", durable=True)
    with Connection(os.environ["CELERY_BROKER_URL"], transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel, exchange=exchange)
        producer.publish(json.dumps(body).encode(), routing_key=routing_key, content_type="application/json",
                         content_encoding="utf-8", message_id=str(uuid.uuid4()), delivery_mode=2, declare=[exchange])


def _inbox(auth_client) -> list[dict]:
    response = auth_client.get("/api/v1/notifications/")
    assert response.status_code == 200
    return response.data["results"]


def test_amqp_event_reaches_the_inbox_and_the_mailbox(consumer, worker, smtp_sink, auth_client, user, organization):
    _publish("task.assigned", {
        "type": "task.assigned", "organizationId": organization.pk, "recipientIds": [str(user.pk)],
        "actor": {"id": "42", "type": "user"}, "resource": {"type": "task", "id": "T-7", "name": "Fix login"},
        "data": {"taskTitle": "Fix <login>", "assignerName": "Grace", "projectName": "Apollo"},
        "suggestedChannels": ["IN_APP", "EMAIL"],
    })
    try:
        items = wait_until(lambda: _inbox(auth_client), timeout=60, message="inbox item")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nconsumer:\n{consumer()[-3000:]}\nworker:\n{worker.log[-3000:]}") from None
    [item] = items
    assert item["title"] == "New task: Fix <login>"
    assert item["body"] == 'Grace assigned you "Fix <login>" in Apollo.'
    assert auth_client.get("/api/v1/notifications/unread-count/").data == {"count": 1}

    [message] = wait_until(lambda: smtp_sink.to(user.email), timeout=60, message=f"email\n{worker.log[-3000:]}")
    assert message["Subject"] == "New task: Fix <login>"
    assert 'Grace assigned you "Fix <login>" in Apollo.' in message.get_body(preferencelist=("plain",)).get_content()
    # HTML part: event data escaped, the template's own markup kept.
    html = message.get_body(preferencelist=("html",)).get_content()
    assert 'Grace assigned you "Fix &lt;login&gt;" in Apollo.</p>' in html
    email_row = NotificationDelivery.objects.get(notification_id=item["id"], channel=Channel.EMAIL)
    wait_until(lambda: NotificationDelivery.objects.filter(pk=email_row.pk, status=DeliveryStatus.SENT).exists(), timeout=30)
    email_row.refresh_from_db()
    assert email_row.provider == "django_email" and email_row.attempts == 1 and email_row.sent_at is not None
    assert "deliver_batch" in worker.log


def test_rest_event_with_idempotency_key(worker, smtp_sink, key_client, auth_client, user, organization):
    body = {"type": "task.assigned", "recipient_ids": [str(user.pk)], "channels": ["IN_APP", "EMAIL"],
            "resource": {"type": "task", "id": "T-8", "name": "Ship it"}, "data": {"taskTitle": "Ship it"}}
    first = key_client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY="evt-1")
    assert first.status_code == 202, first.data
    replay = key_client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY="evt-1")
    assert replay.status_code == 202 and replay["Idempotency-Replay"] == "true"
    assert replay.data == first.data
    changed = key_client.post("/api/v1/events/", {**body, "data": {"taskTitle": "Other"}}, format="json",
                              HTTP_IDEMPOTENCY_KEY="evt-1")
    assert changed.status_code == 422

    # Another request holding the key right now (its transaction has not finished).
    from notifications.engine.payloads import event_payload_hash

    IdempotencyRecord.objects.create(organization=organization, key="evt-2", request_hash=event_payload_hash(body),
                                     status=IdempotencyStatus.IN_FLIGHT)
    busy = key_client.post("/api/v1/events/", body, format="json", HTTP_IDEMPOTENCY_KEY="evt-2")
    assert busy.status_code == 409

    [notification] = first.data["notifications"]
    items = wait_until(lambda: _inbox(auth_client), timeout=60, message=f"inbox item\n{worker.log[-3000:]}")
    assert [i["id"] for i in items] == [notification["id"]]  # one notification for the three accepted calls
    [message] = wait_until(lambda: smtp_sink.to(user.email), timeout=60, message="email")
    assert message["Subject"] == "New task: Ship it"
    assert len(smtp_sink.to(user.email)) == 1
