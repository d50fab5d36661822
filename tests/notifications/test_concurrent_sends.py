"""A delivery batch goes out concurrently: many requests in flight to a slow provider, never
more than the per-record limit, every delivery sent and recorded exactly once, failover and
query counts as with one request at a time."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.engine.delivery import deliver_batch
from notifications.enums import AuditAction, Channel, DeliveryStatus
from notifications.models import NotificationAuditLog, NotificationDelivery
from providers.models import NotificationProvider
from providers.secrets import secrets_encrypt
from tests.providers.peers import HttpPeer, Recorded, Reply

from .test_retry_support import make_delivery, make_notification

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

SID = "AC0123456789abcdef0123456789abcdef"
MESSAGES = rf"/2010-04-01/Accounts/{SID}/Messages\.json"


class SlowTwilio:
    """A loopback Twilio Messages API answering after `delay` seconds; it counts the requests
    in flight at once and the messages accepted per recipient."""

    def __init__(self, *, delay: float = 0.1, fail_with: int | None = None) -> None:
        self.delay = delay
        self.fail_with = fail_with
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_recipient: Counter[str] = Counter()
        self.connections: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._n = 0
        self.peer = HttpPeer().on("POST", MESSAGES, self._reply)

    def _reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        if self.fail_with:
            return Reply(self.fail_with, {"code": None, "message": "unavailable", "status": self.fail_with})
        form = request.form
        with self._lock:
            self._n += 1
            n = self._n
            self.by_recipient[form["To"][0]] += 1
        return Reply(201, {"sid": f"SM{n:032d}", "account_sid": SID, "to": form["To"][0], "from": form["From"][0],
                           "body": form["Body"][0], "status": "queued", "num_segments": "1", "price": None,
                           "price_unit": "USD", "date_created": "Thu, 01 Jan 2026 00:00:00 +0000"})

    def __enter__(self) -> SlowTwilio:
        self.peer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peer.stop()


def _twilio_record(url: str, *, organization=None, priority: int = 0) -> NotificationProvider:
    return NotificationProvider.objects.create(
        organization=organization, code="twilio_sms", channel=Channel.SMS, name="Twilio", priority=priority,
        config={"base_url": url, "from_number": "+14155550111"},
        secrets=secrets_encrypt({"account_sid": SID, "auth_token": "tw-secret-token"}),
    )


def _sms_deliveries(organization, count: int, *, start: int = 0) -> list[NotificationDelivery]:
    deliveries = []
    for i in range(start, start + count):
        n = make_notification(organization=organization, recipient_phone=f"+1415555{1000 + i:04d}")
        deliveries.append(make_delivery(n, Channel.SMS))
    return deliveries


def test_a_batch_of_sms_goes_out_concurrently_within_the_per_provider_limit(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 8
    with SlowTwilio(delay=0.1) as twilio:
        _twilio_record(twilio.peer.url)
        deliveries = _sms_deliveries(organization, 50)
        started = time.monotonic()
        report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
        elapsed = time.monotonic() - started

    assert (report.claimed, report.sent) == (50, 50)
    # Many requests at once, never more than the limit: 50 × 100 ms one at a time would take 5 s.
    assert 1 < twilio.max_in_flight <= 8
    assert elapsed < 3.5
    assert len(twilio.peer.calls("POST", MESSAGES)) == 50
    assert set(twilio.by_recipient.values()) == {1} and len(twilio.by_recipient) == 50
    rows = list(NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries]))
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    # Each row carries the answer to its own request (no answer crossed between threads).
    sids = [r.provider_message_id for r in rows]
    assert len(set(sids)) == 50
    assert all(r.attempts == 1 for r in rows)
    sent_audits = NotificationAuditLog.objects.filter(action=AuditAction.DELIVERY_SENT, delivery_id__in=[d.pk for d in deliveries])
    assert Counter(sent_audits.values_list("delivery_id", flat=True)) == Counter({d.pk: 1 for d in deliveries})

    # A second run of the same batch (a redelivered task) sends nothing again.
    again = deliver_batch(delivery_ids=[d.pk for d in deliveries])
    assert again.claimed == 0 and len(twilio.peer.calls("POST", MESSAGES)) == 50


def test_the_batch_query_count_does_not_grow_with_its_size(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 16
    with SlowTwilio(delay=0.02) as twilio:
        _twilio_record(twilio.peer.url)
        small = _sms_deliveries(organization, 5)
        large = _sms_deliveries(organization, 50, start=100)
        deliver_batch(delivery_ids=[small[0].pk])  # warm caches (event types, content types)
        with CaptureQueriesContext(connection) as few:
            deliver_batch(delivery_ids=[d.pk for d in small[1:]])
        with CaptureQueriesContext(connection) as many:
            deliver_batch(delivery_ids=[d.pk for d in large])
    assert len(many.captured_queries) == len(few.captured_queries)
    assert sum(twilio.by_recipient.values()) == 55


def test_a_failing_provider_still_fails_over_under_concurrency(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 8
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    with SlowTwilio(delay=0.05, fail_with=503) as broken, SlowTwilio(delay=0.05) as healthy:
        _twilio_record(broken.peer.url, organization=organization)
        backup = _twilio_record(healthy.peer.url)
        deliveries = _sms_deliveries(organization, 20)
        report = deliver_batch(delivery_ids=[d.pk for d in deliveries])

    assert report.sent == 20
    assert len(broken.peer.calls("POST", MESSAGES)) == 20 and broken.max_in_flight > 1
    assert set(healthy.by_recipient.values()) == {1} and len(healthy.by_recipient) == 20
    rows = NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries])
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    failovers = NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_FAILOVER)
    assert Counter(failovers.values_list("delivery_id", flat=True)) == Counter({d.pk: 1 for d in deliveries})
    assert backup.pk


def test_a_failing_provider_alone_schedules_a_retry_for_every_message(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 8
    with SlowTwilio(delay=0.05, fail_with=503) as broken:
        _twilio_record(broken.peer.url)
        deliveries = _sms_deliveries(organization, 12)
        report = deliver_batch(delivery_ids=[d.pk for d in deliveries])

    assert (report.sent, report.retried) == (0, 12)
    rows = NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries])
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.PENDING, 1)}
    assert all(r.next_retry_at is not None for r in rows)


def test_twilio_sends_of_one_record_share_a_kept_alive_connection_pool():
    from providers.registry import registry

    def provider(record_id):
        return registry.get("twilio_sms")(config={"from_number": "+14155550111"},
                                          credentials={"account_sid": SID, "auth_token": "tw"}, record_id=record_id)

    first, again, other = provider(9001).client().http_client, provider(9001).client().http_client, provider(9002).client().http_client
    assert first is again and first is not other
    assert first.session.get_adapter("https://api.twilio.com")._pool_maxsize >= 1
