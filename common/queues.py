"""Celery queues and routes, declared once.

`TASK_QUEUES` lists every queue of the platform, so a plain `celery -A config worker`
consumes all of them (`-Q delivery` narrows a worker to one). `TASK_ROUTES` says which
queue each task goes to; tasks themselves name no queue.
"""
from __future__ import annotations

from enum import StrEnum

from kombu import Exchange
from kombu import Queue as AmqpQueue


class Queue(StrEnum):
    DEFAULT = "default"
    EVENTS = "events"
    DELIVERY = "delivery"
    # An organization's deliveries beyond its fair share (notifications.engine.fairness).
    DELIVERY_BULK = "delivery_bulk"
    NARRATION = "narration"
    MAINTENANCE = "maintenance"


ALL_QUEUES = ",".join(q.value for q in Queue)

# The same declaration Celery makes for a queue it creates on demand (a direct exchange of
# the queue's name), so queues already on the broker are redeclared without a conflict.
TASK_QUEUES = tuple(AmqpQueue(q.value, Exchange(q.value, type="direct"), routing_key=q.value) for q in Queue)


def _to(queue: Queue) -> dict[str, str]:
    return {"queue": queue.value}


# Exact names first, then glob patterns; anything unrouted goes to the default queue.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "notifications.deliver_batch": _to(Queue.DELIVERY),
    "notifications.webhooks_dispatch": _to(Queue.DEFAULT),
    "notifications.webhook_send": _to(Queue.DEFAULT),
    # periodic sweeps (config/beat.py): a backlog of deliveries never delays them
    "notifications.retries_enqueue_due": _to(Queue.MAINTENANCE),
    "notifications.deliveries_sweep": _to(Queue.MAINTENANCE),
    "notifications.escalations_advance": _to(Queue.MAINTENANCE),
    "notifications.held_release": _to(Queue.MAINTENANCE),
    "notifications.scheduled_release": _to(Queue.MAINTENANCE),
    "notifications.digests_send_due": _to(Queue.MAINTENANCE),
    "notifications.expire_due": _to(Queue.MAINTENANCE),
    "notifications.housekeeping": _to(Queue.MAINTENANCE),
    "invitations.expire_due": _to(Queue.MAINTENANCE),
    "batchjobs.refresh": _to(Queue.MAINTENANCE),
    "notifications.fanout_resume": _to(Queue.MAINTENANCE),
    "notifications.fanout_run": _to(Queue.EVENTS),
    "notifications.inapp_publish": _to(Queue.DEFAULT),
    "providers.*": _to(Queue.MAINTENANCE),
    "narrations.*": _to(Queue.NARRATION),
}
