"""Bad input that answered 500 (or failed a whole batch): each is now a clear 4xx, or the
permanent failure of just the one delivery it spoils. Over real HTTP against the live server,
and through a real `consume_events` process for AMQP events."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid

import pytest
import requests
from django.core import mail
from kombu import Connection, Exchange, Producer
from rest_framework.authtoken.models import Token

from accounts.models import MembershipRole
from accounts.services import api_key_create
from notifications.enums import Channel, DeliveryStatus
from notifications.models import IdempotencyRecord, Notification, NotificationDelivery

from ..conftest import ROOT, _worker_env, wait_until
from ..notifications.intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def intake(organization):
    event_type = intake_event_type(default_channels=[Channel.EMAIL], allowed_channels=[Channel.EMAIL, Channel.IN_APP])
    _, raw = api_key_create(organization=organization, name="security")
    http = requests.Session()
    http.headers.update({"Authorization": f"Api-Key {raw}", "Content-Type": "application/json"})
    return http, event_type


@pytest.fixture
def admin_http(user):
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
    return http


def _event(organization, **extra) -> dict:
    return {"type": EVENT, "recipient_ids": [member(organization).pk], **extra}


def test_a_100000_deep_json_body_is_a_400(live_server, intake, admin_http):
    http, _ = intake
    answer = http.post(f"{live_server.url}/api/v1/events/", data=DEEP, timeout=60)
    assert answer.status_code == 400 and "nested" in answer.json()["detail"]
    # Every JSON entry point shares the parser: a signed-in user's preferences too.
    answer = admin_http.put(f"{live_server.url}/api/v1/preferences/", data=DEEP,
                            headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 400
    # Deep but under the recursion limit: refused before any code walks it recursively.
    nested = json.dumps({"type": EVENT, "recipient_ids": [1], "data": None}).replace("null", "[" * 900 + "]" * 900)
    assert http.post(f"{live_server.url}/api/v1/events/", data=nested, timeout=60).status_code == 400
    assert not Notification.objects.exists()


@pytest.mark.parametrize("bad", ['"\\ud800"', '"a\\udfffb"', '{"\\ud800": 1}'])
def test_a_lone_surrogate_in_data_is_a_400_and_nothing_is_saved(live_server, intake, organization, bad):
    http, _ = intake
    body = json.dumps(_event(organization)).removesuffix("}") + f', "data": {{"taskTitle": {bad}}}}}'
    answer = http.post(f"{live_server.url}/api/v1/events/", data=body, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "surrogate" in answer.json()["detail"]
    # A proper pair (an emoji) is fine.
    fine = json.dumps(_event(organization)).removesuffix("}") + ', "data": {"taskTitle": "\\ud83d\\ude00"}}'
    assert http.post(f"{live_server.url}/api/v1/events/", data=fine, timeout=30).status_code == 202
    assert Notification.objects.get().data == {"taskTitle": "\U0001f600"}


def test_an_idempotency_key_longer_than_its_column_is_a_400_never_truncated(live_server, intake, organization):
    http, _ = intake
    body = json.dumps(_event(organization))
    long_a, long_b = "k" * 255 + "-a", "k" * 255 + "-b"  # cut to 255 they would be one key
    answer = http.post(f"{live_server.url}/api/v1/events/", data=body, headers={"Idempotency-Key": long_a}, timeout=30)
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()
    assert http.post(f"{live_server.url}/api/v1/events/", data=body, headers={"Idempotency-Key": long_b},
                     timeout=30).status_code == 400
    assert not IdempotencyRecord.objects.exists() and not Notification.objects.exists()
    # At the column's length it is accepted, and replays.
    exact = "k" * 255
    first = http.post(f"{live_server.url}/api/v1/events/", data=body, headers={"Idempotency-Key": exact}, timeout=30)
    again = http.post(f"{live_server.url}/api/v1/events/", data=body, headers={"Idempotency-Key": exact}, timeout=30)
    assert first.status_code == again.status_code == 202 and again.headers["Idempotency-Replay"] == "true"
    assert IdempotencyRecord.objects.get().key == exact


@pytest.mark.parametrize(("path", "param", "value"), [
    ("/api/v1/admin/audit-log/", "since", "2024-13-45T00:00:00"),
    ("/api/v1/admin/audit-log/", "until", "2024-02-30T10:00:00"),
    ("/api/v1/admin/history/", "since", "2024-01-01T25:61:00"),
    ("/api/v1/admin/history/", "recipient", "²"),
    ("/api/v1/admin/history/", "recipient_id", "99999999999999999999"),
    ("/api/v1/admin/audit-log/", "notification", "٣"),
    ("/api/v1/admin/deliveries/", "created_after", "2024-13-01T00:00:00"),
    ("/api/v1/admin/deliveries/", "notification", "²"),
    ("/api/v1/admin/deliveries/", "cursor", "99999999999999999999999"),
    ("/api/v1/admin/deliveries/", "page_size", "²"),
    ("/api/v1/admin/dead-letters/", "page_size", "-99999999999999999999999"),
    ("/api/v1/admin/history/", "cursor", "²"),
    ("/api/v1/admin/preferences/", "team_id", "²"),
])
def test_malformed_query_parameters_are_400s_naming_the_parameter(live_server, admin_http, path, param, value):
    answer = admin_http.get(f"{live_server.url}{path}", params={param: value}, timeout=30)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert param in answer.json()


@pytest.mark.parametrize("header", ["²", "99999999999999999999"])
def test_a_malformed_organization_header_is_not_a_500(live_server, admin_http, header):
    answer = admin_http.get(f"{live_server.url}/api/v1/admin/history/", headers={"X-Organization": header}, timeout=30)
    assert answer.status_code in (200, 403), answer.text[:300]


def test_a_line_break_in_an_email_subject_fails_that_delivery_only(live_server, intake, organization, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the web process delivers after commit, as a worker would
    http, event_type = intake
    from notifications.models import NotificationTemplate, TemplateChannel

    template = NotificationTemplate.objects.create(key=event_type.template_key or EVENT, name="Task")
    TemplateChannel.objects.create(template=template, channel=Channel.EMAIL, subject="Task: {{ task.title }}", body="Body")
    victim, bystander = member(organization), member(organization)
    answer = http.post(f"{live_server.url}/api/v1/events/", timeout=30, data=json.dumps({
        "type": EVENT, "recipient_ids": [victim.pk, bystander.pk],
        "recipients": [], "data": {"taskTitle": "Hello\r\nBcc: everyone@example.com"},
    }))
    assert answer.status_code == 202, answer.text
    # Same event, same batch, same provider group: a clean subject goes out beside it.
    clean = http.post(f"{live_server.url}/api/v1/events/", timeout=30,
                      data=json.dumps({"type": EVENT, "recipient_ids": [bystander.pk], "data": {"taskTitle": "Fine"}}))
    assert clean.status_code == 202

    rows = wait_until(lambda: list(NotificationDelivery.objects.filter(channel=Channel.EMAIL).exclude(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])) if not NotificationDelivery.objects.filter(
        channel=Channel.EMAIL, status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).exists() else None,
        timeout=30, message="the deliveries to settle")
    spoiled = [d for d in rows if d.notification.data["taskTitle"].startswith("Hello")]
    fine = [d for d in rows if d.notification.data["taskTitle"] == "Fine"]
    assert {d.status for d in spoiled} == {DeliveryStatus.FAILED}
    assert all("line break" in d.error and d.attempts == 1 and d.next_retry_at is None for d in spoiled)
    assert [d.status for d in fine] == [DeliveryStatus.SENT]
    assert [m.subject for m in mail.outbox] == ["Task: Fine"]
    assert not any("everyone@example.com" in str(m.bcc) for m in mail.outbox)


def test_a_template_subject_with_a_line_break_is_refused_at_save(admin_http, live_server, intake):
    _, event_type = intake
    answer = admin_http.post(f"{live_server.url}/api/v1/admin/templates/", json={
        "key": "security-subject", "name": "Bad subject", "event_type": event_type.key,
        "channels": [{"channel": "EMAIL",
                      "content": {"en": {"subject": "Hello\r\nBcc: everyone@example.com", "body": "Body"}}}],
    }, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "one line" in answer.text


@pytest.mark.rabbitmq
def test_amqp_events_with_bad_json_are_dead_lettered_at_once_with_their_reason(organization, tmp_path, settings):
    intake_event_type()
    suffix = uuid.uuid4().hex[:8]
    queue, dlq = f"test.events.{suffix}", f"test.dlq.{suffix}"
    env = {**_worker_env(), "EVENT_QUEUE": queue, "EVENT_DLQ": dlq}
    log_path = tmp_path / "consumer.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "consume_events"], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    recipient = member(organization).pk
    head = f'{{"organization_id": {organization.pk}, "recipient_ids": [{recipient}]'
    bodies = {
        "deep": DEEP,
        "surrogate": head + ', "data": {"t": "\\ud800"}}',
        "nul": head + ', "data": {"t": "a\\u0000b"}}',
        "nan": head + ', "data": {"t": NaN}}',
        "long-id": head + "}",
    }
    try:
        wait_until(lambda: "consuming" in log_path.read_text(), timeout=30, message="consumer ready")
        with Connection(settings.EVENT_BUS_URL) as conn:
            exchange = Exchange(settings.EVENT_EXCHANGE, type="topic", durable=True)
            producer = Producer(conn.channel(), exchange=exchange)
            for name, body in bodies.items():
                # AMQP caps a message id at 255 bytes; with the "amqp:" prefix it exceeds the column.
                message_id = "m" * (252 - len(name)) + name if name == "long-id" else name
                producer.publish(body.encode(), routing_key=EVENT, content_type="application/json",
                                 content_encoding="utf-8", declare=[exchange], message_id=message_id)
            letters = []
            channel = conn.channel()

            def poll():
                message = channel.basic_get(queue=dlq, no_ack=True)
                if message is not None:
                    letters.append(message)
                return len(letters) >= 4

            wait_until(poll, timeout=60, message=f"4 dead letters\n{log_path.read_text()[-3000:]}")
        reasons = {json.loads(m.body)["message_id"]: (m.headers["x-death-reason"], json.loads(m.body)["attempts"])
                   for m in letters}
        assert reasons == {name: ("invalid_json", 1) for name in ("deep", "surrogate", "nul", "nan")}
        # A message id longer than the key column is kept whole (as a digest), not cut.
        record = wait_until(lambda: IdempotencyRecord.objects.filter(organization=organization).first(), timeout=30,
                            message="the long message id's idempotency record")
        assert record.key.startswith("amqp-sha256:") and Notification.objects.count() == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        with Connection(settings.EVENT_BUS_URL) as conn:
            channel = conn.channel()
            for name in (queue, dlq):
                try:
                    channel.queue_delete(name)
                except conn.channel_errors:
                    channel = conn.channel()
