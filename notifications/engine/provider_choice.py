"""The selection strategy of each (organization, channel) about to send, from its
ChannelConfiguration (the organization's own, else the platform's): `settings` keys
`provider_strategy` and `region`, and `default_provider` (providers.selection)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from notifications.models import ChannelConfiguration
from providers.selection import SelectionPolicy


def selection_policies(keys: Iterable[tuple[int | None, str]]) -> dict[tuple[int | None, str], SelectionPolicy]:
    """{(organization id, channel): policy} — one query; the organization's own configuration
    wins over the platform's."""
    keys = list(keys)
    if not keys:
        return {}
    org_ids = {org for org, _ in keys if org is not None}
    channels = {channel for _, channel in keys}
    configs = {(c.organization_id, c.channel): c for c in ChannelConfiguration.objects.filter(
        Q(organization_id__in=org_ids) | Q(organization__isnull=True), channel__in=channels).only(
        "organization_id", "channel", "settings", "default_provider_id")}
    policies = {}
    for org, channel in keys:
        config = configs.get((org, channel)) or configs.get((None, channel))
        if config is not None:
            policies[(org, channel)] = SelectionPolicy.from_settings(config.settings, default_provider_id=config.default_provider_id)
    return policies
