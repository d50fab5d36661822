"""The delivery channels, shared by the provider layer and the notification platform.

It lives below both so that `providers/` can name a channel without importing
`notifications/` (see docs/architecture.md for who may import whom).
"""
from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    IN_APP = "IN_APP", "In-app"
    EMAIL = "EMAIL", "Email"
    PUSH = "PUSH", "Push"
    SMS = "SMS", "SMS"
    WHATSAPP = "WHATSAPP", "WhatsApp"
    VOICE = "VOICE", "Voice call"


class CostTier(models.TextChoices):
    FREE = "free", "Free"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ChannelDefinition:
    """What a channel can carry and what it costs (seed 004 §4.2), as data."""

    __slots__ = ("code", "name", "supports_rich_content", "supports_actions", "supports_attachments", "requires_opt_in",
                 "cost_tier")

    def __init__(self, code: str, name: str, *, rich: bool, actions: bool, attachments: bool, opt_in: bool, cost: str) -> None:
        self.code, self.name = code, name
        self.supports_rich_content, self.supports_actions, self.supports_attachments = rich, actions, attachments
        self.requires_opt_in, self.cost_tier = opt_in, cost

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


CHANNEL_DEFINITIONS: dict[str, ChannelDefinition] = {
    Channel.IN_APP: ChannelDefinition(Channel.IN_APP, "In-App Notification", rich=True, actions=True, attachments=False,
                                      opt_in=False, cost=CostTier.FREE),
    Channel.EMAIL: ChannelDefinition(Channel.EMAIL, "Email", rich=True, actions=True, attachments=True, opt_in=False,
                                     cost=CostTier.LOW),
    Channel.PUSH: ChannelDefinition(Channel.PUSH, "Push Notification", rich=False, actions=True, attachments=False,
                                    opt_in=True, cost=CostTier.LOW),
    Channel.SMS: ChannelDefinition(Channel.SMS, "SMS", rich=False, actions=False, attachments=False, opt_in=True,
                                   cost=CostTier.MEDIUM),
    Channel.WHATSAPP: ChannelDefinition(Channel.WHATSAPP, "WhatsApp", rich=True, actions=True, attachments=True,
                                        opt_in=True, cost=CostTier.MEDIUM),
    Channel.VOICE: ChannelDefinition(Channel.VOICE, "Voice Call", rich=False, actions=False, attachments=False,
                                     opt_in=True, cost=CostTier.HIGH),
}
COST_TIER_ORDER = {CostTier.FREE: 0, CostTier.LOW: 1, CostTier.MEDIUM: 2, CostTier.HIGH: 3}


def channel_definition(channel: str) -> ChannelDefinition:
    return CHANNEL_DEFINITIONS[channel]
