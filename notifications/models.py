"""The notification platform's schema (seed 004, section 3), on PostgreSQL.

Every row that belongs to a tenant carries `organization`; rows where it may be NULL
(templates, providers, escalation chains, channel configuration, global preferences) are
platform-wide defaults that an organization's own row overrides.

Channel lists are JSON lists of `Channel` values rather than PostgreSQL arrays so the
embedded SQLite run uses the same schema.
"""
from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from .enums import (
    ActorType,
    AuditAction,
    AuditActorType,
    AuditOutcome,
    BatchFrequency,
    BatchStatus,
    BatchType,
    Channel,
    Criticality,
    DeadLetterStatus,
    DeliveryStatus,
    DigestFrequency,
    EscalationCondition,
    EscalationRecipientType,
    EventCategory,
    IdempotencyStatus,
    NotificationStatus,
    PreferenceLevel,
    PreferenceScope,
    PresenceStatus,
    ProviderHealthStatus,
    QuietHoursAction,
    RateLimitAction,
    WebhookAuthType,
    WebhookDirection,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


# --- validators --------------------------------------------------------------------


def validate_channel_list(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError("Expected a list of channels.")
    unknown = [item for item in value if item not in Channel.values]
    if unknown:
        raise ValidationError(f"Unknown channel(s): {', '.join(map(str, unknown))}. Valid: {', '.join(Channel.values)}.")
    if len(set(value)) != len(value):
        raise ValidationError("A channel is listed twice.")


def validate_string_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Expected a list of non-empty strings.")


def validate_category_list(value: Any) -> None:
    validate_string_list(value)
    unknown = [item for item in value if item not in EventCategory.values]
    if unknown:
        raise ValidationError(f"Unknown categor(ies): {', '.join(unknown)}.")


def validate_days_of_week(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Expected a non-empty list of days (0 = Monday … 6 = Sunday).")
    if not all(isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6 for day in value):
        raise ValidationError("Days are integers from 0 (Monday) to 6 (Sunday).")


def validate_variable_mapping(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('Expected an object mapping template variables to event paths, e.g. {"task.title": "data.taskTitle"}.')


def validate_string_dict(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError("Expected an object of strings.")


# --- taxonomy ----------------------------------------------------------------------


class EventType(models.Model):
    """One entry of the event taxonomy (seed 5.2/5.3): how an event type is notified by default."""

    key = models.CharField(max_length=100, unique=True, help_text='e.g. "task.assigned"')
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=30, choices=EventCategory.choices)
    default_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    default_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    allowed_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    variable_mapping = models.JSONField(
        default=dict, blank=True, validators=[validate_variable_mapping],
        help_text='Template variable → event path, e.g. {"task.title": "data.taskTitle", "task.id": "resourceId"}',
    )
    default_template_key = models.CharField(max_length=100, blank=True, help_text="Defaults to the event type key.")
    recipients_hint = models.CharField(max_length=200, blank=True, help_text="Who usually receives it (documentation).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "key"]
        indexes = [models.Index(fields=["category"])]

    def __str__(self) -> str:
        return self.key

    @property
    def template_key(self) -> str:
        return self.default_template_key or self.key

    def clean(self) -> None:
        extra = set(self.default_channels or []) - set(self.allowed_channels or [])
        if extra:
            raise ValidationError({"default_channels": f"Not in the allowed channels: {', '.join(sorted(extra))}."})


# --- templates ---------------------------------------------------------------------


class NotificationTemplate(models.Model):
    """Content for one event type; a row with an organization overrides the global default."""

    key = models.CharField(max_length=100, help_text='Template code, usually the event type, e.g. "task.assigned"')
    event_type = models.CharField(max_length=100, db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="notification_templates",
        help_text="Empty: the platform default.",
    )
    default_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    variables = models.JSONField(
        default=list, blank=True, validators=[validate_string_list],
        help_text='Variables the content may use, e.g. ["task.title", "actor.name", "action_url"].',
    )
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Shipped with the platform catalog.")
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=Q(organization__isnull=True), name="uniq_global_template_key"),
            models.UniqueConstraint(
                fields=["organization", "key"], condition=Q(organization__isnull=False), name="uniq_org_template_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.organization or 'global'})"

    @property
    def is_global(self) -> bool:
        return self.organization_id is None


class TemplateChannel(models.Model):
    """A template's content for one channel. Text fields are translated (see translation.py)."""

    template = models.ForeignKey(NotificationTemplate, on_delete=models.CASCADE, related_name="channels")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True, help_text="Email subject.")
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True, help_text="Plain text (in-app, push, SMS, WhatsApp, voice script, email text part).")
    body_html = models.TextField(blank=True, help_text="Email HTML part.")
    action_label = models.CharField(max_length=100, blank=True)
    action_url = models.CharField(max_length=500, blank=True, help_text="Template for the deep link.")
    extra = models.JSONField(
        default=dict, blank=True,
        help_text="Channel options: WhatsApp template name/components, voice language/voice/acknowledgment digit, …",
    )

    class Meta:
        ordering = ["template_id", "channel"]
        constraints = [models.UniqueConstraint(fields=["template", "channel"], name="uniq_template_channel")]

    def __str__(self) -> str:
        return f"{self.template.key} · {self.channel}"


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
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    project = models.ForeignKey("accounts.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

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
        NotificationTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    action_url = models.CharField(max_length=500, blank=True)
    action_label = models.CharField(max_length=100, blank=True)
    image_url = models.CharField(max_length=500, blank=True)

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
        "EscalationChain", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)

    # Digest
    batch = models.ForeignKey(
        NotificationBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
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
            models.Index(fields=["organization", "deduplication_key", "created_at"], name="notif_dedup_idx"),
            models.Index(fields=["organization", "created_at"], name="notif_org_created_idx"),
            models.Index(fields=["status", "scheduled_for"], name="notif_status_sched_idx"),
            models.Index(fields=["event_type", "created_at"], name="notif_type_created_idx"),
            models.Index(
                fields=["next_escalation_at"], condition=Q(next_escalation_at__isnull=False), name="notif_escalation_due_idx"
            ),
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
        "NotificationProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries", db_index=False
    )
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    provider_response = models.JSONField(null=True, blank=True)
    rendered = models.JSONField(default=dict, blank=True, help_text="Content as sent (subject, body, …).")

    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=4)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
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
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="fallbacks",
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
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.notification_id} ({self.status})"


# --- preferences -------------------------------------------------------------------

_SCOPE_KEY = ["scope", "category", "event_type"]


class NotificationPreference(models.Model):
    """A preference at one level of the hierarchy, for all events, a category or an event type."""

    level = models.CharField(max_length=15, choices=PreferenceLevel.choices)
    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="notification_preferences"
    )
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="notification_preferences")

    scope = models.CharField(max_length=12, choices=PreferenceScope.choices, default=PreferenceScope.ALL)
    category = models.CharField(max_length=30, choices=EventCategory.choices, blank=True)
    event_type = models.CharField(max_length=100, blank=True)

    enabled = models.BooleanField(default=True)
    min_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.LOW)
    critical_override = models.BooleanField(
        default=True, help_text="CRITICAL notifications ignore this opt-out (not a channel the organization disabled)."
    )
    locked = models.BooleanField(
        default=False,
        help_text="Organization, team or project rows only: members cannot override it (their own choices are ignored where it applies).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The owner fields a level uses, and no others.
            models.CheckConstraint(
                condition=(
                    Q(level="GLOBAL", organization__isnull=True, team__isnull=True, project__isnull=True, user__isnull=True)
                    | Q(level="ORGANIZATION", organization__isnull=False, team__isnull=True, project__isnull=True, user__isnull=True)
                    | Q(level="TEAM", organization__isnull=False, team__isnull=False, project__isnull=True, user__isnull=True)
                    | Q(level="PROJECT", organization__isnull=False, team__isnull=True, project__isnull=False, user__isnull=True)
                    | Q(level="USER", team__isnull=True, project__isnull=True, user__isnull=False)
                ),
                name="preference_level_owner",
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope="ALL", category="", event_type="")
                    | (Q(scope="CATEGORY", event_type="") & ~Q(category=""))
                    | (Q(scope="EVENT_TYPE") & ~Q(event_type=""))
                ),
                name="preference_scope_key",
            ),
            models.CheckConstraint(condition=~Q(level="USER", locked=True), name="preference_user_not_locked"),
            models.UniqueConstraint(fields=_SCOPE_KEY, condition=Q(level="GLOBAL"), name="uniq_pref_global"),
            models.UniqueConstraint(
                fields=["organization", *_SCOPE_KEY], condition=Q(level="ORGANIZATION"), name="uniq_pref_organization"
            ),
            models.UniqueConstraint(fields=["team", *_SCOPE_KEY], condition=Q(level="TEAM"), name="uniq_pref_team"),
            models.UniqueConstraint(fields=["project", *_SCOPE_KEY], condition=Q(level="PROJECT"), name="uniq_pref_project"),
            # A user's own preferences apply everywhere (organization NULL) or in one organization.
            models.UniqueConstraint(
                fields=["user", *_SCOPE_KEY], condition=Q(level="USER", organization__isnull=True), name="uniq_pref_user"
            ),
            models.UniqueConstraint(
                fields=["user", "organization", *_SCOPE_KEY],
                condition=Q(level="USER", organization__isnull=False),
                name="uniq_pref_user_organization",
            ),
        ]
        indexes = [models.Index(fields=["level", "event_type"], name="pref_level_type_idx")]

    def __str__(self) -> str:
        owner = self.user_id or self.project_id or self.team_id or self.organization_id or "platform"
        target = self.event_type or self.category or "all events"
        return f"{self.level} {owner}: {target}"


