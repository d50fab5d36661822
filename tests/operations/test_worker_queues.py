"""Queues and routes: a plain `celery -A config worker` (no -Q) consumes every queue of the
platform, tasks are routed by `task_routes` (no task names a queue itself), and -Q narrows."""
from __future__ import annotations

import signal

import pytest

from common.queues import Queue
from config.celery import app
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from tests.conftest import IN_CI, start_worker, wait_until
from tests.notifications.test_e2e import _inbox, _publish, consumer, smtp_sink  # noqa: F401  (fixtures)


def test_every_queue_is_declared_and_every_task_is_routed_by_task_routes():
    app.loader.import_default_modules()
    assert {q.name for q in app.amqp.queues.values()} == {q.value for q in Queue}
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "notifications.deliver_batch" in ours and "providers.health_check_all" in ours
    for name, task in ours.items():
        assert getattr(task, "queue", None) is None, f"{name} names its queue; route it in common.queues"
    route = lambda name: app.amqp.router.route({}, name)["queue"].name  # noqa: E731
    assert route("notifications.deliver_batch") == Queue.DELIVERY
    assert route("notifications.expire_due") == Queue.MAINTENANCE
    assert route("providers.health_check") == Queue.MAINTENANCE
    assert route("narrations.pregenerate") == Queue.NARRATION
    assert route("notifications.webhook_send") == Queue.DEFAULT


def test_minus_q_narrows_a_worker_to_the_named_queues():
    # What `celery worker -Q delivery` does with the declared queues.
    queues = app.amqp.Queues(app.conf.task_queues)
    assert set(queues.consume_from) == {q.value for q in Queue}
    queues.select([Queue.DELIVERY.value])
    assert set(queues.consume_from) == {Queue.DELIVERY.value}


@pytest.fixture
def worker(smtp_sink, transactional_db, tmp_path, settings, celery_purge):  # noqa: F811
    """The worker command every Celery user types first: no -Q."""
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.skip("needs RabbitMQ") if not IN_CI else pytest.fail("RabbitMQ required in CI")
    proc = start_worker(tmp_path, plain=True, name="plain")
    yield proc
    proc.kill(signal.SIGTERM) if proc.proc.poll() is None else None


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_plain_worker_delivers_an_amqp_event_end_to_end(consumer, worker, smtp_sink, auth_client, user,  # noqa: F811
                                                          organization):
    assert " -Q" not in " ".join(worker.proc.args)
    _publish("task.assigned", {
        "type": "task.assigned", "organizationId": organization.pk, "recipientIds": [str(user.pk)],
        "resource": {"type": "task", "id": "T-9", "name": "Plain"}, "data": {"taskTitle": "Plain worker"},
        "suggestedChannels": ["IN_APP", "EMAIL"],
    })
    [item] = wait_until(lambda: _inbox(auth_client), timeout=60, message=f"inbox item\n{worker.log[-3000:]}")
    [message] = wait_until(lambda: smtp_sink.to(user.email), timeout=60, message=f"email\n{worker.log[-3000:]}")
    assert message["Subject"] == "New task: Plain worker"
    wait_until(lambda: NotificationDelivery.objects.filter(
        notification_id=item["id"], channel=Channel.EMAIL, status=DeliveryStatus.SENT).exists(), timeout=30)
    # The worker announced every queue it consumes, the delivery queue among them.
    for queue in Queue:
        assert f"exchange={queue.value}(direct) key={queue.value}" in worker.log
