"""A fan-out job survives its worker being killed mid-way: a real worker process, killed with
SIGKILL between chunks, and a second one that resumes — each member notified exactly once."""
from __future__ import annotations

import signal

import pytest
from django.db.models import Count

from batchjobs.models import BatchJob
from notifications.engine.intake import event_emit
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationDelivery
from tests.conftest import start_worker, wait_until
from tests.factories import OrganizationFactory

from .intake_support import EVENT, intake_event_type, members_bulk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.rabbitmq]

MEMBERS = 240
CHUNK = 8


def _progress(job_id: int) -> dict:
    return BatchJob.objects.get(pk=job_id).metadata["fanout"]


def test_killed_worker_mid_fanout_resumes_and_notifies_each_member_once(tmp_path, settings, celery_purge):
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.fail("RabbitMQ required")
    settings.FANOUT_INLINE_MAX = 10
    intake_event_type(default_channels=[Channel.IN_APP])
    organization = OrganizationFactory()
    ids = members_bulk(organization, MEMBERS, prefix="resume")
    env = {"FANOUT_CHUNK_SIZE": str(CHUNK), "FANOUT_INLINE_MAX": "10", "LOG_LEVEL": "WARNING"}
    first = start_worker(tmp_path, queues="events", concurrency=1, name="fanout-a", env=env)
    try:
        result = event_emit(organization=organization, type=EVENT, audience={"organization": True})  # publishes on commit
        job_id = result.batch_job_id
        wait_until(lambda: _progress(job_id)["chunks"] >= 3, timeout=60, interval=0.02, message="a few chunks")
    finally:
        first.kill(signal.SIGKILL)
    at_kill = _progress(job_id)
    assert not at_kill["done"] and 0 < at_kill["written"] < MEMBERS, at_kill
    # What was committed before the kill is exactly the chunks the cursor moved past.
    assert Notification.objects.filter(event_id=result.event_id).count() == at_kill["written"]

    second = start_worker(tmp_path, queues="events", concurrency=1, name="fanout-b", env=env)
    try:
        wait_until(lambda: _progress(job_id)["done"], timeout=180, interval=0.2, message="the fan-out to finish")
    finally:
        second.kill(signal.SIGTERM)
    per_member = dict(Notification.objects.filter(event_id=result.event_id).values_list("recipient_id")
                      .annotate(n=Count("id")).values_list("recipient_id", "n"))
    assert sorted(per_member) == sorted(ids)
    assert set(per_member.values()) == {1}
    assert NotificationDelivery.objects.filter(notification__event_id=result.event_id, channel=Channel.IN_APP,
                                               status=DeliveryStatus.SENT).count() == MEMBERS
    job = BatchJob.objects.get(pk=job_id)
    assert job.total_count == MEMBERS and job.metadata["fanout"]["chunks"] == MEMBERS // CHUNK
