from __future__ import annotations

import hashlib
import re
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


# Subscribers created by a client application (notifications.engine.subscribers) get a generated
# username: an internal handle, never a name to greet them with.
GENERATED_USERNAME = re.compile(r"^(sub|deleted)-[0-9a-f]{32}$")


class User(AbstractUser):
    """The platform user. Custom from the first migration so it can grow without pain."""

    display_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550100")
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=10, default="en")
    # Set when the user followed the link of the verification email (ACCOUNT_EMAIL_VERIFICATION).
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Set when the user typed the code we texted to `phone`; a new number clears it.
    phone_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email"])]

    def get_display_name(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def get_spoken_name(self) -> str:
        """The name to address them by in a message; empty when all we have is a generated handle."""
        name = self.get_display_name()
        return "" if GENERATED_USERNAME.match(name) else name

    def __str__(self) -> str:
        return self.get_display_name()


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # Events this organization may send (REST and AMQP intake): a token bucket refilled at
    # `events_per_minute` holding at most `events_burst`. Empty: the settings' defaults
    # (EVENTS_RATE_PER_MINUTE, EVENTS_BURST); 0 per minute: unlimited.
    events_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Events a minute (empty: the platform default; 0: unlimited)."
    )
    events_burst = models.PositiveIntegerField(
        null=True, blank=True, help_text="Events at once before the per-minute rate applies (empty: the default)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Platform-wide API powers (every organization, global provider records, platform
        # defaults) belong to superusers and to users granted this permission; `is_staff` alone
        # only opens the Django admin, where model permissions apply.
        permissions = [("administer_platform", "Can administer every organization through the API")]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_team_name_per_org")]

    def __str__(self) -> str:
        return f"{self.organization} / {self.name}"


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="projects")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_project_name_per_org")]

    def __str__(self) -> str:
        return f"{self.organization} / {self.name}"


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    teams = models.ManyToManyField(Team, blank=True, related_name="memberships")
    # A subscriber: the client application's own id for this person (unique in the organization)
    # and whatever it wants to keep beside it. Both stay empty for people who sign in themselves.
    external_id = models.CharField(max_length=255, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership"),
            models.UniqueConstraint(
                fields=["organization", "external_id"], condition=models.Q(external_id__isnull=False),
                name="uniq_subscriber_external_id",
            ),
        ]
        indexes = [models.Index(fields=["organization", "role"])]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


def hash_api_key(raw: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    """An organization's service credential. Only its hash is stored; the key is shown once."""

    PREFIX_LEN = 8

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def generate_raw_key(cls) -> str:
        return "trb_" + secrets.token_urlsafe(32)

    def revoke(self) -> None:
        self.revoked_at = timezone.now()


class OnCallRotation(models.Model):
    """A named on-call rotation of an organization; who is on call comes from its shifts."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="oncall_rotations")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_oncall_rotation_name")]

    def __str__(self) -> str:
        return f"{self.organization} / {self.name}"


class OnCallShift(models.Model):
    """One person on call in a rotation for [starts_at, ends_at)."""

    rotation = models.ForeignKey(OnCallRotation, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oncall_shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["rotation", "starts_at"]
        indexes = [models.Index(fields=["rotation", "starts_at", "ends_at"], name="oncall_shift_window_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="oncall_shift_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.rotation} {self.starts_at:%Y-%m-%d %H:%M} → {self.ends_at:%Y-%m-%d %H:%M}"
