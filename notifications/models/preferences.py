"""Preferences (global → organization → team → project → user) and quiet hours."""
from __future__ import annotations


from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from ..enums import (
    Channel,
    Criticality,
    DigestFrequency,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
    QuietHoursAction,
)
from .validators import (
    validate_days_of_week,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


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
