"""Celery tasks of the notification engine: ids in, one service call.

Every task of the app is declared here (the periodic ones in `tasks_scheduled`, imported
below); services publish them by name through `common.publish`, never by importing this module."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from batchjobs.services import batch_jobs_refresh_for_deliveries
from notifications import tasks_scheduled  # noqa: F401  (periodic tasks, scheduled by config/beat.py)
from notifications.engine.delivery import deliver_batch
from notifications.engine.provider_events import delivery_statuses_poll
from notifications.engine.webhooks_outgoing import webhook_send_retry, webhooks_dispatch


@shared_task(name="notifications.deliver_batch", acks_late=True, ignore_result=True)
def deliver_batch_task(delivery_ids: list[int]) -> None:
    deliver_batch(delivery_ids=[int(pk) for pk in delivery_ids])
    # Once per chunk, not per delivery: the counters of the batch jobs these deliveries belong to.
    batch_jobs_refresh_for_deliveries(delivery_ids=[int(pk) for pk in delivery_ids])


@shared_task(name="notifications.webhooks_dispatch", acks_late=True, ignore_result=True)
def webhooks_dispatch_task(events: list[list[Any]]) -> None:
    webhooks_dispatch(events=events)


@shared_task(name="notifications.webhook_send", acks_late=True, ignore_result=True)
def webhook_send_task(webhook_id: int, message: dict[str, Any], attempt: int) -> None:
    webhook_send_retry(webhook_id=int(webhook_id), message=message, attempt=int(attempt))


# Named under providers.* (its schedule and route predate the move): providers that support
# polling are asked about deliveries still SENT.
@shared_task(name="providers.poll_delivery_status", ignore_result=True)
def poll_delivery_status_task() -> int:
    return delivery_statuses_poll()
