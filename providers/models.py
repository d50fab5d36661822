"""Provider-side tables: provider records (accounts), push subscriptions, the log outbox,
health and cost metrics, and the suppression list."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from common.channels import Channel
from common.sealing import SealedJSONField, SealedTextField
from common.validators import validate_string_dict

from .enums import ProviderHealthStatus


class NotificationProvider(models.Model):
    """A configured provider account. Organization NULL: the platform's own (global) account."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="notification_providers"
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
        db_table = "notifications_notificationprovider"  # moved here from the notifications app, table kept
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


class PushSubscriptionKind(models.TextChoices):
    WEBPUSH = "WEBPUSH", "Web Push"
    FCM = "FCM", "Firebase Cloud Messaging"


class PushSubscription(models.Model):
    """One device of one user. Web Push keeps the browser's endpoint and keys; FCM keeps the
    registration token in `endpoint`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    kind = models.CharField(max_length=10, choices=PushSubscriptionKind.choices, default=PushSubscriptionKind.WEBPUSH)
    device_id = models.CharField(max_length=128, blank=True)
    endpoint = models.TextField()
    p256dh = models.CharField(max_length=255, blank=True)
    auth = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "endpoint"], name="uniq_push_subscription_endpoint")]
        indexes = [models.Index(fields=["user", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.device_id or self.pk} for user {self.user_id}"

    def subscription_info(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class ProviderOutbox(models.Model):
    """What a `log` provider would have sent: the embedded run's and the tests' inbox.

    It stands for the recipient's device, so the message (links with their tokens included) is
    sealed at rest like everything else that carries a credential.
    """

    channel = models.CharField(max_length=16, choices=Channel.choices)
    provider_code = models.CharField(max_length=50)
    to = models.CharField(max_length=320)
    subject = models.CharField(max_length=300, blank=True)
    text = SealedTextField(blank=True)
    payload = SealedJSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "provider outbox"

    def __str__(self) -> str:
        return f"{self.channel} → {self.to}"


class ProviderHealthMetric(models.Model):
    """One health check (seed 000 `provider_health_metrics`)."""

    provider = models.ForeignKey(NotificationProvider, on_delete=models.CASCADE, related_name="health_metrics")
    provider_code = models.CharField(max_length=50)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    checked_at = models.DateTimeField(db_index=True)
    is_healthy = models.BooleanField()
    response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    success_rate_24h = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cost_per_message = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    rate_limit_remaining = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["provider", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.provider_code} {'ok' if self.is_healthy else 'down'} @ {self.checked_at:%Y-%m-%d %H:%M}"


class ProviderCostDaily(models.Model):
    """Daily cost analysis per provider (seed 000 `provider_cost_analysis`). A provider bills
    in one currency; deliveries without a reported price count as messages, not as cost."""

    provider = models.ForeignKey(
        NotificationProvider, on_delete=models.SET_NULL, null=True, blank=True, related_name="daily_costs"
    )
    provider_code = models.CharField(max_length=50)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    date = models.DateField()
    currency = models.CharField(max_length=3, blank=True)
    total_messages = models.PositiveIntegerField(default=0)
    delivered_messages = models.PositiveIntegerField(default=0)
    failed_messages = models.PositiveIntegerField(default=0)
    total_cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    average_cost_per_message = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    delivery_success_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cost_per_successful_delivery = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "provider_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_code", "channel", "date"],
                condition=models.Q(provider__isnull=True),
                name="uniq_cost_daily_env_provider",
            ),
            models.UniqueConstraint(fields=["provider", "date"], name="uniq_cost_daily_provider"),
        ]
        verbose_name_plural = "provider daily costs"

    def __str__(self) -> str:
        return f"{self.provider_code} {self.date} {self.total_cost} {self.currency}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "HARD_BOUNCE", "Hard bounce"
    COMPLAINT = "COMPLAINT", "Complaint"
    UNSUBSCRIBE = "UNSUBSCRIBE", "Unsubscribed"


class SuppressedAddress(models.Model):
    """An address no send of `organization` may use again; `organization` null = suppressed
    for everyone. Only the platform may suppress for everyone (a hard bounce its own provider
    reported, or staff): an organization's provider suppresses for that organization only."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="suppressed_addresses"
    )
    address = models.CharField(max_length=320)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    provider_code = models.CharField(max_length=50, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("address"), "channel", "organization", name="uniq_suppressed_address_org"
            ),
            models.UniqueConstraint(
                Lower("address"), "channel", condition=models.Q(organization__isnull=True), name="uniq_suppressed_address_global"
            ),
        ]
        indexes = [models.Index(fields=["channel", "address"])]
        verbose_name_plural = "suppressed addresses"

    def __str__(self) -> str:
        return f"{self.address} ({self.channel}, {self.reason})"
