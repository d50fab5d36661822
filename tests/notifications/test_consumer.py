"""The AMQP event consumer on a real RabbitMQ, reading the test database."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Producer, Queue

from notifications.enums import Channel
from notifications.management.commands.consume_events import (
    EventConsumer,
    bus_connection,
)
from notifications.models import IdempotencyRecord, Notification

from ..conftest import ROOT, _worker_env, wait_until
from .intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.redis]


@pytest.fixture
def bus(settings):
    """Private queue names for this test; the queues are deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    settings.EVENT_QUEUE = f"test.events.{suffix}"
    settings.EVENT_DLQ = f"test.dlq.{suffix}"
    yield settings
    with Connection(settings.EVENT_BUS_URL) as conn:
        channel = conn.channel()
        for name in (settings.EVENT_QUEUE, settings.EVENT_DLQ):
            try:
                channel.queue_delete(name)
            except conn.channel_errors:  # already gone: the channel is closed, open another
                channel = conn.channel()


def _publish(body, *, routing_key: str = EVENT, raw: bool = False, **properties) -> None:
    """What any other service would do: a plain kombu Producer on the topic exchange."""
    with Connection(settings.EVENT_BUS_URL) as conn:
        exchange = Exchange(settings.EVENT_EXCHANGE, type="topic", durable=True)
        producer = Producer(conn.channel(), exchange=exchange)
        if raw:
            producer.publish(body, routing_key=routing_key, content_type="application/json", content_encoding="utf-8",
                             declare=[exchange], **properties)
        else:
            producer.publish(body, routing_key=routing_key, serializer="json", declare=[exchange], **properties)


def _queue_depth(name: str) -> int:
    with Connection(settings.EVENT_BUS_URL) as conn:
        _, count, _ = Queue(name, channel=conn.channel()).queue_declare(passive=True)
        return count


def _dead_letters(expected: int, timeout: float = 20.0) -> list:
    found = []
    with Connection(settings.EVENT_BUS_URL) as conn:
        channel = conn.channel()

        def poll():
            message = channel.basic_get(queue=settings.EVENT_DLQ, no_ack=True)
            if message is not None:
                found.append(message)
            return len(found) >= expected

        wait_until(poll, timeout=timeout, message=f"{expected} dead letter(s)")
    return found


class ConsumerThread:
    def __init__(self) -> None:
        self.consumer = EventConsumer(bus_connection(), prefetch=5)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        from django.db import connection

        original = self.consumer.on_consume_ready

        def ready(*args, **kwargs):
            original(*args, **kwargs)
            self.ready.set()

        self.consumer.on_consume_ready = ready
        try:
            self.consumer.run()
        finally:
            connection.close()

    def __enter__(self) -> EventConsumer:
        self.thread.start()
        assert self.ready.wait(20), "consumer did not start"
        return self.consumer

    def __exit__(self, *exc) -> None:
        self.consumer.should_stop = True
        self.thread.join(20)
        self.consumer.connection.release()


@pytest.fixture
def event_type(transactional_db):
    return intake_event_type()


@pytest.fixture
def people(transactional_db, organization, event_type):
    return member(organization), member(organization)


