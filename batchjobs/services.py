"""Batch job bookkeeping: created with the work, counters recomputed set-based from the deliveries
(throttled after delivery chunks, exact once the last chunk is recorded)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from notifications.enums import DELIVERY_FINAL_STATUSES, DELIVERY_SUCCESS_STATUSES
from notifications.models import Notification, NotificationDelivery

from .models import BatchJob, BatchJobStatus, BatchJobType

# An event with more recipients than this records a batch job (invitation sends always do).
EVENT_THRESHOLD = 100


def batch_job_create(
    *, organization, job_type: str, total_count: int, created_by=None, story=None, event_id: Any = None,
    metadata: dict | None = None,
) -> BatchJob:
    now = timezone.now()
    return BatchJob.objects.create(
        organization=organization, created_by=created_by, job_type=job_type, story=story, event_id=event_id,
        total_count=total_count, status=BatchJobStatus.PROCESSING if event_id else BatchJobStatus.PENDING,
        scheduled_at=now, started_at=now if event_id else None, metadata=metadata or {},
    )


def batch_job_started(*, job_id: int, event_id: Any) -> None:
    """The job's event exists: its deliveries are now what the counters follow."""
    BatchJob.objects.filter(pk=job_id, status=BatchJobStatus.PENDING).update(
        event_id=event_id, status=BatchJobStatus.PROCESSING, started_at=timezone.now()
    )


def batch_job_failed(*, job_id: int, error: str) -> None:
    BatchJob.objects.filter(pk=job_id).exclude(status=BatchJobStatus.COMPLETED).update(
        status=BatchJobStatus.FAILED, error_message=error[:2000], completed_at=timezone.now()
    )


def batch_job_for_event(*, organization, event_id: Any, recipients: int, source: str) -> BatchJob | None:
    """The job of a large event (called by the notification intake), None under the threshold."""
    if recipients <= EVENT_THRESHOLD:
        return None
    return batch_job_create(
        organization=organization, job_type=BatchJobType.EVENT_FANOUT, total_count=recipients,
        event_id=event_id, metadata={"source": source},
    )


# A delivery chunk refreshes its job at most this often (seconds); the chunk that leaves no
# recipient in flight, the periodic `batchjobs.refresh` and the API's read always recount.
REFRESH_INTERVAL = 10


def _counts(event_ids: list[Any]) -> dict[Any, tuple[int, int]]:
    """(processed, succeeded) recipients per event, in one aggregate over the events' rows.

    A recipient (notification) is processed when none of its deliveries is in flight (one
    without deliveries counts as processed, not succeeded), a success when at least one of
    its deliveries reached the provider. One join and two GROUP BYs: no subquery per row.
    """
    if not event_ids:
        return {}
    final = [str(s) for s in DELIVERY_FINAL_STATUSES]
    success = [str(s) for s in DELIVERY_SUCCESS_STATUSES]
    field = Notification._meta.get_field("event_id")
    by_db_value = {field.get_db_prep_value(event_id, connection): event_id for event_id in event_ids}

    def marks(values: list) -> str:
        return ", ".join(["%s"] * len(values))

    # Portable SQL (PostgreSQL in production, SQLite in a dev run).
    sql = f"""
        SELECT event_id, SUM(CASE WHEN busy = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN busy = 0 AND ok = 1 THEN 1 ELSE 0 END)
        FROM (
            SELECT n.event_id AS event_id,
                   MAX(CASE WHEN d.id IS NOT NULL AND d.status NOT IN ({marks(final)}) THEN 1 ELSE 0 END) AS busy,
                   MAX(CASE WHEN d.status IN ({marks(success)}) THEN 1 ELSE 0 END) AS ok
            FROM {Notification._meta.db_table} n
            LEFT JOIN {NotificationDelivery._meta.db_table} d ON d.notification_id = n.id
            WHERE n.event_id IN ({marks(list(by_db_value))})
            GROUP BY n.id, n.event_id
        ) per_recipient
        GROUP BY event_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*final, *success, *by_db_value])
        rows = cursor.fetchall()
    counts: dict[Any, tuple[int, int]] = {}
    for db_value, processed, ok in rows:
        event_id = by_db_value.get(db_value, db_value)
        counts[event_id] = (int(processed or 0), int(ok or 0))
    return counts


def _refresh(jobs) -> int:
    """Recount every job in `jobs` from the deliveries of its event: one aggregate query for all
    of them, then one UPDATE per job with the figures (a job leaves PROCESSING once every
    recipient is processed: completed, or failed when none of them was reached)."""
    rows = list(jobs.filter(status=BatchJobStatus.PROCESSING, event_id__isnull=False)
                .values_list("pk", "event_id", "total_count"))
    if not rows:
        return 0
    counts = _counts(sorted({event_id for _, event_id, _ in rows}))
    now = timezone.now()
    updated = 0
    for pk, event_id, total in rows:
        processed, success = counts.get(event_id, (0, 0))
        changes: dict[str, Any] = {"processed_count": processed, "success_count": success,
                                   "failed_count": processed - success}
        if total <= processed:
            changes["completed_at"] = now
            if success == 0:
                changes.update(status=BatchJobStatus.FAILED, error_message="No recipient could be reached.")
            else:
                changes["status"] = BatchJobStatus.COMPLETED
        # Only a job still processing: a concurrent recount that finished it first wins.
        updated += BatchJob.objects.filter(pk=pk, status=BatchJobStatus.PROCESSING).update(**changes)
    return updated


def batch_jobs_refresh(*, job_ids: Iterable[int] | None = None) -> int:
    """Recompute the counters of active jobs (all of them, or `job_ids`) from their deliveries.

    One aggregate query for all of them — however many deliveries resolved since the last run,
    never a write per delivery. A job whose recipients are all processed is completed (failed
    when none of them was reached). Returns the number of jobs updated.
    """
    jobs = BatchJob.objects.filter(status=BatchJobStatus.PROCESSING, event_id__isnull=False)
    if job_ids is not None:
        jobs = jobs.filter(pk__in=list(job_ids))
    return _refresh(jobs)


def refresh_throttle_key(job_id: int) -> str:
    """The shared cache key that holds back a job's next recount by a delivery chunk (per database)."""
    from django.conf import settings

    return f"batchjob-refresh:{settings.DATABASES['default'].get('NAME', '')}:{job_id}"


