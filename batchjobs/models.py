"""Batch jobs (seed 000 `notification_batch_jobs`): one per invitation send and per event with
more than 100 recipients, with progress counters the inviter and operators watch."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class BatchJobType(models.TextChoices):
    INVITATION_BATCH = "invitation_batch", "Invitation batch"
    EVENT_FANOUT = "event_fanout", "Event fan-out"


class BatchJobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class BatchJob(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="batch_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="batch_jobs"
    )
    job_type = models.CharField(max_length=50, choices=BatchJobType.choices)
    story = models.ForeignKey("narrations.Story", on_delete=models.SET_NULL, null=True, blank=True, related_name="batch_jobs")
    # The notification event whose recipients the job counts (set once the event exists).
    event_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Recipients (one notification each); a recipient is processed when none of its deliveries
    # is still in flight, a success when at least one of them reached the provider.
    total_count = models.PositiveIntegerField()
    processed_count = models.PositiveIntegerField(default=0)
    success_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=BatchJobStatus.choices, default=BatchJobStatus.PENDING)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "notification_batch_jobs"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"], name="batch_job_status_idx",
                                condition=models.Q(status__in=["pending", "processing"]))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(processed_count=models.F("success_count") + models.F("failed_count")),
                name="batch_job_processed_is_success_plus_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} #{self.pk} ({self.status})"
