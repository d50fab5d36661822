"""Escalation chains, channel configuration and organization webhooks."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from ..enums import (
    Channel,
    Criticality,
    EscalationCondition,
    EscalationRecipientType,
    RateLimitAction,
    WebhookAuthType,
    WebhookDirection,
)
from .validators import (
    validate_channel_list,
    validate_string_list,
    validate_category_list,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


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


# --- channel configuration (provider records: providers.NotificationProvider) ---------------------------------------------


class ChannelConfiguration(models.Model):
    """How an organization uses a channel. Organization NULL: the platform default."""

    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="channel_configurations"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    default_provider = models.ForeignKey(
        "providers.NotificationProvider", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
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
        from providers.selection import policy_settings_errors

        if self.channel in (self.fallback_channels or []):
            raise ValidationError({"fallback_channels": "A channel cannot fall back to itself."})
        # The admin saves this model directly: the provider selection keys are checked here too.
        errors = policy_settings_errors(self.settings) if isinstance(self.settings, dict) else {}
        if errors:
            raise ValidationError({"settings": [f"{key}: {message}" for key, messages in errors.items() for message in messages]})
        if self.default_provider_id is not None and self.default_provider is not None and (
                self.default_provider.channel != self.channel
                or self.default_provider.organization_id not in (None, self.organization_id)):
            raise ValidationError({"default_provider": f"Not a {self.channel} provider of this organization or the platform."})


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