def test_published_event_becomes_notifications_and_sigterm_stops_the_consumer(bus, organization, people, tmp_path):
    env = _worker_env()
    env.update(EVENT_QUEUE=bus.EVENT_QUEUE, EVENT_DLQ=bus.EVENT_DLQ, DEBUG="true")
    log_path = tmp_path / "consumer.log"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "consume_events", "--prefetch", "5"], cwd=ROOT, env=env,
        stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_until(lambda: "consuming" in log_path.read_text(), timeout=30, message="consumer ready")
        _publish({
            "eventType": EVENT, "organizationId": organization.slug, "recipientIds": [p.pk for p in people],
            "suggestedChannels": ["IN_APP", "EMAIL"], "correlationId": "bus-1", "data": {"taskTitle": "From the bus"},
        }, message_id="msg-1")
        rows = wait_until(
            lambda: list(Notification.objects.filter(correlation_id="bus-1")) if Notification.objects.filter(correlation_id="bus-1").count() == 2 else None,
            timeout=30, message="notifications from the bus",
        )
        assert {n.recipient_id for n in rows} == {p.pk for p in people}
        assert all(n.source_module == "amqp" and n.channels_requested == [Channel.IN_APP, Channel.EMAIL] for n in rows)
        wait_until(lambda: _queue_depth(bus.EVENT_QUEUE) == 0, message="main queue drained")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped (1 processed, 0 dead-lettered)" in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_poison_messages_go_to_the_dlq_with_their_reason_and_never_loop(bus, organization, people, monkeypatch):
    from notifications.engine import payloads

    emit = payloads.event_from_bus

    def flaky(*, body, **kwargs):
        # Valid shape, but the database fails it every time (an outage that outlasts the retries).
        if isinstance(body, dict) and body.get("correlation_id") == "always-fails":
            raise RuntimeError("database unavailable")
        return emit(body=body, **kwargs)

    monkeypatch.setattr(payloads, "event_from_bus", flaky)
    with ConsumerThread() as consumer:
        _publish(b"{not json", raw=True)
        _publish({"type": "no.such.event", "organization_id": organization.pk, "recipient_ids": [people[0].pk]}, routing_key="no.such.event")
        _publish({"organization_id": "no-such-org", "recipient_ids": [people[0].pk]})
        _publish({"organization_id": organization.pk, "recipient_ids": [people[0].pk], "correlation_id": "always-fails"})
        letters = _dead_letters(4, timeout=30)
        wait_until(lambda: consumer.dead_lettered == 4, message="consumer counted the dead letters")
    reasons = {}
    for message in letters:
        envelope = json.loads(message.body)
        reasons[message.headers["x-death-reason"]] = envelope
        assert envelope["reason"] == message.headers["x-death-reason"]
        assert "original_body" in envelope and envelope["error"]
    assert set(reasons) == {"invalid_json", "validationerror", "notfound", "max_attempts"}
    assert reasons["invalid_json"]["original_body"] == "{not json"
    assert "type" in reasons["validationerror"]["error"] and reasons["validationerror"]["routing_key"] == "no.such.event"
    assert reasons["max_attempts"]["attempts"] == 3 and reasons["max_attempts"]["routing_key"] == EVENT
    assert _queue_depth(bus.EVENT_QUEUE) == 0
    assert _queue_depth(bus.EVENT_DLQ) == 0  # all four were read above, nothing else landed
    assert not Notification.objects.exists()


def test_redelivered_message_id_creates_nothing_twice(bus, organization, people):
    body = {"organization_id": str(organization.pk), "recipient_ids": [people[0].pk], "correlation_id": "dup"}
    with ConsumerThread() as consumer:
        _publish(body, message_id="same-id")
        _publish(body, message_id="same-id")
        wait_until(lambda: consumer.processed == 2, message="both messages handled")
    assert Notification.objects.filter(correlation_id="dup").count() == 1
    assert IdempotencyRecord.objects.filter(key="amqp:same-id", organization=organization).count() == 1
    assert _queue_depth(bus.EVENT_QUEUE) == 0


def test_embedded_mode_starts_and_idles_without_a_bus(transactional_db, tmp_path):
    env = _worker_env()
    for name in ("CELERY_BROKER_URL", "EVENT_BUS_URL"):
        env.pop(name, None)
    env.update(TROUBADOUR_VAR_DIR=str(tmp_path / "var"), DEBUG="true")
    log_path = tmp_path / "embedded.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "consume_events"], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "consuming" in log_path.read_text(), timeout=30, message="embedded consumer ready")
        time.sleep(2)
        assert proc.poll() is None, log_path.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert Path(tmp_path / "var" / "broker").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
