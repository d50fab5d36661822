"""Per-organization event limits: one token bucket in Redis shared by the REST intake and the
AMQP consumer. Over real HTTP (live server, threaded) and a real `consume_events` process."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from kombu import Connection, Exchange, Producer

from accounts.services import api_key_create
from notifications.engine.event_limits import organization_events_take
from notifications.models import Notification

from ..conftest import ROOT, _worker_env, wait_until
from ..factories import OrganizationFactory
from ..notifications.intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _client(organization) -> requests.Session:
    _, raw = api_key_create(organization=organization, name="limits")
    http = requests.Session()
    http.headers.update({"Authorization": f"Api-Key {raw}", "Content-Type": "application/json"})
    return http


def _post(http, base, organization, correlation: str) -> requests.Response:
    body = {"type": EVENT, "recipient_ids": [member(organization).pk], "correlation_id": correlation}
    return http.post(f"{base}/api/v1/events/", data=json.dumps(body), timeout=30)


@pytest.fixture
def event_type(transactional_db):
    return intake_event_type()


def test_an_organization_over_its_limit_gets_429_with_retry_after_and_others_do_not(live_server, organization, event_type):
    organization.events_per_minute, organization.events_burst = 6, 3  # one every 10 s, three at once
    organization.save(update_fields=["events_per_minute", "events_burst"])
    other = OrganizationFactory()
    http, other_http = _client(organization), _client(other)

    codes = [_post(http, live_server.url, organization, f"a{i}").status_code for i in range(3)]
    refused = _post(http, live_server.url, organization, "a-over")
    assert codes == [202, 202, 202]
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 10, refused.text
    assert "events a minute" in refused.json()["detail"]
    assert not Notification.objects.filter(correlation_id="a-over").exists()
    # Another tenant is not slowed down by the first one's flood.
    assert _post(other_http, live_server.url, other, "b0").status_code == 202
    # The bucket refills at its rate.
    time.sleep(int(refused.headers["Retry-After"]))
    assert _post(http, live_server.url, organization, "a-later").status_code == 202


def test_the_settings_default_applies_and_zero_means_unlimited(live_server, organization, event_type, settings):
    settings.EVENTS_RATE_PER_MINUTE, settings.EVENTS_BURST = 6, 2
    http = _client(organization)
    assert [_post(http, live_server.url, organization, f"d{i}").status_code for i in range(3)] == [202, 202, 429]

    organization.events_per_minute = 0
    organization.save(update_fields=["events_per_minute"])
    assert [_post(http, live_server.url, organization, f"u{i}").status_code for i in range(5)] == [202] * 5


def test_concurrent_requests_never_take_more_than_the_bucket_holds(live_server, organization, event_type):
    organization.events_per_minute, organization.events_burst = 1, 5
    organization.save(update_fields=["events_per_minute", "events_burst"])
    http = _client(organization)
    recipients = [member(organization).pk for _ in range(16)]
    codes: list[int] = []
    start = threading.Barrier(16)

    def send(i: int) -> None:
        start.wait()
        body = {"type": EVENT, "recipient_ids": [recipients[i]], "correlation_id": f"c{i}"}
        codes.append(requests.post(f"{live_server.url}/api/v1/events/", data=json.dumps(body),
                                   headers=http.headers, timeout=60).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(codes) == [202] * 5 + [429] * 11
    assert Notification.objects.filter(correlation_id__startswith="c").count() == 5


def test_the_bucket_works_on_the_embedded_cache_too(organization, settings):
    settings.REDIS_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bucket"}}
    organization.events_per_minute, organization.events_burst = 6, 4
    granted: list[bool] = []
    threads = [threading.Thread(target=lambda: granted.append(organization_events_take(organization=organization).allowed))
               for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(granted) == [False] * 6 + [True] * 4
    refused = organization_events_take(organization=organization)
    assert not refused.allowed and 0 < refused.retry_after <= 10


@pytest.mark.rabbitmq
def test_amqp_events_over_the_limit_are_dead_lettered_with_rate_limited(organization, event_type, tmp_path, settings):
    organization.events_per_minute, organization.events_burst = 1, 2
    organization.save(update_fields=["events_per_minute", "events_burst"])
    suffix = uuid.uuid4().hex[:8]
    queue, dlq = f"test.events.{suffix}", f"test.dlq.{suffix}"
    log_path = tmp_path / "consumer.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "consume_events"], cwd=ROOT,
                            env={**_worker_env(), "EVENT_QUEUE": queue, "EVENT_DLQ": dlq},
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "consuming" in log_path.read_text(), timeout=30, message="consumer ready")
        with Connection(settings.EVENT_BUS_URL) as conn:
            exchange = Exchange(settings.EVENT_EXCHANGE, type="topic", durable=True)
            producer = Producer(conn.channel(), exchange=exchange)
            for i in range(4):
                producer.publish({"organization_id": organization.pk, "recipient_ids": [member(organization).pk],
                                  "correlation_id": f"bus{i}"}, routing_key=EVENT, serializer="json",
                                  declare=[exchange], message_id=f"bus-{i}")
            letters = []
            channel = conn.channel()

            def poll():
                message = channel.basic_get(queue=dlq, no_ack=True)
                if message is not None:
                    letters.append(message)
                return len(letters) >= 2

            wait_until(poll, timeout=60, message=f"2 dead letters\n{log_path.read_text()[-3000:]}")
        envelopes = [json.loads(m.body) for m in letters]
        assert {m.headers["x-death-reason"] for m in letters} == {"rate_limited"}
        assert all(e["retry_after"] >= 1 and e["attempts"] == 1 for e in envelopes)
        assert sorted(e["message_id"] for e in envelopes) == ["bus-2", "bus-3"]
        assert Notification.objects.filter(correlation_id__startswith="bus").count() == 2
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


def test_incoming_webhooks_share_the_organizations_event_limit(live_server, organization, user, event_type, field_keys):
    from notifications.engine.webhooks_outgoing import webhook_signature

    from .conftest import token_session

    organization.events_per_minute, organization.events_burst = 1, 2
    organization.save(update_fields=["events_per_minute", "events_burst"])
    created = token_session(user).post(f"{live_server.url}/api/v1/admin/webhooks/",
                                       json={"name": "Monitoring", "direction": "INCOMING"}, timeout=30)
    assert created.status_code == 201, created.text
    hook = created.json()
    url = live_server.url + urlsplit(hook["incoming_url"]).path

    def call(i: int) -> requests.Response:
        raw = json.dumps({"type": EVENT, "recipient_ids": [member(organization).pk], "correlation_id": f"w{i}"}).encode()
        return requests.post(url, data=raw, timeout=30, headers={
            "Content-Type": "application/json", "X-Troubadour-Signature": webhook_signature(hook["secret"], raw)})

    answers = [call(i) for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429], answers[-1].text
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert Notification.objects.filter(correlation_id__startswith="w").count() == 2
