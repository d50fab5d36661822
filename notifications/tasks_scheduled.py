"""Periodic tasks (scheduled by config/beat.py): thin wrappers, one service call each.

They run on the maintenance queue so a backlog of deliveries never delays them, and each
beat entry carries an expiry so a pile-up while workers were down is dropped, not replayed.
"""
from __future__ import annotations

from celery import shared_task


_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="notifications.retries_enqueue_due", **_OPTIONS)
def retries_enqueue_due_task() -> dict[str, int]:
    from notifications.engine.retry import retries_run

    return retries_run()


@shared_task(name="notifications.deliveries_sweep", **_OPTIONS)
def deliveries_sweep_task(pending_after_seconds: int | None = None, claim_timeout_seconds: int | None = None) -> dict[str, int]:
    from datetime import timedelta

    from notifications.engine.sweeper import deliveries_sweep

    report = deliveries_sweep(
        pending_after=timedelta(seconds=pending_after_seconds) if pending_after_seconds is not None else None,
        claim_timeout=timedelta(seconds=claim_timeout_seconds) if claim_timeout_seconds is not None else None,
    )
    return vars(report)


@shared_task(name="notifications.escalations_advance", **_OPTIONS)
def escalations_advance_task() -> dict[str, int]:
    from notifications.engine.escalation import escalation_start_recent, escalations_advance

    started = escalation_start_recent()
    report = escalations_advance()
    return {"started": started, **vars(report)}


@shared_task(name="notifications.held_release", **_OPTIONS)
def held_release_task() -> dict[str, int]:
    from notifications.engine.scheduling import held_release

    return held_release()


@shared_task(name="notifications.scheduled_release", **_OPTIONS)
def scheduled_release_task() -> int:
    from notifications.engine.scheduling import scheduled_release

    return scheduled_release()


@shared_task(name="notifications.digests_send_due", **_OPTIONS)
def digests_send_due_task() -> dict[str, int]:
    from notifications.engine.digest import digests_send_due

    return digests_send_due()


@shared_task(name="notifications.expire_due", **_OPTIONS)
def notifications_expire_due_task() -> int:
    from notifications.engine.scheduling import notifications_expire_due

    return notifications_expire_due()



@shared_task(name="notifications.housekeeping", **_OPTIONS)
def housekeeping_task() -> dict[str, int]:
    from notifications.engine.housekeeping import housekeeping_run

    return housekeeping_run()
