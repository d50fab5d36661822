"""Per-second provider rate limits, shared through Redis: a batch's messages wait for their
slot inside the worker (no retry burnt), never more requests in one second than the record
allows; what cannot wait is handed back without using an attempt. Circuit breakers still
open under concurrent sends."""
from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from notifications.engine.delivery import deliver_batch
from notifications.enums import DeliveryStatus
from notifications.models import NotificationDelivery
from providers.models import NotificationProvider
from tests.providers.peers import Recorded, Reply

from .test_concurrent_sends import MESSAGES, SlowTwilio, _sms_deliveries, _twilio_record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


class TimedTwilio(SlowTwilio):
    """Also notes when each request arrived."""

    def __init__(self, **kwargs) -> None:
        self.arrivals: list[float] = []
        super().__init__(**kwargs)

    def _reply(self, request: Recorded) -> Reply:
        self.arrivals.append(time.time())
        return super()._reply(request)


def _assert_within_rate(arrivals: list[float], limit: int) -> None:
    """The windows are counted when slots are granted; a request granted at the end of one second
    may reach the peer in the next, so the peer's view allows for that edge (never beyond it)."""
    arrivals = sorted(arrivals)
    span = arrivals[-1] - arrivals[0]
    assert len(arrivals) <= limit * (math.ceil(span + 0.6) + 1)
    assert max(Counter(int(t) for t in arrivals).values()) <= 2 * limit


def _per_second(record: NotificationProvider, limit: int) -> None:
    record.config = {**record.config, "rate_limit_per_second": limit}
    record.save(update_fields=["config"])


def test_a_batch_waits_for_per_second_slots_and_never_exceeds_them(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 16
    settings.PROVIDER_RATE_WAIT_SECONDS = 10
    with TimedTwilio(delay=0.02) as twilio:
        _per_second(_twilio_record(twilio.peer.url), 8)
        deliveries = _sms_deliveries(organization, 30)
        started = time.monotonic()
        report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
        elapsed = time.monotonic() - started

    assert (report.claimed, report.sent, report.retried) == (30, 30, 0)
    # Never more than 8 requests within one wall-clock second, so 30 messages need 3+ seconds.
    _assert_within_rate(twilio.arrivals, 8)
    # 30 at 8 per second take four windows: the last is granted at least two seconds after the
    # batch began (the peer sees them a little compressed: requests wait unevenly on their way).
    assert elapsed >= 2.0
    assert max(twilio.arrivals) - min(twilio.arrivals) >= 1.0
    rows = NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries])
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.SENT, 1)}
    assert set(twilio.by_recipient.values()) == {1} and len(twilio.by_recipient) == 30


def test_what_cannot_wait_is_handed_back_without_using_an_attempt(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 16
    settings.PROVIDER_RATE_WAIT_SECONDS = 1
    with TimedTwilio(delay=0.01) as twilio:
        _per_second(_twilio_record(twilio.peer.url), 5)
        deliveries = _sms_deliveries(organization, 25)
        report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
        sent_first = report.sent
        assert 5 <= sent_first <= 15 and report.retried == 25 - sent_first

        rows = {r.pk: r for r in NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries])}
        waiting = [r for r in rows.values() if r.status == DeliveryStatus.PENDING]
        assert len(waiting) == 25 - sent_first
        # The attempt is given back: waiting for a slot never exhausts the retries.
        assert {r.attempts for r in waiting} == {0}
        assert all(r.error_history[-1]["code"] == "rate_limited" for r in waiting)
        assert all(r.next_retry_at is not None for r in waiting)

        # When their slot is due they go out; nothing is sent twice.
        NotificationDelivery.objects.filter(pk__in=[r.pk for r in waiting]).update(next_retry_at=None)
        while NotificationDelivery.objects.filter(pk__in=rows, status=DeliveryStatus.PENDING).exists():
            NotificationDelivery.objects.filter(pk__in=rows, status=DeliveryStatus.PENDING).update(next_retry_at=None)
            deliver_batch(delivery_ids=list(rows))
    assert NotificationDelivery.objects.filter(pk__in=rows, status=DeliveryStatus.SENT).count() == 25
    assert set(twilio.by_recipient.values()) == {1} and len(twilio.by_recipient) == 25
    _assert_within_rate(twilio.arrivals, 5)


def test_the_circuit_opens_under_concurrent_failures_and_later_batches_skip_the_provider(organization, settings):
    settings.PROVIDER_MAX_IN_FLIGHT = 8
    settings.PROVIDER_CIRCUIT_FAILURE_THRESHOLD = 1
    settings.PROVIDER_CIRCUIT_COOLDOWN_SECONDS = 600
    with SlowTwilio(delay=0.02, fail_with=503) as broken:
        record = _twilio_record(broken.peer.url)
        from providers.resilience import CircuitBreaker, CircuitPolicy
        from providers.selectors import provider_bindings_for_channel

        bindings, _ = provider_bindings_for_channel(organization_id=organization.pk, channel="SMS")
        CircuitBreaker(bindings[0].key, CircuitPolicy.for_config(record.config)).reset()
        first = deliver_batch(delivery_ids=[d.pk for d in _sms_deliveries(organization, 10)])
        assert first.retried == 10 and len(broken.peer.calls("POST", MESSAGES)) == 10
        second = deliver_batch(delivery_ids=[d.pk for d in _sms_deliveries(organization, 10, start=50)])
    # The open circuit keeps the second batch away from the failing provider entirely.
    assert second.retried == 10 and len(broken.peer.calls("POST", MESSAGES)) == 10
