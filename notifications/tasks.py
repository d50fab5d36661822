"""Celery tasks of the notification engine: ids in, one service call.

Every task of the app is declared here; services publish them by name through
`common.publish`, never by importing this module. The periodic ones (scheduled by
config/beat.py) run on the maintenance queue so a backlog of deliveries never delays them,
and each beat entry carries an expiry so a pile-up while workers were down is dropped, not
replayed."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task

from batchjobs.services import batch_jobs_refresh_for_deliveries
from notifications.engine.delivery import deliver_batch
from notifications.engine.digest import digests_send_due
from notifications.engine.fanout import inapp_targets_publish
from notifications.engine.fanout_jobs import fanout_job_run, fanout_jobs_resume
from notifications.engine.escalation import escalation_start_recent, escalations_advance
from notifications.engine.housekeeping import housekeeping_run
from notifications.engine.provider_events import deliveries_unconfirmed_note, delivery_statuses_poll
from notifications.engine.retry import retries_run
from notifications.engine.scheduling import held_release, notifications_expire_due, scheduled_release
from notifications.engine.sweeper import deliveries_sweep
from notifications.engine.webhooks_outgoing import webhook_send_retry, webhooks_dispatch


@shared_task(name="notifications.deliver_batch", acks_late=True, ignore_result=True)
def deliver_batch_task(delivery_ids: list[int]) -> None:
    deliver_batch(delivery_ids=[int(pk) for pk in delivery_ids])
    # Once per chunk, not per delivery: the counters of the batch jobs these deliveries belong to.
    batch_jobs_refresh_for_deliveries(delivery_ids=[int(pk) for pk in delivery_ids])


@shared_task(name="notifications.fanout_run", acks_late=True, ignore_result=True)
def fanout_run_task(job_id: int) -> None:
    """An audience event's chunks (engine.fanout_jobs): resumable, each member notified once."""
    fanout_job_run(job_id=int(job_id))


@shared_task(name="notifications.inapp_publish", acks_late=True, ignore_result=True)
def inapp_publish_task(groups: list[list[Any]], targets: list[list[int]]) -> None:
    """A big fan-out's in-app items to the in-app bus (engine.fanout)."""
    inapp_targets_publish(items_by_group={int(g): item for g, item in groups}, targets=[tuple(t) for t in targets])


@shared_task(name="notifications.fanout_resume", acks_late=True, ignore_result=True)
def fanout_resume_task() -> None:
    fanout_jobs_resume()


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
    changed = delivery_statuses_poll()
    deliveries_unconfirmed_note()  # past the polling age: the reason in their trace
    return changed


# --- periodic (config/beat.py) ---------------------------------------------------------------

_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="notifications.dead_letter_rate_check", **_OPTIONS)
def dead_letter_rate_check_task() -> dict[str, Any]:
    from notifications.engine.operator_alerts import dead_letter_rate_check

    return dead_letter_rate_check()


@shared_task(name="notifications.retries_enqueue_due", **_OPTIONS)
def retries_enqueue_due_task() -> dict[str, int]:
    return retries_run()


@shared_task(name="notifications.deliveries_sweep", **_OPTIONS)
def deliveries_sweep_task(pending_after_seconds: int | None = None, claim_timeout_seconds: int | None = None) -> dict[str, int]:
    report = deliveries_sweep(
        pending_after=timedelta(seconds=pending_after_seconds) if pending_after_seconds is not None else None,
        claim_timeout=timedelta(seconds=claim_timeout_seconds) if claim_timeout_seconds is not None else None,
    )
    return vars(report)


@shared_task(name="notifications.escalations_advance", **_OPTIONS)
def escalations_advance_task() -> dict[str, int]:
    started = escalation_start_recent()
    report = escalations_advance()
    return {"started": started, **vars(report)}


@shared_task(name="notifications.held_release", **_OPTIONS)
def held_release_task() -> dict[str, int]:
    return held_release()


@shared_task(name="notifications.scheduled_release", **_OPTIONS)
def scheduled_release_task() -> int:
    return scheduled_release()


@shared_task(name="notifications.digests_send_due", **_OPTIONS)
def digests_send_due_task() -> dict[str, int]:
    return digests_send_due()


@shared_task(name="notifications.expire_due", **_OPTIONS)
def notifications_expire_due_task() -> int:
    return notifications_expire_due()


@shared_task(name="notifications.housekeeping", **_OPTIONS)
def housekeeping_task() -> dict[str, int]:
    return housekeeping_run()
