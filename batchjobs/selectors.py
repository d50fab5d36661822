"""Batch job reads: the job's creator, or an admin of its organization (an API key of it too)."""
from __future__ import annotations

from typing import Any

from accounts.models import ApiKey
from accounts.selectors import user_is_org_admin
from common.exceptions import NotFound

from .models import BatchJob


def batch_job_get_for(*, job_id: Any, user, auth: Any = None) -> BatchJob:
    """NotFound unless the caller may see the job (never reveals that it exists)."""
    try:
        job_id = int(job_id)
    except (TypeError, ValueError):
        raise NotFound("Batch job not found.") from None
    job = BatchJob.objects.select_related("organization").filter(pk=job_id).first()
    if job is None:
        raise NotFound("Batch job not found.")
    if isinstance(auth, ApiKey):
        if auth.organization_id == job.organization_id:
            return job
        raise NotFound("Batch job not found.")
    pk = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    if pk is not None and (job.created_by_id == pk or user_is_org_admin(user=user, organization=job.organization)):
        return job
    raise NotFound("Batch job not found.")


def batch_job_serialize(job: BatchJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "job_type": job.job_type,
        "story_id": job.story_id,
        "total_count": job.total_count,
        "processed_count": job.processed_count,
        "success_count": job.success_count,
        "failed_count": job.failed_count,
        "status": job.status,
        "scheduled_at": job.scheduled_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "error_message": job.error_message,
        **({"fanout": {k: fanout.get(k) for k in ("written", "chunks", "done")}}
           if isinstance(fanout := (job.metadata or {}).get("fanout"), dict) else {}),
    }


def batch_job_latest_for_story(*, story) -> BatchJob | None:
    """The story's most recent invitation batch (the story page shows its progress)."""
    return BatchJob.objects.filter(story=story).order_by("-created_at", "-pk").first()