class ChannelPreference(models.Model):
    preference = models.ForeignKey(NotificationPreference, on_delete=models.CASCADE, related_name="channel_preferences")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    only_when_offline = models.BooleanField(default=False, help_text="Skip this channel while the user is online.")
    digest_frequency = models.CharField(max_length=10, choices=DigestFrequency.choices, default=DigestFrequency.NONE)
    digest_hour = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(23)], help_text="Local hour for daily/weekly digests."
    )
    digest_day_of_week = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(6)], help_text="Weekly digests: 0 = Monday … 6 = Sunday."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["preference", "channel"], name="uniq_channel_preference"),
            models.CheckConstraint(
                condition=Q(digest_hour__isnull=True) | Q(digest_hour__lte=23), name="channel_pref_digest_hour_range"
            ),
            models.CheckConstraint(
                condition=Q(digest_day_of_week__isnull=True) | Q(digest_day_of_week__lte=6),
                name="channel_pref_digest_day_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {'on' if self.enabled else 'off'}"


# --- quiet hours -------------------------------------------------------------------


class QuietHours(models.Model):
    """A user's quiet hours (or, with no user, an organization's default for its members)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="quiet_hours")
    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="quiet_hours")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris.")
    enabled = models.BooleanField(default=True)
    dnd_until = models.DateTimeField(null=True, blank=True, help_text="Manual do-not-disturb until this time.")
    default_action = models.CharField(
        max_length=5, choices=QuietHoursAction.choices, default=QuietHoursAction.HOLD,
        help_text="For channels without a rule.",
    )
    allow_critical = models.BooleanField(default=True, help_text="For channels without a rule: CRITICAL passes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "quiet hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(organization__isnull=False), name="quiet_hours_has_owner"
            ),
            models.UniqueConstraint(fields=["user"], condition=Q(user__isnull=False), name="uniq_quiet_hours_user"),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(user__isnull=True), name="uniq_quiet_hours_org_default"
            ),
        ]

    def __str__(self) -> str:
        return f"Quiet hours of {self.user or self.organization}"

    def clean(self) -> None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": f"Unknown time zone: {self.timezone}."})


class QuietHoursSchedule(models.Model):
    """A recurring window in local time. When end <= start the window crosses midnight and
    belongs to the day it starts on (Fri 22:00 → Sat 07:00 is listed under Friday)."""

    quiet_hours = models.ForeignKey(QuietHours, on_delete=models.CASCADE, related_name="schedules")
    days_of_week = models.JSONField(
        default=list, validators=[validate_days_of_week], help_text="0 = Monday … 6 = Sunday (Python's weekday())."
    )
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(start_time=models.F("end_time")), name="quiet_window_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.start_time:%H:%M}–{self.end_time:%H:%M} on {self.days_of_week}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end_time <= self.start_time


class QuietHoursChannelRule(models.Model):
    quiet_hours = models.ForeignKey(QuietHours, on_delete=models.CASCADE, related_name="channel_rules")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    action = models.CharField(max_length=5, choices=QuietHoursAction.choices, default=QuietHoursAction.HOLD)
    allow_critical = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["quiet_hours", "channel"], name="uniq_quiet_hours_channel_rule")]

    def __str__(self) -> str:
        return f"{self.channel}: {self.action}"


# --- escalation --------------------------------------------------------------------


class EscalationChain(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="escalation_chains",
        help_text="Empty: a platform-wide chain.",
    )
    trigger_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.CRITICAL)
    trigger_event_types = models.JSONField(
        default=list, blank=True, validators=[validate_string_list], help_text="Empty: any event type."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(organization__isnull=True), name="uniq_global_chain_name"),
            models.UniqueConstraint(
                fields=["organization", "name"], condition=Q(organization__isnull=False), name="uniq_org_chain_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationLevel(models.Model):
    chain = models.ForeignKey(EscalationChain, on_delete=models.CASCADE, related_name="levels")
    level = models.PositiveSmallIntegerField(help_text="0, 1, 2, …")
    delay_minutes = models.PositiveIntegerField(help_text="Wait this long before escalating to this level.")
    channels = models.JSONField(default=list, validators=[validate_channel_list])
    recipient_type = models.CharField(
        max_length=10, choices=EscalationRecipientType.choices, default=EscalationRecipientType.ORIGINAL
    )
    recipient_role = models.CharField(max_length=10, blank=True, help_text="Membership role for ROLE (owner/admin/member).")
    recipient_user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    condition = models.CharField(
        max_length=20, choices=EscalationCondition.choices, default=EscalationCondition.NOT_ACKNOWLEDGED
    )

    class Meta:
        ordering = ["chain_id", "level"]
        constraints = [models.UniqueConstraint(fields=["chain", "level"], name="uniq_escalation_level")]

    def __str__(self) -> str:
        return f"{self.chain} · level {self.level}"

    def clean(self) -> None:
        if self.recipient_type == EscalationRecipientType.USER and not self.recipient_user_id:
            raise ValidationError({"recipient_user": "Required when escalating to a specific user."})
        if self.recipient_type == EscalationRecipientType.ROLE and not self.recipient_role:
            raise ValidationError({"recipient_role": "Required when escalating to a role."})


# --- providers and channel configuration ---------------------------------------------


class NotificationProvider(models.Model):
    """A configured provider account. Organization NULL: the platform's own (global) account."""

    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="notification_providers"
    )
    code = models.CharField(max_length=50, help_text='Registry code, e.g. "twilio_sms", "sendgrid".')
    channel = models.CharField(max_length=10, choices=Channel.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    priority = models.IntegerField(default=0, help_text="Lower is tried first.")
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True, help_text="Non-secret settings.")
    secrets = models.TextField(blank=True, help_text="Encrypted JSON of sensitive parameters (providers.secrets.secrets_encrypt).")
    secret_env_refs = models.JSONField(
        default=dict, blank=True, validators=[validate_string_dict],
        help_text='Sensitive parameters read from the environment, e.g. {"auth_token": "TWILIO_AUTH_TOKEN"}.',
    )
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    health_status = models.CharField(
        max_length=10, choices=ProviderHealthStatus.choices, default=ProviderHealthStatus.UNKNOWN
    )
    health_message = models.CharField(max_length=500, blank=True)
    last_health_check_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(organization__isnull=True), name="uniq_global_provider_code"),
            models.UniqueConstraint(
                fields=["organization", "code"], condition=Q(organization__isnull=False), name="uniq_org_provider_code"
            ),
        ]
        indexes = [models.Index(fields=["channel", "is_active", "priority"], name="provider_channel_active_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code}, {self.organization or 'global'})"

    @property
    def has_secrets(self) -> bool:
        return bool(self.secrets)


class ChannelConfiguration(models.Model):
    """How an organization uses a channel. Organization NULL: the platform default."""

    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="channel_configurations"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    default_provider = models.ForeignKey(
        NotificationProvider, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rate_limit_user_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_user_per_hour = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_org_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_org_per_hour = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_action = models.CharField(max_length=5, choices=RateLimitAction.choices, default=RateLimitAction.HOLD)
    fallback_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_list], help_text="Ordered channels tried after a permanent failure."
    )
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel"], condition=Q(organization__isnull=True), name="uniq_global_channel_configuration"
            ),
            models.UniqueConstraint(
                fields=["organization", "channel"], condition=Q(organization__isnull=False), name="uniq_org_channel_configuration"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} ({self.organization or 'global'})"

    def clean(self) -> None:
        if self.channel in (self.fallback_channels or []):
            raise ValidationError({"fallback_channels": "A channel cannot fall back to itself."})


