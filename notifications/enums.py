"""Enumerations of the notification platform.

Values are the upper-case names the REST API and the AMQP payloads use ("IN_APP",
"MEDIUM", "PROJECT_MANAGEMENT"), so a value read from a request can be stored as is.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Case, IntegerField, Value, When

from common.channels import Channel  # noqa: F401  (the notification platform's name for it too)
from providers.enums import ProviderHealthStatus  # noqa: F401  (provider records are the provider layer's)


# Which address a channel needs on the recipient (None: the user account itself).
CHANNEL_ADDRESS_FIELD: dict[str, str | None] = {
    Channel.IN_APP: None,
    Channel.EMAIL: "email",
    Channel.PUSH: None,
    Channel.SMS: "phone",
    Channel.WHATSAPP: "phone",
    Channel.VOICE: "phone",
}


class EventCategory(models.TextChoices):
    PROJECT_MANAGEMENT = "PROJECT_MANAGEMENT", "Project management"
    COLLABORATION = "COLLABORATION", "Collaboration"
    AI_PLANNING = "AI_PLANNING", "AI & planning"
    SYSTEM_ADMIN = "SYSTEM_ADMIN", "System & admin"
    INCIDENTS = "INCIDENTS", "Incidents"
    CALENDAR = "CALENDAR", "Calendar"
    SECURITY = "SECURITY", "Security"
    BILLING = "BILLING", "Billing"


class Criticality(models.TextChoices):
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"
    CRITICAL = "CRITICAL", "Critical"

    @property
    def rank(self) -> int:
        return CRITICALITY_RANK[self.value]

    @classmethod
    def rank_of(cls, value: str) -> int:
        """Rank of a stored value: LOW=1 … CRITICAL=4 (unknown values raise KeyError)."""
        return CRITICALITY_RANK[value]

    @classmethod
    def at_least(cls, value: str, threshold: str) -> bool:
        return CRITICALITY_RANK[value] >= CRITICALITY_RANK[threshold]

    @classmethod
    def rank_expression(cls, field: str) -> Case:
        """SQL expression giving the rank of a criticality column, for filtering and ordering."""
        return Case(
            *(When(**{field: value}, then=Value(rank)) for value, rank in CRITICALITY_RANK.items()),
            default=Value(0),
            output_field=IntegerField(),
        )


CRITICALITY_RANK: dict[str, int] = {
    Criticality.LOW.value: 1,
    Criticality.MEDIUM.value: 2,
    Criticality.HIGH.value: 3,
    Criticality.CRITICAL.value: 4,
}


class NotificationStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    PROCESSING = "PROCESSING", "Processing"
    SCHEDULED = "SCHEDULED", "Scheduled"
    HELD = "HELD", "Held (quiet hours or rate limit)"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    PARTIALLY_DELIVERED = "PARTIALLY_DELIVERED", "Partially delivered"
    FAILED = "FAILED", "Failed"
    SKIPPED = "SKIPPED", "Skipped (no channel applied)"
    DIGESTED = "DIGESTED", "Added to a digest"
    EXPIRED = "EXPIRED", "Expired"
    CANCELLED = "CANCELLED", "Cancelled"


NOTIFICATION_FINAL_STATUSES = frozenset(
    {
        NotificationStatus.DELIVERED,
        NotificationStatus.PARTIALLY_DELIVERED,
        NotificationStatus.FAILED,
        NotificationStatus.SKIPPED,
        NotificationStatus.EXPIRED,
        NotificationStatus.CANCELLED,
    }
)


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENDING = "SENDING", "Sending"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    OPENED = "OPENED", "Opened"
    CLICKED = "CLICKED", "Clicked"
    BOUNCED = "BOUNCED", "Bounced"
    COMPLAINED = "COMPLAINED", "Complained (spam report)"
    REJECTED = "REJECTED", "Rejected by the provider"
    UNSUBSCRIBED = "UNSUBSCRIBED", "Unsubscribed"
    FAILED = "FAILED", "Failed"
    HELD = "HELD", "Held"
    SKIPPED = "SKIPPED", "Skipped"
    CANCELLED = "CANCELLED", "Cancelled"
    DIGESTED = "DIGESTED", "Added to a digest"
    EXPIRED = "EXPIRED", "Expired"


# The provider accepted the message (and possibly more happened since).
DELIVERY_SUCCESS_STATUSES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED, DeliveryStatus.CLICKED}
)
# The message will never reach the recipient through this delivery.
DELIVERY_FAILURE_STATUSES = frozenset(
    {
        DeliveryStatus.FAILED,
        DeliveryStatus.BOUNCED,
        DeliveryStatus.COMPLAINED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.UNSUBSCRIBED,
    }
)
# Nothing more will be attempted for this row.
DELIVERY_FINAL_STATUSES = (
    DELIVERY_SUCCESS_STATUSES
    | DELIVERY_FAILURE_STATUSES
    | frozenset({DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED, DeliveryStatus.DIGESTED, DeliveryStatus.EXPIRED})
)


class ActorType(models.TextChoices):
    USER = "user", "User"
    SYSTEM = "system", "System"
    SERVICE = "service", "Service (API key)"


class BatchType(models.TextChoices):
    DIGEST = "DIGEST", "Digest (combined summary)"
    GROUPED = "GROUPED", "Grouped by category"


class BatchFrequency(models.TextChoices):
    HOURLY = "HOURLY", "Hourly"
    DAILY = "DAILY", "Daily"
    WEEKLY = "WEEKLY", "Weekly"


class DigestFrequency(models.TextChoices):
    """A channel preference's digest setting: NONE means send each notification at once."""

    NONE = "NONE", "Immediately (no digest)"
    HOURLY = "HOURLY", "Hourly"
    DAILY = "DAILY", "Daily"
    WEEKLY = "WEEKLY", "Weekly"


