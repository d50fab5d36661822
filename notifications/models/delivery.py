"""Notifications, their deliveries (one per channel) and delivery batches."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..enums import (
    ActorType,
    BatchFrequency,
    BatchStatus,
    BatchType,
    Channel,
    Criticality,
    DeliveryStatus,
    EventCategory,
    NotificationStatus,
)
from .validators import (
    validate_channel_list,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


# --- notifications -----------------------------------------------------------------


class NotificationBatch(models.Model):
    """A digest being collected for one user and channel at one frequency."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notification_batches")
    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="notification_batches")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    frequency = models.CharField(max_length=10, choices=BatchFrequency.choices)
    batch_type = models.CharField(max_length=10, choices=BatchType.choices, default=BatchType.DIGEST)
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.OPEN)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(help_text="Collect notifications until this time.")
    scheduled_for = models.DateTimeField(help_text="When the digest is sent.")
    sent_at = models.DateTimeField(null=True, blank=True)
    notification_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification batches"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization", "channel", "frequency"],
                condition=Q(status="OPEN"),
                name="uniq_open_batch_per_user_channel_frequency",
            ),
            models.CheckConstraint(condition=Q(window_end__gte=models.F("window_start")), name="batch_window_ordered"),
        ]
        indexes = [
            models.Index(fields=["status", "scheduled_for"], name="notif_batch_due_idx"),
            models.Index(fields=["user", "status"], name="notif_batch_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.frequency} {self.channel} digest for {self.user_id} ({self.status})"


class Notification(models.Model):
    """One event for one recipient: the in-app inbox item and the parent of its deliveries."""

    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    # A nullable reference that most rows leave empty is indexed only where it is set (Meta.indexes):
    # a fan-out row then pays no index entry for it.
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             db_index=False)
    project = models.ForeignKey("accounts.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                db_index=False)

    # Recipient: a user, or a bare address (an invitee without an account).
    recipient = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications", db_index=False
    )
    recipient_email = models.EmailField(blank=True)
    recipient_phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    recipient_locale = models.CharField(max_length=10, blank=True)
    recipient_timezone = models.CharField(max_length=64, blank=True)

    # Event
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="Shared by every notification of one event.")
    event_type = models.CharField(max_length=100)
    category = models.CharField(max_length=30, choices=EventCategory.choices)
    source_module = models.CharField(max_length=100, blank=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices, default=ActorType.SYSTEM)
    actor_id = models.CharField(max_length=100, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    resource_type = models.CharField(max_length=50, blank=True)
    resource_id = models.CharField(max_length=100, blank=True)
    resource_name = models.CharField(max_length=255, blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    deduplication_key = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="The event's payload.")
    metadata = models.JSONField(default=dict, blank=True)

    # Rendered in-app content
    template = models.ForeignKey(
        "notifications.NotificationTemplate", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    action_url = models.CharField(max_length=500, blank=True)
    action_label = models.CharField(max_length=100, blank=True)
    image_url = models.CharField(max_length=500, blank=True)
    channel_options = models.JSONField(
        default=dict, blank=True,
        help_text="The event's options per channel (seed 004 §4.3–4.8); IN_APP holds the merged ones once delivered.",
    )
    group_key = models.CharField(max_length=255, blank=True, help_text="The inbox groups items sharing it.")
    inbox_expires_at = models.DateTimeField(null=True, blank=True, help_text="The inbox stops listing it after this.")

    # Routing
    criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    channels_requested = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    channels_delivered = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    status = models.CharField(max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    trace = models.JSONField(
        default=dict, blank=True,
        help_text="Routing decisions per channel: used or not, and why (preference level, quiet hours, presence, limit).",
    )

    # Timing
    scheduled_for = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Inbox state
    read_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    # Escalation
    escalation_chain = models.ForeignKey(
        "EscalationChain", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications", db_index=False
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)

    # Digest
    batch = models.ForeignKey(
        NotificationBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications", db_index=False
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The inbox: a user's unarchived items, unread first filter, newest first.
            models.Index("recipient", "archived_at", "read_at", models.F("created_at").desc(), name="notif_inbox_idx"),
            # Seed 004: a recipient's notifications by status (digests, escalation, staff history).
            models.Index(fields=["recipient", "status"], name="notif_recipient_status_idx"),
            # Only keyed notifications are looked up by key (a fan-out's rows have none).
            models.Index(fields=["organization", "deduplication_key", "created_at"], condition=~Q(deduplication_key=""),
                         name="notif_dedup_idx"),
            models.Index(fields=["organization", "created_at"], name="notif_org_created_idx"),
            models.Index(fields=["status", "scheduled_for"], name="notif_status_sched_idx"),
            models.Index(fields=["event_type", "created_at"], name="notif_type_created_idx"),
            models.Index(
                fields=["next_escalation_at"], condition=Q(next_escalation_at__isnull=False), name="notif_escalation_due_idx"
            ),
            models.Index(fields=["team"], condition=Q(team__isnull=False), name="notif_team_idx"),
            models.Index(fields=["project"], condition=Q(project__isnull=False), name="notif_project_idx"),
            models.Index(fields=["escalation_chain"], condition=Q(escalation_chain__isnull=False), name="notif_escalation_chain_idx"),
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="notif_batch_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | ~Q(recipient_email="") | ~Q(recipient_phone=""),
                name="notification_has_recipient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.recipient_id or self.recipient_email or self.recipient_phone}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationDelivery(models.Model):
    """One attempt stream to send a notification over one channel."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=15, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    recipient_address = models.CharField(max_length=320, blank=True, help_text="Email, E.164 phone, user id for in-app/push.")
    locale = models.CharField(max_length=10, blank=True)

    provider = models.CharField(max_length=50, blank=True, help_text="Registry code of the provider used, e.g. twilio_sms.")
    provider_record = models.ForeignKey(
        "providers.NotificationProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries", db_index=False
    )
    provider_message_id = models.CharField(max_length=255, blank=True)  # indexed in Meta.indexes (equality only)
    provider_response = models.JSONField(null=True, blank=True)
    rendered = models.JSONField(default=dict, blank=True, help_text="Content as sent (subject, body, …).")

    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=4)
    next_retry_at = models.DateTimeField(null=True, blank=True)  # indexed where set (Meta.indexes)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_history = models.JSONField(default=list, blank=True)
    skip_reason = models.CharField(max_length=255, blank=True)

    cost_amount = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, blank=True)

    escalation_level = models.PositiveSmallIntegerField(default=0)
    fallback_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="fallbacks", db_index=False,
        help_text="The delivery whose permanent failure created this one.",
    )
    batch = models.ForeignKey(
        NotificationBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries", db_index=False
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One delivery per channel per escalation level: a re-run of fan-out cannot send twice.
            models.UniqueConstraint(
                fields=["notification", "channel", "escalation_level"], name="uniq_delivery_per_channel_level"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_retry_at"], name="delivery_retry_idx"),
            models.Index(fields=["status", "claimed_at"], name="delivery_claim_idx"),
            models.Index(fields=["organization", "created_at"], name="delivery_org_created_idx"),
            models.Index(fields=["channel", "status"], name="delivery_channel_status_idx"),
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="delivery_batch_idx"),
            models.Index(
                fields=["provider_record"], condition=Q(provider_record__isnull=False), name="delivery_provider_idx"
            ),
            # Provider reports and webhooks look message ids up by equality: one b-tree, no pattern index.
            models.Index(fields=["provider_message_id"], name="delivery_provider_msg_idx"),
            # Only deliveries waiting for a retry or a slot have a time; sent ones pay no index entry.
            models.Index(fields=["next_retry_at"], condition=Q(next_retry_at__isnull=False), name="delivery_next_retry_idx"),
            models.Index(fields=["fallback_from"], condition=Q(fallback_from__isnull=False), name="delivery_fallback_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.notification_id} ({self.status})"
