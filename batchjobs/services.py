"""Batch job bookkeeping: created with the work, counters recomputed set-based from the deliveries."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
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


def _count(notifications) -> Coalesce:
    return Coalesce(
        Subquery(notifications.order_by().values("event_id").annotate(n=Count("pk")).values("n")[:1],
                 output_field=IntegerField()),
        0,
    )


def _refresh(jobs) -> int:
    """One UPDATE for every job in `jobs`: counters from the deliveries of each job's event,
    and the final status once every recipient is processed."""
    in_flight = NotificationDelivery.objects.filter(notification=OuterRef("pk")).exclude(status__in=DELIVERY_FINAL_STATUSES)
    succeeded = NotificationDelivery.objects.filter(notification=OuterRef("pk"), status__in=DELIVERY_SUCCESS_STATUSES)
    done = Notification.objects.filter(event_id=OuterRef("event_id")).annotate(busy=Exists(in_flight)).filter(busy=False)
    processed = _count(done)
    success = _count(done.annotate(ok=Exists(succeeded)).filter(ok=True))
    finished = Q(total_count__lte=processed)
    return jobs.update(
        processed_count=processed,
        success_count=success,
        failed_count=processed - success,
        status=Case(
            When(finished & Q(Exact(success, 0)), then=Value(BatchJobStatus.FAILED.value)),
            When(finished, then=Value(BatchJobStatus.COMPLETED.value)),
            default=F("status"), output_field=CharField(),
        ),
        completed_at=Case(When(finished, then=Value(timezone.now())), default=F("completed_at"),
                          output_field=DateTimeField()),
        error_message=Case(
            When(finished & Q(Exact(success, 0)), then=Value("No recipient could be reached.")),
            default=F("error_message"), output_field=TextField(),
        ),
    )


def batch_jobs_refresh(*, job_ids: Iterable[int] | None = None) -> int:
    """Recompute the counters of active jobs (all of them, or `job_ids`) from their deliveries.

    One UPDATE for all of them — however many deliveries resolved since the last run, never a
    write per delivery. A job whose recipients are all processed is completed (failed when none
    of them was reached). Returns the number of jobs updated.
    """
    jobs = BatchJob.objects.filter(status=BatchJobStatus.PROCESSING, event_id__isnull=False)
    if job_ids is not None:
        jobs = jobs.filter(pk__in=list(job_ids))
    return _refresh(jobs)


def batch_jobs_refresh_for_deliveries(*, delivery_ids: list[int]) -> int:
    """After a delivery chunk: refresh the jobs these deliveries belong to (one UPDATE)."""
    events = Notification.objects.filter(deliveries__pk__in=delivery_ids).values("event_id")
    # Most chunks belong to no job (events of 100 recipients or fewer): one cheap lookup spares
    # building and running the counting UPDATE for nothing.
    job_ids = list(BatchJob.objects.filter(status=BatchJobStatus.PROCESSING, event_id__in=events).values_list("pk", flat=True))
    return _refresh(BatchJob.objects.filter(pk__in=job_ids)) if job_ids else 0


def batch_jobs_refresh_for_story(*, story) -> int:
    """Refresh the story's active jobs (the story page's live progress)."""
    job_ids = list(BatchJob.objects.filter(story=story, status=BatchJobStatus.PROCESSING).values_list("pk", flat=True))
    return batch_jobs_refresh(job_ids=job_ids) if job_ids else 0
