"""Audit log, presence, dead letters, idempotency records and bus commands."""
from __future__ import annotations


from django.conf import settings
from django.db import models
from django.db.models import Q

from ..enums import (
    AuditAction,
    AuditActorType,
    AuditOutcome,
    Channel,
    DeadLetterStatus,
    IdempotencyStatus,
    PresenceStatus,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


# --- audit, presence, dead letters, idempotency ----------------------------------------


class NotificationAuditLog(models.Model):
    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    outcome = models.CharField(max_length=10, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    actor_type = models.CharField(max_length=10, choices=AuditActorType.choices, default=AuditActorType.SYSTEM)
    actor_id = models.CharField(max_length=100, blank=True)
    actor_label = models.CharField(max_length=200, blank=True, help_text="Username, API key name, provider code, …")
    # Partial indexes below: most rows leave most of these empty, and an empty value costs no index entry.
    notification = models.ForeignKey(
        "notifications.Notification", on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs", db_index=False
    )
    delivery = models.ForeignKey(
        "notifications.NotificationDelivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs", db_index=False
    )
    template = models.ForeignKey(
        "notifications.NotificationTemplate", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    provider = models.ForeignKey(
        "providers.NotificationProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    webhook = models.ForeignKey("notifications.Webhook", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False)
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False)
    details = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="audit_org_created_idx"),
            models.Index(fields=["action", "created_at"], name="audit_action_created_idx"),
            models.Index(fields=["notification"], condition=Q(notification__isnull=False), name="audit_notification_idx"),
            models.Index(fields=["delivery"], condition=Q(delivery__isnull=False), name="audit_delivery_idx"),
            models.Index(fields=["template"], condition=Q(template__isnull=False), name="audit_template_idx"),
            models.Index(fields=["provider"], condition=Q(provider__isnull=False), name="audit_provider_idx"),
            models.Index(fields=["webhook"], condition=Q(webhook__isnull=False), name="audit_webhook_idx"),
            models.Index(fields=["user"], condition=Q(user__isnull=False), name="audit_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.outcome})"


class UserPresence(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="presence")
    status = models.CharField(max_length=10, choices=PresenceStatus.choices, default=PresenceStatus.OFFLINE)
    last_seen_at = models.DateTimeField()
    last_active_at = models.DateTimeField(null=True, blank=True)
    connection_id = models.CharField(max_length=100, blank=True)
    device_type = models.CharField(max_length=20, blank=True, help_text="desktop, mobile, web")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "user presence"
        indexes = [
            models.Index(fields=["status"], name="presence_status_idx"),
            models.Index(fields=["last_seen_at"], name="presence_last_seen_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"


class DeadLetter(models.Model):
    """A delivery that exhausted its attempts, kept with everything needed to replay it."""

    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="+", db_index=False)
    delivery = models.ForeignKey(
        "notifications.NotificationDelivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="dead_letters"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    error_history = models.JSONField(default=list, blank=True)
    provider_responses = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=DeadLetterStatus.choices, default=DeadLetterStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["delivery"], condition=Q(status="OPEN"), name="uniq_open_dead_letter_per_delivery"),
        ]
        indexes = [models.Index(fields=["organization", "status", "created_at"], name="deadletter_org_status_idx")]

    def __str__(self) -> str:
        return f"Dead letter #{self.pk} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer to a request carrying an Idempotency-Key, replayed for 24 hours."""

    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical request body.")
    status = models.CharField(max_length=10, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_FLIGHT)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="uniq_idempotency_key_per_org")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class BusCommand(models.Model):
    """A command taken from `notification.commands`, recorded in the transaction that ran it.

    The (organization, command_id) constraint is what makes a redelivered command harmless:
    the second run finds the first one's answer instead of acting again.
    """

    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="+", db_index=False)
    command_id = models.CharField(max_length=255)
    name = models.CharField(max_length=50)
    ok = models.BooleanField(default=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "command_id"], name="uniq_bus_command_per_org")]
        indexes = [models.Index(fields=["created_at"], name="bus_command_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.command_id}"