class CriticalityRouting(models.Model):
    """Whether a channel is used for a criticality, and whether it then ignores quiet hours."""

    configuration = models.ForeignKey(ChannelConfiguration, on_delete=models.CASCADE, related_name="criticality_routing")
    criticality = models.CharField(max_length=10, choices=Criticality.choices)
    enabled = models.BooleanField(default=True)
    bypass_quiet_hours = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["configuration", "criticality"], name="uniq_criticality_routing")]

    def __str__(self) -> str:
        return f"{self.configuration} · {self.criticality}"


# --- webhooks ----------------------------------------------------------------------


class Webhook(models.Model):
    """An organization's webhook: outgoing (we call `url`) or incoming (events posted to us)."""

    organization = models.ForeignKey(ORG, on_delete=models.CASCADE, related_name="webhooks")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Identifies an incoming webhook in its URL.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    direction = models.CharField(max_length=10, choices=WebhookDirection.choices)
    url = models.URLField(max_length=500, blank=True, help_text="Target URL (outgoing).")
    auth_type = models.CharField(max_length=12, choices=WebhookAuthType.choices, default=WebhookAuthType.HMAC_SHA256)
    secret = models.TextField(blank=True, help_text="Encrypted JSON {\"secret\": …} (providers.secrets.secrets_encrypt): signing secret or credential.")
    event_types = models.JSONField(default=list, blank=True, validators=[validate_string_list], help_text="Outgoing filter; empty: all.")
    event_categories = models.JSONField(default=list, blank=True, validators=[validate_category_list])
    settings = models.JSONField(default=dict, blank=True, help_text="Incoming: payload mapping to an event.")
    is_active = models.BooleanField(default=True)
    retry_enabled = models.BooleanField(default=True)
    max_retries = models.PositiveSmallIntegerField(default=3)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "direction"], name="webhook_org_direction_idx"),
            models.Index(fields=["is_active", "direction"], name="webhook_active_direction_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.direction})"

    def clean(self) -> None:
        if self.direction == WebhookDirection.OUTGOING and not self.url:
            raise ValidationError({"url": "An outgoing webhook needs a target URL."})

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)


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
        Notification, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs", db_index=False
    )
    delivery = models.ForeignKey(
        NotificationDelivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs", db_index=False
    )
    template = models.ForeignKey(
        NotificationTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    provider = models.ForeignKey(
        NotificationProvider, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    webhook = models.ForeignKey(Webhook, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False)
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
        NotificationDelivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="dead_letters"
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