class BatchStatus(models.TextChoices):
    OPEN = "OPEN", "Open (collecting)"
    READY = "READY", "Ready to send"
    SENDING = "SENDING", "Sending"
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class PreferenceLevel(models.TextChoices):
    """Hierarchy, least to most specific: the most specific level that has a row wins."""

    GLOBAL = "GLOBAL", "Global"
    ORGANIZATION = "ORGANIZATION", "Organization"
    TEAM = "TEAM", "Team"
    PROJECT = "PROJECT", "Project"
    USER = "USER", "User"


PREFERENCE_LEVEL_RANK: dict[str, int] = {
    PreferenceLevel.GLOBAL.value: 0,
    PreferenceLevel.ORGANIZATION.value: 1,
    PreferenceLevel.TEAM.value: 2,
    PreferenceLevel.PROJECT.value: 3,
    PreferenceLevel.USER.value: 4,
}


class PreferenceScope(models.TextChoices):
    """What a preference row covers; EVENT_TYPE beats CATEGORY, which beats ALL."""

    ALL = "ALL", "All events"
    CATEGORY = "CATEGORY", "One category"
    EVENT_TYPE = "EVENT_TYPE", "One event type"


PREFERENCE_SCOPE_RANK: dict[str, int] = {
    PreferenceScope.ALL.value: 0,
    PreferenceScope.CATEGORY.value: 1,
    PreferenceScope.EVENT_TYPE.value: 2,
}


class QuietHoursAction(models.TextChoices):
    BLOCK = "BLOCK", "Block (drop)"
    HOLD = "HOLD", "Hold and deliver after"
    ALLOW = "ALLOW", "Allow"


class EscalationCondition(models.TextChoices):
    NOT_ACKNOWLEDGED = "NOT_ACKNOWLEDGED", "Not acknowledged"
    NOT_RESOLVED = "NOT_RESOLVED", "Source not resolved"
    ALWAYS = "ALWAYS", "Always"


class EscalationRecipientType(models.TextChoices):
    ORIGINAL = "ORIGINAL", "Original recipient"
    ROLE = "ROLE", "Members with a role"
    USER = "USER", "A specific user"
    ON_CALL = "ON_CALL", "Current on-call person"


class RateLimitAction(models.TextChoices):
    HOLD = "HOLD", "Hold until the window frees up"
    DROP = "DROP", "Drop (skip the channel)"


class WebhookDirection(models.TextChoices):
    INCOMING = "INCOMING", "Incoming (receive events)"
    OUTGOING = "OUTGOING", "Outgoing (notify external systems)"


class WebhookAuthType(models.TextChoices):
    NONE = "NONE", "None"
    BASIC = "BASIC", "Basic"
    BEARER = "BEARER", "Bearer token"
    HMAC_SHA256 = "HMAC_SHA256", "HMAC-SHA256 signature"
    API_KEY = "API_KEY", "API key header"


class AuditActorType(models.TextChoices):
    USER = "USER", "User"
    SYSTEM = "SYSTEM", "System"
    API_KEY = "API_KEY", "API key"
    PROVIDER = "PROVIDER", "Provider"
    WEBHOOK = "WEBHOOK", "Webhook"


class AuditOutcome(models.TextChoices):
    SUCCESS = "SUCCESS", "Success"
    FAILURE = "FAILURE", "Failure"
    PARTIAL = "PARTIAL", "Partial"


