"""A worker killed after the provider accepted a message but before the batch was recorded:
the next run records the journaled message as sent instead of sending it again."""
import os
import threading
import time

import pytest
from django.core.cache import cache

from common.exceptions import ProviderTransientError
from notifications.engine.delivery import delivery_claim_batch, deliver_batch
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from providers.base import BaseProvider, OutboundMessage, SendResult
from providers.journal import journal_in_flight, journal_lookup, send_journaled
from providers.models import ProviderOutbox
from providers.registry import registry

from ..factories import UserFactory
from .test_delivery_support import event_type_with_template, notification_with_deliveries

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_journaled_sends_are_recorded_not_resent(organization):
    event_type_with_template()
    user = UserFactory(phone="+14155550123")
    _, first = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.SMS,))
    _, second = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.SMS,))
    ids = [first[0].pk, second[0].pk]

    # A first worker claims both rows and gets the first message out, then dies before recording.
    assert delivery_claim_batch(delivery_ids=ids) == ids
    provider = registry.get("log_sms")()
    message = OutboundMessage(channel=Channel.SMS, to=user.phone, text="hello", idempotency_key=str(first[0].pk))
    results = send_journaled(provider, [message])
    assert results[0].provider_message_id
    assert set(journal_lookup(keys=[str(pk) for pk in ids])) == {str(first[0].pk)}
    sent_before = ProviderOutbox.objects.count()
    # The sweeper hands the stuck claims back.
    NotificationDelivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING)

    report = deliver_batch(delivery_ids=ids)

    assert report.sent == 2
    # Only the message that never left was sent now.
    assert ProviderOutbox.objects.count() == sent_before + 1
    recovered = NotificationDelivery.objects.get(pk=first[0].pk)
    assert recovered.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    assert recovered.provider_message_id == results[0].provider_message_id
    assert recovered.provider_response == {"recovered_from_send_journal": True}
    assert NotificationDelivery.objects.get(pk=second[0].pk).status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def test_journal_keys_name_the_database_so_two_databases_sharing_one_redis_never_collide(organization):
    from django.core.cache import cache
    from django.db import connection

    from providers.base import SendResult
    from providers.journal import journal_record

    message = OutboundMessage(channel=Channel.SMS, to="+14155550123", text="hello", idempotency_key="4242")
    journal_record(provider_code="log_sms", messages=[message], results=[SendResult(provider_message_id="SM1")])
    name = connection.settings_dict["NAME"]
    assert cache.get(f"sendjournal:{name}:4242")["provider_message_id"] == "SM1"
    assert set(journal_lookup(keys=["4242"])) == {"4242"}

    # Another database's delivery 4242 is another message: its worker finds nothing journaled.
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = f"{original}_other"
    try:
        assert journal_lookup(keys=["4242"]) == {}
    finally:
        connection.settings_dict["NAME"] = original
    assert set(journal_lookup(keys=["4242"])) == {"4242"}


class _Probe(BaseProvider):
    """A provider that, inside each call, reads what a ``kill -9`` at that moment would leave in
    the journal: every message whose call has started is either journaled as ended or marked in
    flight, and no more than the in-flight limit are marked."""

    code = "probe_sms"
    channel = Channel.SMS
    concurrent_sends = True

    def __init__(self, keys: list[str], limit: int) -> None:
        super().__init__(record_id=900_000 + limit)
        self.keys = keys
        self.limit = limit
        self.started: set[str] = set()
        self.lock = threading.Lock()
        self.problems: list[str] = []
        self.in_flight_seen: list[int] = []
        self.prefix = _prefix_for_test()

    def _check(self) -> None:
        with self.lock:
            started = set(self.started)
        entries = cache.get_many([f"{self.prefix}{k}" for k in self.keys])
        states = {key.rsplit(":", 1)[1]: value["state"] for key, value in entries.items()}
        marked = {k for k, state in states.items() if state == "in_flight"}
        unjournaled = started - set(states)
        if unjournaled:
            self.problems.append(f"started without a journal mark: {sorted(unjournaled)}")
        if len(marked) > self.limit:
            self.problems.append(f"{len(marked)} marked in flight, limit {self.limit}")
        with self.lock:
            self.in_flight_seen.append(len(marked))

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.started.add(message.idempotency_key)
        self._check()
        time.sleep(0.003)
        if message.idempotency_key.endswith("7"):
            raise ProviderTransientError("unavailable")
        return SendResult(provider_message_id=f"P{message.idempotency_key}")


class _SequentialProbe(_Probe):
    concurrent_sends = False


class _BatchProbe(_Probe):
    def send_batch(self, messages):
        for message in messages:
            with self.lock:
                self.started.add(message.idempotency_key)
        self._check()
        return [SendResult(provider_message_id=f"P{m.idempotency_key}") for m in messages]


def _prefix_for_test() -> str:
    from django.db import connection

    return f"sendjournal:{connection.settings_dict['NAME']}:"


@pytest.mark.parametrize("probe_class,limit", [(_Probe, 4), (_Probe, 1), (_SequentialProbe, 4), (_BatchProbe, 4)])
def test_what_a_kill_at_any_moment_could_send_twice_is_marked_in_flight_and_bounded(probe_class, limit, settings):
    """Checked inside every provider call: had the process died at that moment, the messages
    that may have reached the provider without being journaled as accepted are exactly the ones
    marked in flight, at most the in-flight limit of them (a native batch call: its batch)."""
    settings.PROVIDER_MAX_IN_FLIGHT = limit
    keys = [str(710_000 + i) for i in range(60)]
    messages = [OutboundMessage(channel=Channel.SMS, to="+14155550123", text="hi", idempotency_key=k) for k in keys]
    probe = probe_class(keys, len(keys) if probe_class is _BatchProbe else limit)

    results = send_journaled(probe, messages)

    assert probe.problems == []
    assert len(probe.in_flight_seen) == (1 if probe_class is _BatchProbe else len(keys))
    if probe_class is _Probe and limit > 1:
        assert max(probe.in_flight_seen) > 1  # still concurrent
    if probe_class is _SequentialProbe or limit == 1:
        assert max(probe.in_flight_seen) == 1
    accepted = {k for k, r in zip(keys, results) if isinstance(r, SendResult)}
    refused = set(keys) - accepted
    assert refused == ({k for k in keys if k.endswith("7")} if probe_class is not _BatchProbe else set())
    # Once the calls are over nothing is left in flight; refused messages are not "sent".
    assert journal_in_flight(keys=keys) == {}
    assert set(journal_lookup(keys=keys)) == accepted
    assert all(cache.get(f"{_prefix_for_test()}{k}")["state"] == "failed" for k in refused)
    cache.delete_many([f"{_prefix_for_test()}{k}" for k in keys])


def test_a_journal_mark_left_by_a_dead_call_is_not_taken_for_a_sent_message():
    """A process killed during a call leaves its mark: the next run cannot know whether the
    message went, so it sends it (no provider here takes an idempotency key) rather than
    recording it as sent."""
    from providers.journal import _checkpoint_entries, _prefix

    message = OutboundMessage(channel=Channel.SMS, to="+14155550123", text="hello", idempotency_key="4343")
    cache.set_many(_checkpoint_entries(_prefix(), "log_sms", [], [message]))
    assert journal_lookup(keys=["4343"]) == {}
    assert set(journal_in_flight(keys=["4343"])) == {"4343"}
    assert journal_in_flight(keys=["4343"])["4343"]["pid"] == os.getpid()