def _refresh_due(job_id: int) -> bool:
    """True at most once per REFRESH_INTERVAL per job, across processes (the shared cache)."""
    from django.conf import settings

    interval = getattr(settings, "BATCH_JOB_REFRESH_INTERVAL", REFRESH_INTERVAL)
    if not interval:
        return True
    try:
        return bool(cache.add(refresh_throttle_key(job_id), 1, timeout=interval))
    except Exception:  # noqa: BLE001 - no cache: recount (exact, just slower)
        return True


def _in_flight(event_ids: list[Any]) -> set[Any]:
    """The events among `event_ids` that still have a delivery in flight: one EXISTS (LIMIT 1)
    per event — it stops at the first such delivery instead of reading all of them."""
    busy = NotificationDelivery.objects.exclude(status__in=DELIVERY_FINAL_STATUSES)
    return {event_id for event_id in event_ids if busy.filter(notification__event_id=event_id).exists()}


def batch_jobs_refresh_for_deliveries(*, delivery_ids: list[int]) -> int:
    """After a delivery chunk: refresh the jobs these deliveries belong to.

    Throttled: a job is recounted at most once per REFRESH_INTERVAL by the chunks (a recount
    reads the whole event), except by the chunk after which none of the event's deliveries is
    in flight any more — that one always recounts, so a job finishes with its last chunk, with
    exact counters. The periodic refresh and the API's read recount unconditionally.
    """
    events = Notification.objects.filter(deliveries__pk__in=delivery_ids).values("event_id")
    # Most chunks belong to no job (events of 100 recipients or fewer): one cheap lookup spares
    # building and running the count for nothing.
    jobs = list(BatchJob.objects.filter(status=BatchJobStatus.PROCESSING, event_id__in=events).values_list("pk", "event_id"))
    if not jobs:
        return 0
    due = [pk for pk, _ in jobs if _refresh_due(pk)]
    waiting = {pk: event_id for pk, event_id in jobs if pk not in due}
    if waiting:
        busy = _in_flight(list(set(waiting.values())))
        due.extend(pk for pk, event_id in waiting.items() if event_id not in busy)
    return _refresh(BatchJob.objects.filter(pk__in=due)) if due else 0


def batch_jobs_refresh_for_story(*, story) -> int:
    """Refresh the story's active jobs (the story page's live progress)."""
    job_ids = list(BatchJob.objects.filter(story=story, status=BatchJobStatus.PROCESSING).values_list("pk", flat=True))
    return batch_jobs_refresh(job_ids=job_ids) if job_ids else 0