class AuditAction(models.TextChoices):
    # Notification lifecycle
    NOTIFICATION_CREATED = "NOTIFICATION_CREATED", "Notification created"
    NOTIFICATION_DEDUPLICATED = "NOTIFICATION_DEDUPLICATED", "Notification deduplicated"
    NOTIFICATION_PROCESSED = "NOTIFICATION_PROCESSED", "Notification processed"
    NOTIFICATION_DELIVERED = "NOTIFICATION_DELIVERED", "Notification delivered"
    NOTIFICATION_FAILED = "NOTIFICATION_FAILED", "Notification failed"
    NOTIFICATION_HELD = "NOTIFICATION_HELD", "Notification held"
    NOTIFICATION_RELEASED = "NOTIFICATION_RELEASED", "Notification released"
    NOTIFICATION_EXPIRED = "NOTIFICATION_EXPIRED", "Notification expired"
    NOTIFICATION_CANCELLED = "NOTIFICATION_CANCELLED", "Notification cancelled"
    ESCALATED = "ESCALATED", "Escalated"
    ACKNOWLEDGED = "ACKNOWLEDGED", "Acknowledged"
    READ = "READ", "Read"
    ARCHIVED = "ARCHIVED", "Archived"
    # Delivery
    DELIVERY_ATTEMPTED = "DELIVERY_ATTEMPTED", "Delivery attempted"
    DELIVERY_SENT = "DELIVERY_SENT", "Delivery sent"
    DELIVERY_DELIVERED = "DELIVERY_DELIVERED", "Delivery confirmed"
    DELIVERY_FAILED = "DELIVERY_FAILED", "Delivery failed"
    DELIVERY_RETRY_SCHEDULED = "DELIVERY_RETRY_SCHEDULED", "Delivery retry scheduled"
    DELIVERY_SKIPPED = "DELIVERY_SKIPPED", "Delivery skipped"
    DELIVERY_OPENED = "DELIVERY_OPENED", "Delivery opened"
    DELIVERY_CLICKED = "DELIVERY_CLICKED", "Delivery clicked"
    DELIVERY_BOUNCED = "DELIVERY_BOUNCED", "Delivery bounced"
    DEAD_LETTERED = "DEAD_LETTERED", "Moved to dead letters"
    DEAD_LETTER_REPLAYED = "DEAD_LETTER_REPLAYED", "Dead letter replayed"
    DEAD_LETTER_DISCARDED = "DEAD_LETTER_DISCARDED", "Dead letter discarded"
    # Templates
    TEMPLATE_CREATED = "TEMPLATE_CREATED", "Template created"
    TEMPLATE_CHANGED = "TEMPLATE_CHANGED", "Template changed"
    TEMPLATE_DELETED = "TEMPLATE_DELETED", "Template deleted"
    # Providers
    PROVIDER_CONFIGURED = "PROVIDER_CONFIGURED", "Provider configured"
    PROVIDER_HEALTH_CHECK = "PROVIDER_HEALTH_CHECK", "Provider health check"
    PROVIDER_FAILOVER = "PROVIDER_FAILOVER", "Provider failover"
    # Preferences and quiet hours
    PREFERENCE_CHANGED = "PREFERENCE_CHANGED", "Preference changed"
    QUIET_HOURS_CHANGED = "QUIET_HOURS_CHANGED", "Quiet hours changed"
    CHANNEL_CONFIGURATION_CHANGED = "CHANNEL_CONFIGURATION_CHANGED", "Channel configuration changed"
    # Webhooks
    WEBHOOK_CONFIGURED = "WEBHOOK_CONFIGURED", "Webhook configured"
    WEBHOOK_RECEIVED = "WEBHOOK_RECEIVED", "Webhook received"
    WEBHOOK_SENT = "WEBHOOK_SENT", "Webhook sent"
    WEBHOOK_FAILED = "WEBHOOK_FAILED", "Webhook failed"
    # Subscribers and the command bus
    SUBSCRIBER_UPSERTED = "SUBSCRIBER_UPSERTED", "Subscriber created or updated"
    SUBSCRIBER_DELETED = "SUBSCRIBER_DELETED", "Subscriber deleted (anonymized)"
    COMMAND_EXECUTED = "COMMAND_EXECUTED", "Bus command executed"
    COMMAND_FAILED = "COMMAND_FAILED", "Bus command failed"


class PresenceStatus(models.TextChoices):
    ONLINE = "ONLINE", "Online"
    AWAY = "AWAY", "Away"
    DND = "DND", "Do not disturb"
    OFFLINE = "OFFLINE", "Offline"


class DeadLetterStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    REPLAYED = "REPLAYED", "Replayed"
    DISCARDED = "DISCARDED", "Discarded"


class IdempotencyStatus(models.TextChoices):
    IN_FLIGHT = "IN_FLIGHT", "In flight"
    COMPLETED = "COMPLETED", "Completed"
