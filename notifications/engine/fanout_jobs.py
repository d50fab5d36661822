"""Audience events in resumable chunks, recorded as batch jobs (seed 000 `notification_batch_jobs`).

An audience of at most ``FANOUT_INLINE_MAX`` members is resolved inside the request and taken
in like any list of recipients. A bigger one records an ``event_fanout`` batch job (its event
id, the event's fields, the audience, and a cursor) and returns at once; the task
``notifications.fanout_run`` then takes the audience in ``FANOUT_CHUNK_SIZE`` members at a time,
in user-id order. Each chunk is one transaction that holds the job row's lock, writes the
chunk's notifications (engine.intake, set-based) and moves the cursor past them: a chunk is
either written with its cursor or not at all, and two runners of one job take turns on the
lock, each starting from the cursor the other committed. So a worker killed mid-way loses at
most the chunk it was writing; the task's message (acknowledged late) comes back to the next
worker, which resumes from the cursor — each member is notified exactly once. A job whose
runner vanished with its message is picked up again by ``fanout_jobs_resume`` (periodic).

Progress is in the job's ``metadata.fanout`` (cursor, written, chunks, done); once done, the
job's total is the number of notifications written and its delivery counters follow
(batchjobs.services).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batchjobs.models import BatchJob, BatchJobStatus, BatchJobType
from batchjobs.services import batch_jobs_refresh
from common.publish import tasks_publish_on_commit

from .audiences import Audience, audience_user_ids
from .audit import AuditActor

logger = logging.getLogger(__name__)

STALLED_AFTER = timedelta(minutes=2)


def _chunk_size() -> int:
    return max(1, int(getattr(settings, "FANOUT_CHUNK_SIZE", 5000)))


def fanout_chunk_run(*, job_id: int) -> bool:
    """Write the next chunk of a fan-out job; False once there is nothing left (or no such job)."""
    return _chunk_run(job_id)[1]


def _chunk_run(job_id: int) -> tuple[int, bool]:
    """(recipients written, whether more may follow) for the job's next chunk."""
    from .intake import event_emit

    with transaction.atomic():
        job = (BatchJob.objects.select_for_update().select_related("organization")
               .filter(pk=job_id, job_type=BatchJobType.EVENT_FANOUT).first())
        state = (job.metadata or {}).get("fanout") if job else None
        if job is None or not state or state.get("done") or job.status not in (BatchJobStatus.PENDING,
                                                                                BatchJobStatus.PROCESSING):
            return 0, False
        audience = Audience.from_dict(state["audience"])
        ids = audience_user_ids(organization_id=job.organization_id, audience=audience, after=int(state["cursor"]),
                                limit=_chunk_size())
        if ids:
            event = {k: v for k, v in state["event"].items() if v is not None}
            event_emit(organization=job.organization, recipient_ids=ids, event_id=job.event_id, fanout_chunk=True,
                       source=state.get("source") or "api", audit_actor=AuditActor(**state["actor"]), **event)
            state.update(cursor=ids[-1], written=int(state["written"]) + len(ids), chunks=int(state["chunks"]) + 1)
        done = len(ids) < _chunk_size()
        state.update(done=done, heartbeat=timezone.now().isoformat())
        job.metadata = {**job.metadata, "fanout": state}
        fields = ["metadata"]
        if done:
            job.total_count = max(int(state["written"]), 0)
            fields.append("total_count")
            if job.total_count == 0:
                job.status, job.completed_at = BatchJobStatus.COMPLETED, timezone.now()
                fields += ["status", "completed_at"]
        job.save(update_fields=fields)
    if done:
        batch_jobs_refresh(job_ids=[job_id])
    return len(ids), not done


def fanout_job_run(*, job_id: int) -> int:
    """Every remaining chunk of the job, one transaction each; returns the chunks written."""
    chunks = 0
    while True:
        written, more = _chunk_run(job_id)
        chunks += 1 if written else 0
        if not more:
            return chunks


def fanout_jobs_resume(*, now=None) -> int:
    """Queue the runner again for fan-outs that stopped moving (their runner vanished)."""
    now = now or timezone.now()
    stalled = []
    for pk, metadata in BatchJob.objects.filter(
        job_type=BatchJobType.EVENT_FANOUT, status=BatchJobStatus.PROCESSING, metadata__fanout__done=False,
    ).values_list("pk", "metadata"):
        beat = (metadata or {}).get("fanout", {}).get("heartbeat")
        try:
            last = datetime.fromisoformat(beat) if beat else None
        except ValueError:
            last = None
        if last is None or now - last > STALLED_AFTER:
            stalled.append(pk)
    if stalled:
        logger.warning("resuming %d stalled fan-out job(s): %s", len(stalled), stalled)
        tasks_publish_on_commit("notifications.fanout_run", calls=[[pk] for pk in stalled])
    return len(stalled)
