"""The notification platform's schema (seed 004, section 3), on PostgreSQL.

Every row that belongs to a tenant carries `organization`; rows where it may be NULL
(templates, providers, escalation chains, channel configuration, global preferences) are
platform-wide defaults that an organization's own row overrides.

Channel lists are JSON lists of `Channel` values rather than PostgreSQL arrays so the
embedded SQLite run uses the same schema.
"""
from __future__ import annotations

from .validators import (  # noqa: F401  (migrations name them notifications.models.<name>)
    validate_channel_list,
    validate_string_list,
    validate_category_list,
    validate_days_of_week,
    validate_variable_mapping,
    validate_string_dict,
)
from .templates import (  # noqa: F401
    EventType,
    NotificationTemplate,
    TemplateChannel,
    TemplateVersion,
)
from .delivery import (  # noqa: F401
    NotificationBatch,
    Notification,
    NotificationDelivery,
)
from .preferences import (  # noqa: F401
    NotificationPreference,
    ChannelPreference,
    QuietHours,
    QuietHoursSchedule,
    QuietHoursChannelRule,
)
from .configuration import (  # noqa: F401
    EscalationChain,
    EscalationLevel,
    ChannelConfiguration,
    CriticalityRouting,
    Webhook,
)
from .operations import (  # noqa: F401
    NotificationAuditLog,
    UserPresence,
    DeadLetter,
    IdempotencyRecord,
    BusCommand,
)
from .audiences import (  # noqa: F401
    Topic,
    TopicSubscription,
)
