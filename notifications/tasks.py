"""Celery tasks of the notification engine: ids in, one service call."""
from __future__ import annotations

from celery import shared_task



@shared_task(name="notifications.deliver_batch", acks_late=True, ignore_result=True)
def deliver_batch_task(delivery_ids: list[int]) -> None:
    from notifications.engine.delivery import deliver_batch

    deliver_batch(delivery_ids=[int(pk) for pk in delivery_ids])
from notifications import tasks_scheduled  # noqa: E402,F401  (periodic tasks, scheduled by config/beat.py)
from notifications.engine import webhooks as _webhooks  # noqa: E402,F401  (webhooks_dispatch, webhook_send)
