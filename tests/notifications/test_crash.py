"""Crash tests that really crash things: kill -9 a worker mid-batch, restart RabbitMQ while
events are published through the REST API, restart PostgreSQL under running workers.

They run real `celery worker` processes against the test database and a loopback Meta
WhatsApp Graph API that counts messages by delivery id (the provider passes the delivery id
as `biz_opaque_callback_data`). Figures are printed (run with -s to see them) and appended
to var/crash-figures.jsonl.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from common.queues import Queue
from notifications.engine.delivery import batch_size_for, deliveries_enqueue
from notifications.engine.retry import deliveries_requeue_due
from notifications.engine.sweeper import deliveries_sweep
from notifications.enums import DELIVERY_SUCCESS_STATUSES, Channel, DeliveryStatus, EventCategory, NotificationStatus
from notifications.models import Notification, NotificationDelivery
from providers.concurrency import max_in_flight
from providers.journal import journal_in_flight
from providers.models import NotificationProvider
from tests.conftest import start_worker, wait_until
from tests.factories import MembershipFactory, UserFactory

from .test_retry_support import WhatsAppSink

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
SENT = [str(s) for s in DELIVERY_SUCCESS_STATUSES]


def _record(name: str, figures: dict) -> None:
    line = json.dumps({"test": name, "at": timezone.now().isoformat(), **figures})
    print(f"\nCRASH FIGURES {line}")
    path = ROOT / "var" / "crash-figures.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(line + "\n")


def _purge_queues() -> None:
    """Messages a previous run left behind must not leak into this one."""
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in Queue:
            channel = conn.channel()
            try:
                channel.queue_purge(queue.value)
            except Exception:  # the queue does not exist yet
                pass
            finally:
                try:
                    channel.close()
                except Exception:
                    pass


@pytest.fixture
def sink(transactional_db, monkeypatch):
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "crash-test-token")
    sink = WhatsAppSink()
    sink.peer.start()
    NotificationProvider.objects.create(
        organization=None, code="meta_whatsapp", channel=Channel.WHATSAPP, name="WhatsApp sink",
        config={"base_url": sink.peer.url, "phone_number_id": "1000", "circuit_failure_threshold": 1000}, priority=0,
    )
    _purge_queues()
    yield sink
    sink.peer.stop()


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(name: str, **kwargs):
        worker = start_worker(tmp_path, name=name, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.kill()


def _deliveries(organization, count: int) -> list[int]:
    user = UserFactory(phone="+14155550150")
    MembershipFactory(user=user, organization=organization)
    notifications = Notification.objects.bulk_create(
        Notification(organization=organization, recipient=user, recipient_phone=user.phone, event_type="task.assigned",
                     category=EventCategory.PROJECT_MANAGEMENT, title=f"Task {i}", body="Crash test",
                     status=NotificationStatus.PROCESSING)
        for i in range(count)
    )
    rows = NotificationDelivery.objects.bulk_create(
        NotificationDelivery(notification=n, organization=organization, channel=Channel.WHATSAPP,
                             recipient_address=user.phone)
        for n in notifications
    )
    return [d.pk for d in rows]


def _sent_count(ids=None) -> int:
    qs = NotificationDelivery.objects.filter(status__in=SENT)
    return qs.filter(pk__in=ids).count() if ids is not None else qs.count()


def _sweep_until_done(ids: list[int], *, timeout: float, claim_timeout: float = 3.0, wait_for_queue: bool = True,
                      retries: list[str] | None = None) -> int:
    """What beat does every two minutes, on short timeouts: re-queue what is stuck.

    `wait_for_queue`: sweep only once nothing is PENDING any more, i.e. once the live worker
    has drained the queue, so that every SENDING row left is a dead worker's claim.
    `retries`: a row a transient error put off (a loopback call that timed out on a busy
    machine) is queued at once, as beat's retry tick would once its time has come; its error is
    appended to the list.
    """
    sweeps = 0

    def done() -> bool:
        nonlocal sweeps
        if _sent_count(ids) == len(ids):
            return True
        if retries is not None:
            put_off = NotificationDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING, next_retry_at__isnull=False)
            errors = list(put_off.values_list("error", flat=True))
            if errors:
                retries.extend(errors)
                deliveries_requeue_due(now=timezone.now() + timedelta(days=1))
        if not (wait_for_queue and NotificationDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING).exists()):
            deliveries_sweep(pending_after=timedelta(seconds=3), claim_timeout=timedelta(seconds=claim_timeout))
            sweeps += 1
        return False

    wait_until(done, timeout=timeout, interval=1.0, message="every delivery sent")
    return sweeps


def test_kill_9_mid_batch_then_new_worker_and_sweeper_deliver_everything_once(organization, sink, workers):
    total = 2000
    ids = _deliveries(organization, total)
    sink.delay = 0.002  # a realistic provider round trip keeps the batch in flight when the kill lands
    first = workers("crash-a", queues=f"{Queue.DELIVERY.value},{Queue.DELIVERY_BULK.value}", concurrency=2)
    started = time.monotonic()
    deliveries_enqueue(delivery_ids=ids)  # no transaction open: published at once
    wait_until(lambda: sink.total >= total // 3, timeout=120, interval=0.05, message="a third of the sends")
    first.kill()  # SIGKILL to the worker and its pool processes
    killed_at = time.monotonic()
    time.sleep(0.5)  # nothing of the killed processes runs any more (not a line, not a write)
    reached_at_kill = sink.total
    in_flight = set(NotificationDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.SENDING).values_list("pk", flat=True))
    # The calls the killed processes had started and whose end the journal never heard of.
    marks = journal_in_flight(keys=[str(pk) for pk in ids])

    workers("crash-b", queues=f"{Queue.DELIVERY.value},{Queue.DELIVERY_BULK.value}", concurrency=2)
    retried: list[str] = []
    sweeps = _sweep_until_done(ids, timeout=180, retries=retried)
    recovered_after = time.monotonic() - killed_at

    counts = sink.by_delivery
    missing = [pk for pk in ids if counts.get(str(pk), 0) == 0]
    duplicated = {int(k): c for k, c in counts.items() if c > 1}
    _record("kill_9", {
        "deliveries": total, "sink_requests": sink.total, "reached_sink": total - len(missing),
        "sent_before_kill": reached_at_kill, "claimed_by_killed_worker": len(in_flight),
        "marked_in_flight_at_kill": len(marks), "marked_per_process": sorted(Counter(m["pid"] for m in marks.values()).values()),
        "duplicates": sum(c - 1 for c in duplicated.values()), "sweeps": sweeps, "transient_errors": retried,
        "recovery_seconds": round(recovered_after, 1), "total_seconds": round(time.monotonic() - started, 1),
    })
    assert missing == []
    assert _sent_count(ids) == total
    # A batch's messages go out concurrently, but a process holds each of its (at most
    # PROVIDER_MAX_IN_FLIGHT) slots from before a call's journal mark until the call's outcome is
    # journaled: only a message the killed process was sending at that moment may go twice,
    # and at most twice. Everything else it had claimed was journaled as accepted (recorded,
    # not resent) or never left.
    assert set(duplicated) <= in_flight
    assert len(in_flight) <= 2 * batch_size_for(Channel.WHATSAPP)  # two pool processes, one batch each
    assert set(duplicated) <= {int(pk) for pk in marks}
    marks_per_process = Counter(mark["pid"] for mark in marks.values())
    assert len(marks_per_process) <= 2
    assert all(n <= max_in_flight() for n in marks_per_process.values()), marks_per_process
    assert sum(c - 1 for c in duplicated.values()) <= 2 * max_in_flight()
    assert all(c == 2 for c in duplicated.values())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_rabbitmq_restart_while_publishing_every_accepted_event_is_delivered(organization, sink, workers, key_client):
    users = [UserFactory(phone=f"+1415555{2000 + i:04d}") for i in range(5)]
    for u in users:
        MembershipFactory(user=u, organization=organization)
    workers("rabbit", concurrency=2)
    accepted: list[int] = []
    refused: list[int] = []
    stop = threading.Event()

    def publish() -> None:
        i = 0
        try:
            while not stop.is_set() and i < 400:
                response = key_client.post("/api/v1/events/", {
                    "type": "incident.created", "recipient_ids": [str(users[i % len(users)].pk)],
                    "channels": ["WHATSAPP"], "data": {"incidentTitle": f"Disk {i}"},
                    "resource": {"type": "incident", "id": f"INC-{i}"},
                }, format="json")
                if response.status_code == 202:
                    accepted.extend(n["id"] for n in response.json()["notifications"])
                else:
                    refused.append(response.status_code)
                i += 1
                time.sleep(0.02)
        finally:
            connection.close()

    thread = threading.Thread(target=publish)
    thread.start()
    wait_until(lambda: len(accepted) >= 40, timeout=60, message="events flowing")
    outage_started = time.monotonic()
    _rabbitmqctl("stop_app")
    try:
        time.sleep(3)
    finally:
        _rabbitmqctl("start_app")
    outage = time.monotonic() - outage_started
    time.sleep(3)
    stop.set()
    thread.join(timeout=120)

    ids = list(NotificationDelivery.objects.filter(notification_id__in=accepted).values_list("pk", flat=True))
    assert len(ids) == len(accepted)
    recovery_started = time.monotonic()
    # Rows whose publish failed during the outage are PENDING with no message: the sweeper's case.
    sweeps = _sweep_until_done(ids, timeout=180, claim_timeout=60, wait_for_queue=False)
    reached = {str(pk) for pk in ids} & set(sink.by_delivery)
    _record("rabbitmq_restart", {
        "events_accepted": len(accepted), "events_refused": len(refused), "reached_sink": len(reached),
        "duplicates": sum(c - 1 for c in sink.by_delivery.values() if c > 1), "broker_outage_seconds": round(outage, 1),
        "sweeps": sweeps, "recovery_seconds": round(time.monotonic() - recovery_started, 1),
    })
    assert len(reached) == len(ids)


def _postgres_cluster() -> tuple[str, str]:
    """(version, cluster) of the cluster serving the test database, found by its port."""
    port = str(settings.DATABASES["default"].get("PORT") or urlparse(os.environ.get("DATABASE_URL", "")).port or 5432)
    out = subprocess.run(["pg_lsclusters", "--no-header"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == port:
            return parts[0], parts[1]
    pytest.fail(f"no local PostgreSQL cluster listens on port {port}")


def test_postgresql_restart_workers_recover_on_their_own(organization, sink, workers):
    ids_before = _deliveries(organization, 200)
    workers("pg", queues=f"{Queue.DELIVERY.value},{Queue.DELIVERY_BULK.value}", concurrency=2)
    deliveries_enqueue(delivery_ids=ids_before)
    wait_until(lambda: _sent_count(ids_before) == 200, timeout=60, message="first wave sent")

    version, cluster = _postgres_cluster()
    connection.close()
    restarted = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"],
                   check=True, capture_output=True, timeout=120)
    connection.close()

    ids_after = list(NotificationDelivery.objects.filter(pk__in=_deliveries(organization, 200)).values_list("pk", flat=True))
    deliveries_enqueue(delivery_ids=ids_after)
    # No worker restart, no sweeper: the running workers must pick the work up by themselves.
    wait_until(lambda: _sent_count(ids_after) == 200, timeout=120, interval=0.5, message="second wave sent")
    _record("postgresql_restart", {
        "deliveries_after_restart": 200, "reached_sink": len({str(pk) for pk in ids_after} & set(sink.by_delivery)),
        "recovery_seconds": round(time.monotonic() - restarted, 1),
    })
    assert all(sink.by_delivery.get(str(pk)) == 1 for pk in ids_after)
