"""/metrics: Prometheus text for staff or the METRICS_TOKEN bearer; counters written by real
worker and consumer processes (multiprocess mode) show up after real deliveries; the JSON log
lines of the provider call carry the trigger's request and correlation ids."""
from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from notifications.enums import Channel, DeliveryStatus, DeadLetterStatus
from notifications.models import DeadLetter, NotificationDelivery
from tests.conftest import IN_CI, start_worker, wait_until
from tests.notifications.test_e2e import consumer, smtp_sink  # noqa: F401  (fixtures)
from tests.providers.factories import DeliveryFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres]


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples, name: str, **labels: str) -> float | None:
    for sample_name, sample_labels, value in samples:
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
            return value
    return None


@pytest.fixture
def staff_client(client, db):
    staff = User.objects.create_user(username="ops", password="pass-word-123", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_metrics_answer_only_staff_or_the_bearer_token(client, settings, user):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-scrape-token").status_code == 401
    client.force_login(user)  # an organization owner is not platform staff
    assert client.get("/metrics").status_code == 401
    user.is_staff = True  # nor is the staff flag alone platform administration
    user.save(update_fields=["is_staff"])
    assert client.get("/metrics").status_code == 401
    client.logout()
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "troubadour_deliveries_waiting" in ok.content.decode()
    assert client.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 405

    settings.METRICS_TOKEN = ""  # no token configured: a bearer never works
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_circuit_states_dead_letters_and_recent_deliveries_are_read_at_scrape_time(staff_client, organization):
    from providers.resilience import CircuitBreaker, CircuitPolicy
    from providers.selectors import binding_for_record
    from providers.services import provider_create

    healthy = provider_create(organization_id=organization.pk, code="log_sms", name="sms a", priority=0, config={}, secrets={})
    tripped = provider_create(organization_id=None, code="log_sms", name="platform sms", priority=1, config={}, secrets={})
    binding = binding_for_record(tripped)
    breaker = CircuitBreaker(binding.key, CircuitPolicy.for_config(binding.config))
    for _ in range(10):
        breaker.record_failure()
    assert breaker.state() == "open"
    delivery = DeliveryFactory(notification__organization=organization, channel=Channel.SMS, provider="log_sms",
                               status=DeliveryStatus.FAILED)
    DeliveryFactory(notification__organization=organization, channel=Channel.SMS, provider="", status=DeliveryStatus.HELD)
    DeadLetter.objects.create(organization=organization, delivery=delivery, channel=Channel.SMS, reason="exhausted")

    samples = _samples(staff_client.get("/metrics").content.decode())
    assert _value(samples, "troubadour_provider_circuit_state", provider_id=str(tripped.pk)) == 2
    assert _value(samples, "troubadour_provider_circuit_state", provider_id=str(healthy.pk)) == 0
    assert _value(samples, "troubadour_dead_letters", channel="SMS", status=DeadLetterStatus.OPEN) == 1
    assert _value(samples, "troubadour_deliveries_last_24h", channel="SMS", provider="log_sms", status="FAILED") == 1
    assert _value(samples, "troubadour_deliveries_waiting", channel="SMS", status="HELD") == 1


@pytest.fixture
def multiproc_dir(tmp_path, monkeypatch, settings):
    """The directory the worker and consumer processes write their counters to (their environment
    comes from this one), read by /metrics in this process."""
    path = tmp_path / "prometheus"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    monkeypatch.setenv("LOG_FORMAT", "json")
    settings.PROMETHEUS_MULTIPROC_DIR = str(path)
    return path


@pytest.fixture
def worker(multiproc_dir, smtp_sink, transactional_db, tmp_path, settings, celery_purge):  # noqa: F811
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.skip("needs RabbitMQ") if not IN_CI else pytest.fail("RabbitMQ required in CI")
    proc = start_worker(tmp_path, name="metrics")
    yield proc
    proc.kill(signal.SIGTERM) if proc.proc.poll() is None else None


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_metrics_and_log_ids_after_real_deliveries_by_a_real_worker(  # noqa: F811
    multiproc_dir, consumer, worker, smtp_sink, staff_client, key_client, user, organization,
):
    # AMQP: the consumer counts the event, the worker sends the email and counts it.
    message_id = str(uuid.uuid4())
    from kombu import Connection, Exchange, Producer

    exchange = Exchange("notification.events", type="topic", durable=True)
    from django.conf import settings

    with Connection(settings.CELERY_BROKER_URL, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.default_channel, exchange=exchange).publish(
            json.dumps({"type": "task.assigned", "organizationId": organization.pk, "recipientIds": [str(user.pk)],
                        "data": {"taskTitle": "Metrics"}, "suggestedChannels": ["IN_APP", "EMAIL"],
                        "correlationId": "order-7731"}).encode(),
            routing_key="task.assigned", content_type="application/json", content_encoding="utf-8",
            message_id=message_id, delivery_mode=2, declare=[exchange],
        )
    # REST: the request id given by the caller follows the delivery task to the provider call.
    response = key_client.post("/api/v1/events/", {
        "type": "task.assigned", "recipient_ids": [str(user.pk)], "channels": ["EMAIL"],
        "data": {"taskTitle": "Metrics REST"},
    }, format="json", HTTP_X_REQUEST_ID="req-rest-42")
    assert response.status_code == 202 and response["X-Request-ID"] == "req-rest-42"

    wait_until(lambda: NotificationDelivery.objects.filter(channel=Channel.EMAIL, status=DeliveryStatus.SENT).count() == 2,
               timeout=60, message=f"two emails sent\n{worker.log[-3000:]}")
    assert len(smtp_sink.to(user.email)) == 2

    text = staff_client.get("/metrics").content.decode()
    samples = _samples(text)
    assert _value(samples, "troubadour_deliveries_total", channel="EMAIL", provider="django_email", status="sent") == 2
    assert _value(samples, "troubadour_provider_send_seconds_count", channel="EMAIL", provider="django_email") == 2
    assert _value(samples, "troubadour_events_total", source="amqp") == 1
    assert _value(samples, "troubadour_event_notifications_total", source="amqp") == 1
    assert _value(samples, "troubadour_deliveries_last_24h", channel="EMAIL", provider="django_email", status="SENT") == 2
    assert _value(samples, "troubadour_queue_depth", queue="delivery") is not None
    assert _value(samples, "troubadour_queue_depth", queue="notification.events.intake") is not None
    assert any(p.name.startswith("counter_") for p in multiproc_dir.iterdir())  # written by the other processes

    # One JSON object per line; the provider call carries the trigger's ids.
    sends = [line for line in _json_lines(worker.log) if line.get("logger") == "providers.send"]
    assert len(sends) >= 2, worker.log[-3000:]
    by_request = {line["request_id"]: line for line in sends}
    assert by_request[message_id]["correlation_id"] == "order-7731"
    assert by_request[message_id]["channel"] == "EMAIL" and by_request[message_id]["sent"] == 1
    assert by_request["req-rest-42"]["correlation_id"] == "req-rest-42"
    consumer_lines = _json_lines(consumer())
    assert any(line.get("request_id") == message_id for line in consumer_lines)


def test_the_grafana_dashboard_uses_only_metrics_the_platform_exports(staff_client, settings):
    settings.METRICS_TOKEN = ""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "troubadour-dashboard.json").read_text())
    exported = {family.name for family in text_string_to_metric_families(staff_client.get("/metrics").content.decode())}
    exported |= {"troubadour_deliveries", "troubadour_provider_send_seconds", "troubadour_events",
                 "troubadour_event_notifications"}  # created lazily, on the first labelled sample
    import re

    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"troubadour_[a-z0-9_]+", target["expr"]))
    assert used
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert base in exported, f"dashboard uses {name}, which /metrics does not export"
