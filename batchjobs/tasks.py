from __future__ import annotations

from celery import shared_task

from .services import batch_jobs_refresh


@shared_task(name="batchjobs.refresh", acks_late=True)
def batch_jobs_refresh_task() -> int:
    """Catch the counters of active jobs up with deliveries resolved by callbacks (periodic)."""
    return batch_jobs_refresh()
