"""Builders shared by the intake, routing, preference, quiet-hours and consumer tests (no tests here)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import Membership, MembershipRole
from notifications.enums import (
    Channel,
    Criticality,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import (
    ChannelConfiguration,
    ChannelPreference,
    EventType,
    NotificationPreference,
)

from ..factories import MembershipFactory, UserFactory

EVENT = "test.intake.task"


def intake_event_type(
    *,
    key: str = EVENT,
    category: str = EventCategory.PROJECT_MANAGEMENT,
    criticality: str = Criticality.MEDIUM,
    default_channels: list[str] | None = None,
    allowed_channels: list[str] | None = None,
) -> EventType:
    event_type, _ = EventType.objects.update_or_create(
        key=key,
        defaults={
            "name": "Task (intake test)",
            "category": category,
            "default_criticality": criticality,
            "default_channels": default_channels or [Channel.IN_APP, Channel.EMAIL],
            "allowed_channels": allowed_channels or [Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS],
            "variable_mapping": {"task.title": "data.taskTitle"},
            "is_active": True,
        },
    )
    return event_type


def member(organization, *, role: str = MembershipRole.MEMBER, **fields: Any):
    user = UserFactory(**fields)
    MembershipFactory(user=user, organization=organization, role=role)
    return user


def members_bulk(organization, count: int, *, prefix: str = "bulk") -> list[int]:
    """Many members in two INSERTs (factories would take seconds for a thousand)."""
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password="!", display_name=f"{prefix} {i}") for i in range(count)]
    )
    Membership.objects.bulk_create([Membership(user=u, organization=organization) for u in users])
    return [u.pk for u in users]


def preference(
    *,
    level: str,
    channels: dict[str, bool | dict[str, Any]] | None = None,
    scope: str = PreferenceScope.ALL,
    category: str = "",
    event_type: str = "",
    **fields: Any,
) -> NotificationPreference:
    pref = NotificationPreference.objects.create(
        level=level, scope=scope, category=category if scope == PreferenceScope.CATEGORY else "",
        event_type=event_type if scope == PreferenceScope.EVENT_TYPE else "", **fields,
    )
    for channel, cfg in (channels or {}).items():
        cfg = {"enabled": cfg} if isinstance(cfg, bool) else cfg
        ChannelPreference.objects.create(preference=pref, channel=channel, **cfg)
    return pref


def user_pref(user, **kwargs: Any) -> NotificationPreference:
    return preference(level=PreferenceLevel.USER, user=user, **kwargs)


def channel_config(organization, channel: str, **fields: Any) -> ChannelConfiguration:
    config, _ = ChannelConfiguration.objects.update_or_create(organization=organization, channel=channel, defaults=fields)
    return config


def statuses(notification) -> dict[str, str]:
    return {d.channel: d.status for d in notification.deliveries.all()}
