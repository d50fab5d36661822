"""Fair sharing with real workers: while organization A's big send drains through two worker
processes, a single notification of organization B goes out within a batch or two, not behind
A's whole backlog. The scale is small here; bench/bench_provider_speed.py (and the 100,000-recipient fan-out bench, through bench/fairness_probe.py) measure it at scale."""
from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Organization
from common.queues import Queue
from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.fairness import delivery_queue_for, organization_volume_add
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from tests.conftest import start_worker, wait_until

from .test_concurrent_sends import SlowTwilio, _sms_deliveries, _twilio_record

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.redis]


@pytest.fixture
def _keys(settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


@pytest.mark.django_db
def test_an_organization_past_its_burst_goes_to_the_bulk_queue_but_urgent_work_never(settings, organization):
    settings.DELIVERY_FAIR_BURST = 100
    assert organization_volume_add(organization.pk, 60) == 60
    assert delivery_queue_for(organization_id=organization.pk, volume=60) == Queue.DELIVERY
    volume = organization_volume_add(organization.pk, 60)
    assert volume == 120
    assert delivery_queue_for(organization_id=organization.pk, volume=volume) == Queue.DELIVERY_BULK
    assert delivery_queue_for(organization_id=organization.pk, volume=volume, criticality="CRITICAL") == Queue.DELIVERY
    # Another organization's window is its own.
    assert organization_volume_add(organization.pk + 10_000, 1) == 1


def test_one_notification_of_b_is_not_held_behind_a_big_send_of_a(transactional_db, tmp_path, settings, _keys, celery_purge):
    settings.DELIVERY_FAIR_BURST = 50
    settings.DELIVERY_BATCH_SIZES = {Channel.SMS: 20}
    env = {"PROVIDER_MAX_IN_FLIGHT": "4"}
    with SlowTwilio(delay=0.1) as twilio:
        _twilio_record(twilio.peer.url)
        org_a = Organization.objects.create(name="A", slug="fair-a")
        org_b = Organization.objects.create(name="B", slug="fair-b")
        a_rows = _sms_deliveries(org_a, 300)
        (b_row,) = _sms_deliveries(org_b, 1, start=900)
        workers = [start_worker(tmp_path, queues=f"{Queue.DELIVERY.value},{Queue.DELIVERY_BULK.value}", concurrency=1,
                                name=f"fair{i}", env=env) for i in range(2)]
        try:
            deliveries_enqueue(delivery_ids=[d.pk for d in a_rows])  # 15 batches of 20, past A's burst
            wait_until(lambda: NotificationDelivery.objects.filter(pk__in=[d.pk for d in a_rows[:40]],
                                                                   status=DeliveryStatus.SENT).exists(),
                       timeout=60, message="A's send to start")
            b_triggered = timezone.now()
            deliveries_enqueue(delivery_ids=[b_row.pk])
            wait_until(lambda: NotificationDelivery.objects.filter(pk=b_row.pk, status=DeliveryStatus.SENT).exists(),
                       timeout=60, message="B's notification to be sent")
            b_sent = NotificationDelivery.objects.get(pk=b_row.pk).sent_at
            a_sent_before_b = NotificationDelivery.objects.filter(pk__in=[d.pk for d in a_rows], sent_at__lte=b_sent).count()
            wait_until(lambda: NotificationDelivery.objects.filter(pk__in=[d.pk for d in a_rows],
                                                                   status=DeliveryStatus.SENT).count() == 300,
                       timeout=120, message="A's send to finish")
            a_last = max(NotificationDelivery.objects.filter(pk__in=[d.pk for d in a_rows]).values_list("sent_at", flat=True))
        finally:
            for worker in workers:
                worker.kill()
    # B went out while most of A's backlog was still queued (first come, first served would
    # have put it behind all 300), and nothing of either was sent twice or lost.
    assert a_sent_before_b <= 180, a_sent_before_b
    assert b_sent < a_last
    assert (b_sent - b_triggered).total_seconds() < (a_last - b_triggered).total_seconds() / 2
    assert set(twilio.by_recipient.values()) == {1} and len(twilio.by_recipient) == 301
