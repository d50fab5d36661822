"""The command bus: a plain kombu client drives a real `manage.py consume_commands` process.

Each command is published on the topic exchange `notification.commands` with reply_to and a
correlation id, and the answer is read from the reply queue; poison commands are read back
from the dead-letter queue. The end-to-end test adds `consume_events` and a Celery worker.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from kombu import Connection, Exchange, Producer, Queue

from accounts.models import Membership
from notifications.engine.intake import event_emit
from notifications.enums import AuditAction, Channel, DeadLetterStatus, DeliveryStatus, NotificationStatus
from notifications.models import (
    BusCommand,
    DeadLetter,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
    NotificationPreference,
    QuietHours,
)
from tests.conftest import ROOT, _worker_env, wait_until
from tests.factories import OrganizationFactory

from .intake_support import EVENT, intake_event_type
from .test_e2e import smtp_sink  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

User = get_user_model()


class BusClient:
    """What a client application does: publish a command, wait for the answer on its own queue."""

    def __init__(self, url: str) -> None:
        self.conn = Connection(url, transport_options={"confirm_publish": True})
        self.channel = self.conn.channel()
        self.exchange = Exchange("notification.commands", type="topic", durable=True)
        self.reply_queue = Queue(f"test.replies.{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True, durable=False)
        self.reply_queue(self.channel).declare()
        self.producer = Producer(self.channel, exchange=self.exchange)

    def publish(self, command: str, body: Any, *, command_id: str | None = None, reply: bool = True, raw: bool = False,
                correlation_id: str | None = None) -> str:
        correlation_id = correlation_id or uuid.uuid4().hex
        properties: dict[str, Any] = {"correlation_id": correlation_id}
        if reply:
            properties["reply_to"] = self.reply_queue.name
        if command_id:
            properties["message_id"] = command_id
        payload = body if raw else json.dumps(body).encode()
        self.producer.publish(payload, routing_key=command, content_type="application/json", content_encoding="utf-8",
                              delivery_mode=2, declare=[self.exchange], **properties)
        return correlation_id

    def replies(self, count: int, timeout: float = 30.0) -> dict[str, dict]:
        found: dict[str, dict] = {}

        def poll():
            message = self.channel.basic_get(queue=self.reply_queue.name, no_ack=True)
            if message is not None:
                found[message.properties["correlation_id"]] = json.loads(message.body)
            return len(found) >= count

        wait_until(poll, timeout=timeout, interval=0.05, message=f"{count} replies")
        return found

    def call(self, command: str, body: Any, **kwargs) -> dict:
        correlation_id = self.publish(command, body, command_id=kwargs.pop("command_id", None) or uuid.uuid4().hex, **kwargs)
        return self.replies(1)[correlation_id]

    def close(self) -> None:
        self.conn.release()


@pytest.fixture
def command_bus(tmp_path):
    """A real consume_commands process on private queue names; the queues go afterwards."""
    suffix = uuid.uuid4().hex[:8]
    queue, dlq = f"test.commands.{suffix}", f"test.commands.dlq.{suffix}"
    env = _worker_env()
    env.update(COMMAND_QUEUE=queue, COMMAND_DLQ=dlq, DEBUG="true")
    log_path = tmp_path / "commands.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "consume_commands", "--prefetch", "5"], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    log = lambda: log_path.read_text(errors="replace") if log_path.exists() else ""  # noqa: E731
    client = None
    try:
        wait_until(lambda: "consuming" in log() or proc.poll() is not None, timeout=60, message="command consumer ready")
        assert proc.poll() is None, log()
        client = BusClient(settings.EVENT_BUS_URL)
        client.queue, client.dlq, client.log, client.proc = queue, dlq, log, proc
        yield client
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        with Connection(settings.EVENT_BUS_URL) as conn:
            channel = conn.channel()
            for name in (queue, dlq):
                try:
                    channel.queue_delete(name)
                except conn.channel_errors:
                    channel = conn.channel()


def _dead_letters(bus, expected: int, timeout: float = 30.0) -> list[dict]:
    found = []
    with Connection(settings.EVENT_BUS_URL) as conn:
        channel = conn.channel()

        def poll():
            message = channel.basic_get(queue=bus.dlq, no_ack=True)
            if message is not None:
                found.append({"reason": message.headers["x-death-reason"], **json.loads(message.body)})
            return len(found) >= expected

        wait_until(poll, timeout=timeout, message=f"{expected} dead letter(s)")
    return found


@pytest.fixture
def event_type(transactional_db):
    return intake_event_type(allowed_channels=[Channel.IN_APP, Channel.EMAIL, Channel.SMS])


def test_every_command_answers_on_reply_to(command_bus, organization, event_type):
    bus, org = command_bus, organization.pk
    # subscriber.upsert: created, then updated; the reply carries no address.
    created = bus.call("subscriber.upsert", {"organization_id": org, "external_id": "bus-1", "email": "Bus1@Example.com",
                                             "phone": "+14155550100", "timezone": "Europe/Paris"})
    assert created["ok"] is True, (created, bus.log())
    assert created["result"]["created"] is True and "email" not in created["result"]
    user_id = created["result"]["id"]
    assert User.objects.get(pk=user_id).email == "bus1@example.com"
    updated = bus.call("subscriber.upsert", {"organization_id": organization.slug, "external_id": "bus-1", "display_name": "Bea"})
    assert updated["result"]["status"] == "updated" and User.objects.get(pk=user_id).display_name == "Bea"

    # preferences.set: the user's own rows, as PUT /api/v1/preferences/ takes them.
    prefs = bus.call("preferences.set", {"organization_id": org, "external_id": "bus-1",
                                         "preferences": [{"channels": {"SMS": {"enabled": False}}}]})
    assert prefs["ok"] is True, prefs
    row = NotificationPreference.objects.get(user_id=user_id)
    assert row.channel_preferences.get(channel=Channel.SMS).enabled is False

    # notification.cancel of a held notification: it never goes out.
    QuietHours.objects.create(user_id=user_id, organization=organization, dnd_until=timezone.now() + timedelta(hours=2))
    held = event_emit(organization=organization, type=EVENT, recipients=[{"external_id": "bus-1"}], channels=[Channel.EMAIL],
                      correlation_id="corr-9").notifications[0][0]
    assert Notification.objects.get(pk=held).status == NotificationStatus.HELD
    cancelled = bus.call("notification.cancel", {"organization_id": org, "correlation_id": "corr-9"})
    assert cancelled["result"]["notifications_cancelled"] == [held] and cancelled["result"]["deliveries_cancelled"] == 1
    assert Notification.objects.get(pk=held).status == NotificationStatus.CANCELLED
    assert NotificationDelivery.objects.get(notification_id=held).status == DeliveryStatus.CANCELLED

    # notification.acknowledge on behalf of the subscriber.
    QuietHours.objects.filter(user_id=user_id).delete()
    sent = event_emit(organization=organization, type=EVENT, recipients=[{"external_id": "bus-1"}],
                      channels=[Channel.EMAIL]).notifications[0][0]
    ack = bus.call("notification.acknowledge", {"organization_id": org, "notification_id": sent, "by_external_id": "bus-1"})
    assert ack["ok"] is True and Notification.objects.get(pk=sent).acknowledged_at is not None
    assert NotificationAuditLog.objects.filter(action=AuditAction.ACKNOWLEDGED, notification_id=sent, user_id=user_id).exists()

    # delivery.retry and dead_letter.replay: both start the delivery over.
    delivery = NotificationDelivery.objects.get(notification_id=sent)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    retried = bus.call("delivery.retry", {"organization_id": org, "delivery_ids": [delivery.pk]})
    assert retried["ok"] is True and retried["result"]["deliveries"] == [{"id": delivery.pk, "status": "PENDING"}]
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    letter = DeadLetter.objects.create(organization=organization, delivery=delivery, channel=Channel.EMAIL, reason="test",
                                       payload={"notification_id": sent})
    replayed = bus.call("dead_letter.replay", {"organization_id": org, "dead_letter_ids": [letter.pk]})
    assert replayed["ok"] is True and replayed["result"]["delivery_ids"] == [delivery.pk]
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.REPLAYED

    # subscriber.delete: anonymized.
    deleted = bus.call("subscriber.delete", {"organization_id": org, "external_id": "bus-1"})
    assert deleted["ok"] is True and deleted["result"]["deleted"] is True
    user = User.objects.get(pk=user_id)
    assert (user.email, user.is_active) == ("", False)

    # Every command is recorded under its id and audited as SYSTEM.
    assert BusCommand.objects.filter(organization=organization).count() == 8
    audit = NotificationAuditLog.objects.filter(action=AuditAction.COMMAND_EXECUTED)
    assert audit.count() == 8 and set(audit.values_list("actor_type", flat=True)) == {"SYSTEM"}


def test_a_redelivered_command_acts_once_and_answers_again(command_bus, organization):
    bus = command_bus
    body = {"organization_id": organization.pk, "external_id": "twice", "email": "twice@example.com"}
    first = bus.publish("subscriber.upsert", body, command_id="cmd-1")
    second = bus.publish("subscriber.upsert", {**body, "email": "changed@example.com"}, command_id="cmd-1")
    # The command id can also travel in the body.
    third = bus.publish("subscriber.upsert", {**body, "command_id": "cmd-2", "display_name": "T"})
    answers = bus.replies(3)
    assert answers[first]["result"]["created"] is True and answers[first]["replayed"] is False
    assert answers[second]["replayed"] is True and answers[second]["result"] == answers[first]["result"]
    assert answers[third]["result"]["status"] == "updated"
    assert Membership.objects.filter(external_id="twice").count() == 1
    assert User.objects.get(memberships__external_id="twice").email == "twice@example.com"
    assert BusCommand.objects.count() == 2


def test_a_command_for_another_organizations_objects_changes_nothing(command_bus, organization, event_type):
    bus = command_bus
    bus.call("subscriber.upsert", {"organization_id": organization.pk, "external_id": "mine", "email": "mine@example.com"})
    QuietHours.objects.create(user=User.objects.get(memberships__external_id="mine"), organization=organization,
                              dnd_until=timezone.now() + timedelta(hours=2))
    held = event_emit(organization=organization, type=EVENT, recipients=[{"external_id": "mine"}], channels=[Channel.EMAIL],
                      correlation_id="shared").notifications[0][0]
    delivery = NotificationDelivery.objects.get(notification_id=held)
    intruder = OrganizationFactory()
    answers = {
        "cancel_ids": bus.call("notification.cancel", {"organization_id": intruder.pk, "notification_ids": [held]}),
        "cancel_corr": bus.call("notification.cancel", {"organization_id": intruder.pk, "correlation_id": "shared"}),
        "ack": bus.call("notification.acknowledge", {"organization_id": intruder.pk, "notification_id": held}),
        "retry": bus.call("delivery.retry", {"organization_id": intruder.pk, "delivery_ids": [delivery.pk]}),
        "delete": bus.call("subscriber.delete", {"organization_id": intruder.pk, "external_id": "mine"}),
        "prefs": bus.call("preferences.set", {"organization_id": intruder.pk, "external_id": "mine", "preferences": []}),
    }
    assert answers["cancel_ids"]["ok"] is True and answers["cancel_ids"]["result"]["not_found"] == [held]
    assert answers["cancel_corr"]["result"]["deliveries_cancelled"] == 0
    for name in ("ack", "retry", "delete", "prefs"):
        assert answers[name]["ok"] is False and answers[name]["reason"] == "notfound", (name, answers[name])
    notification = Notification.objects.get(pk=held)
    assert notification.status == NotificationStatus.HELD and notification.acknowledged_at is None
    assert NotificationDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.HELD
    assert User.objects.get(memberships__external_id="mine").is_active
    assert not NotificationPreference.objects.exists()
    # The upsert of the same external id in the other organization is a different subscriber.
    theirs = bus.call("subscriber.upsert", {"organization_id": intruder.pk, "external_id": "mine", "email": "t@example.com"})
    assert theirs["result"]["created"] is True
    assert User.objects.get(memberships__external_id="mine", memberships__organization=organization).email == "mine@example.com"
    assert len(_dead_letters(bus, 4)) == 4


def test_poison_commands_land_in_the_dlq_with_their_reason_and_never_loop(command_bus, organization):
    bus = command_bus
    org = organization.pk
    bus.publish("subscriber.upsert", b"{not json", raw=True, command_id="p1")
    bus.publish("subscriber.explode", {"organization_id": org}, command_id="p2")
    bus.publish("subscriber.upsert", {"external_id": "x"}, command_id="p3")
    bus.publish("subscriber.upsert", {"organization_id": "no-such-org", "external_id": "x"}, command_id="p4")
    bus.publish("subscriber.upsert", {"organization_id": org, "external_id": "x"})  # no command id at all
    bus.publish("subscriber.upsert", {"organization_id": org, "external_id": "x", "email": "nope"}, command_id="p6")
    bus.publish("notification.cancel", {"organization_id": org}, command_id="p7")
    # PostgreSQL cannot store a NUL character: refused at the door as bad JSON, dead-lettered at once.
    bus.publish("subscriber.upsert", {"organization_id": org, "external_id": "x", "display_name": "a\u0000b"}, command_id="p8")
    letters = _dead_letters(bus, 8, timeout=60)
    by_id = {}
    for letter in letters:
        assert letter["reason"] and letter["error"] and "original_body" in letter
        body = letter["original_body"]
        by_id[letter["message_id"] or (body.get("command_id") if isinstance(body, dict) else None) or "none"] = letter
    assert by_id["p1"]["reason"] == "invalid_json" and by_id["p1"]["original_body"] == "{not json"
    assert by_id["p2"]["reason"] == "validationerror" and "Unknown command" in str(by_id["p2"]["error"])
    assert by_id["p3"]["reason"] == "validationerror" and "organization_id" in str(by_id["p3"]["error"])
    assert by_id["p4"]["reason"] == "notfound"
    assert by_id["none"]["reason"] == "validationerror" and "command_id" in str(by_id["none"]["error"])
    assert by_id["p6"]["reason"] == "validationerror" and "email" in str(by_id["p6"]["error"])
    assert by_id["p7"]["reason"] == "validationerror"
    assert by_id["p8"]["reason"] == "invalid_json" and by_id["p8"]["attempts"] == 1 and "NUL" in by_id["p8"]["error"]
    # Every sender with reply_to heard about its failure.
    replies = bus.replies(8)
    assert all(r["ok"] is False and r["error"] for r in replies.values())
    wait_until(lambda: "dead-lettered" in bus.log(), message="log")
    with Connection(settings.EVENT_BUS_URL) as conn:
        _, depth, _ = Queue(bus.queue, channel=conn.channel()).queue_declare(passive=True)
        _, dlq_depth, _ = Queue(bus.dlq, channel=conn.channel()).queue_declare(passive=True)
    assert (depth, dlq_depth) == (0, 0)
    assert not Membership.objects.filter(external_id="x").exists()
    assert NotificationAuditLog.objects.filter(action=AuditAction.COMMAND_FAILED).count() == 3  # the ones with an organization
    bus.proc.send_signal(signal.SIGTERM)
    assert bus.proc.wait(timeout=30) == 0
    assert "consume_commands stopped (0 processed, 8 dead-lettered)" in bus.log()


def test_subscriber_created_over_the_bus_receives_an_event_by_external_id(command_bus, smtp_sink, tmp_path, organization,  # noqa: F811
                                                                        event_type, request):
    worker = request.getfixturevalue("live_worker")
    bus = command_bus
    answer = bus.call("subscriber.upsert", {"organization_id": organization.pk, "external_id": "crm-77",
                                            "email": "crm77@example.com", "display_name": "Casey"})
    assert answer["ok"] is True
    suffix = uuid.uuid4().hex[:8]
    env = _worker_env()
    env.update(EVENT_QUEUE=f"test.events.{suffix}", EVENT_DLQ=f"test.dlq.{suffix}")
    log_path = tmp_path / "events.log"
    events = subprocess.Popen([sys.executable, "manage.py", "consume_events"], cwd=ROOT, env=env,
                              stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "consuming" in log_path.read_text(errors="replace"), timeout=60, message="event consumer ready")
        exchange = Exchange("notification.events", type="topic", durable=True)
        with Connection(settings.EVENT_BUS_URL) as conn:
            Producer(conn.default_channel, exchange=exchange).publish(
                json.dumps({"type": EVENT, "organizationId": organization.pk, "recipients": [{"externalId": "crm-77"}],
                            "channels": ["EMAIL"], "data": {"taskTitle": "Over the bus"}}).encode(),
                routing_key=EVENT, content_type="application/json", content_encoding="utf-8",
                message_id=str(uuid.uuid4()), declare=[exchange],
            )
        try:
            [message] = wait_until(lambda: smtp_sink.to("crm77@example.com"), timeout=60, message="email to the subscriber")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nevents:\n{log_path.read_text()[-3000:]}\nworker:\n{worker.log[-3000:]}") from None
        notification = Notification.objects.get(recipient__memberships__external_id="crm-77")
        assert notification.source_module == "amqp"
        wait_until(lambda: NotificationDelivery.objects.filter(notification=notification, status=DeliveryStatus.SENT).exists())
    finally:
        os.killpg(events.pid, signal.SIGTERM)
        events.wait(timeout=30)
        with Connection(settings.EVENT_BUS_URL) as conn:
            channel = conn.channel()
            for name in (env["EVENT_QUEUE"], env["EVENT_DLQ"]):
                try:
                    channel.queue_delete(name)
                except conn.channel_errors:
                    channel = conn.channel()


def test_embedded_mode_starts_and_idles_without_a_bus(transactional_db, tmp_path):
    """`make run` starts consume_commands on the embedded broker (no RabbitMQ, no EVENT_BUS_URL)."""
    env = _worker_env()
    for name in ("CELERY_BROKER_URL", "EVENT_BUS_URL"):
        env.pop(name, None)
    env.update(TROUBADOUR_VAR_DIR=str(tmp_path / "var"), DEBUG="true")
    log_path = tmp_path / "embedded.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "consume_commands"], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "consuming" in log_path.read_text(), timeout=30, message="embedded command consumer ready")
        assert "notification.commands" in log_path.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "consume_commands stopped (0 processed, 0 dead-lettered)" in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_command_failing_every_attempt_is_retried_then_dead_lettered_with_its_answer(settings, organization, monkeypatch):
    """Transient failures are retried (the copy keeps reply_to and correlation_id), then dead-lettered once."""
    import threading

    from notifications.bus import bus_connection
    from notifications.engine import commands
    from notifications.management.commands.consume_commands import CommandConsumer

    suffix = uuid.uuid4().hex[:8]
    settings.COMMAND_QUEUE, settings.COMMAND_DLQ = f"test.commands.{suffix}", f"test.commands.dlq.{suffix}"
    calls = []

    def flaky(organization, body, actor):
        calls.append(body["external_id"])
        raise RuntimeError("database went away")

    monkeypatch.setitem(commands.COMMANDS, "subscriber.delete", flaky)
    consumer = CommandConsumer(bus_connection(), prefetch=1)
    ready = threading.Event()
    original = consumer.on_consume_ready

    def on_ready(*args, **kwargs):
        original(*args, **kwargs)
        ready.set()

    consumer.on_consume_ready = on_ready

    def run():
        from django.db import connection

        try:
            consumer.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    client = BusClient(settings.EVENT_BUS_URL)
    try:
        assert ready.wait(20)
        client.queue, client.dlq = settings.COMMAND_QUEUE, settings.COMMAND_DLQ
        correlation_id = client.publish("subscriber.delete", {"organization_id": organization.pk, "external_id": "flaky"},
                                        command_id="f-1")
        answer = client.replies(1)[correlation_id]
        [letter] = _dead_letters(client, 1)
    finally:
        consumer.should_stop = True
        thread.join(20)
        consumer.connection.release()
        client.close()
        with Connection(settings.EVENT_BUS_URL) as conn:
            channel = conn.channel()
            for name in (settings.COMMAND_QUEUE, settings.COMMAND_DLQ):
                try:
                    channel.queue_delete(name)
                except conn.channel_errors:
                    channel = conn.channel()
    assert calls == ["flaky"] * 3
    assert answer["ok"] is False and answer["reason"] == "max_attempts" and "database went away" in answer["error"]
    assert letter["reason"] == "max_attempts" and letter["attempts"] == 3 and letter["routing_key"] == "subscriber.delete"
    assert consumer.dead_lettered == 1 and consumer.processed == 0 and not BusCommand.objects.exists()
