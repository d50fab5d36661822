"""Reads of the provider layer, each scoped to what the caller may see."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from common.exceptions import NotFound
from common.channels import Channel

from .enums import ProviderHealthStatus
from .models import NotificationProvider

from .models import SuppressedAddress
from .registry import registry

# The environment default per channel when an organization and the platform configured nothing.
# In-app has none: the notification row is the inbox entry, the engine records it without a provider.
ENV_DEFAULT_CODES: dict[str, str] = {
    Channel.EMAIL: "django_email",
    Channel.SMS: "log_sms",
    Channel.PUSH: "log_push",
    Channel.WHATSAPP: "log_whatsapp",
    Channel.VOICE: "log_voice",
}


@dataclass
class ProviderBinding:
    """A provider as the failover loop sees it: a record, or the environment default."""

    key: str  # circuit-breaker / rate-limit identity, shared by all workers
    code: str
    channel: str
    record: NotificationProvider | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def record_id(self) -> int | None:
        return self.record.pk if self.record else None

    @property
    def organization_id(self) -> int | None:
        return self.record.organization_id if self.record else None

    @property
    def health_status(self) -> str:
        return self.record.health_status if self.record else ProviderHealthStatus.UNKNOWN

    @property
    def rate_limit_per_minute(self) -> int | None:
        return self.record.rate_limit_per_minute if self.record else None

    @property
    def daily_limit(self) -> int | None:
        return self.record.daily_limit if self.record else None


def binding_for_record(record: NotificationProvider) -> ProviderBinding:
    return ProviderBinding(key=f"db{record.pk}", code=record.code, channel=record.channel, record=record, config=dict(record.config or {}))


def env_binding(channel: str) -> ProviderBinding:
    code = ENV_DEFAULT_CODES[channel]
    return ProviderBinding(key=f"env-{code}", code=code, channel=channel)


def provider_bindings_for_channel(*, organization_id: int | None, channel: str) -> tuple[list[ProviderBinding], list[NotificationProvider]]:
    """Active providers for a channel in the order to try them — the organization's own
    records first, then the global ones, each by priority — plus the global records (for
    credential fallback). One query. No records at all: the environment default."""
    scope = Q(organization__isnull=True)
    if organization_id is not None:
        scope |= Q(organization_id=organization_id)
    records = list(NotificationProvider.objects.filter(scope, channel=channel, is_active=True))
    records = [r for r in records if r.code in registry]
    records.sort(key=lambda r: (r.organization_id is None, r.priority, r.pk))
    if not records:
        return [env_binding(channel)], []
    return [binding_for_record(r) for r in records], [r for r in records if r.organization_id is None]


def providers_visible_to(*, organization_id: int | None, platform_admin: bool) -> QuerySet[NotificationProvider]:
    qs = NotificationProvider.objects.select_related("organization")
    if platform_admin:
        return qs
    return qs.filter(Q(organization__isnull=True) | Q(organization_id=organization_id))


def provider_get_visible(*, provider_id: int, organization_id: int | None, platform_admin: bool) -> NotificationProvider:
    record = providers_visible_to(organization_id=organization_id, platform_admin=platform_admin).filter(pk=provider_id).first()
    if record is None:
        raise NotFound("Provider not found.")
    return record


def suppression_check(*, addresses: Iterable[str], channel: str, organization_id: int | None = None) -> dict[str, str]:
    """{lower-cased address: reason} for the suppressed ones among `addresses` — one query
    whatever their number. Global suppressions (hard bounces) apply to every organization."""
    wanted = {a.strip().lower() for a in addresses if a}
    if not wanted:
        return {}
    scope = Q(organization__isnull=True)
    if organization_id is not None:
        scope |= Q(organization_id=organization_id)
    rows = SuppressedAddress.objects.annotate(address_lower=Lower("address")).filter(scope, channel=channel, address_lower__in=wanted)
    return {address: reason for address, reason in rows.values_list("address_lower", "reason")}


def deliveries_sent_by_q(*, provider_ids: Iterable[int] = (), unbound_codes: Iterable[str] = ()) -> Q:
    """Deliveries sent by these provider records, or without a record (the platform's
    environment configuration) by these codes. Nothing when both are empty."""
    scope = Q(pk__in=[])
    ids = [int(i) for i in provider_ids if i is not None]
    codes = [str(c) for c in unbound_codes if c]
    if ids:
        scope |= Q(provider_record_id__in=ids)
    if codes:
        scope |= Q(provider_record__isnull=True, provider__in=codes)
    return scope


SUCCESS_RATE_CACHE_SECONDS = 60


def provider_success_rates_24h(provider_ids: Iterable[int], *, now: datetime | None = None) -> dict[int, Decimal | None]:
    """{record id: % of its messages of the last 24 h that succeeded} (None without any), as the
    platform counts them (providers.hooks.sent_counts). The selection strategy reads it for every
    batch: cached for a minute."""
    from .hooks import sent_counts

    ids = sorted({int(i) for i in provider_ids if i is not None})
    if not ids:
        return {}
    key = "prov:sr24:" + ",".join(map(str, ids))
    if now is None and (hit := cache.get(key)) is not None:
        return {int(k): (Decimal(v) if v is not None else None) for k, v in hit.items()}
    since = (now or timezone.now()) - timedelta(hours=24)
    rates: dict[int, Decimal | None] = {}
    for pk in ids:
        ok, failed = sent_counts(provider_id=pk, since=since)
        rates[pk] = (Decimal(ok) * 100 / Decimal(ok + failed)).quantize(Decimal("0.01")) if ok + failed else None
    if now is None:
        cache.set(key, {k: (str(v) if v is not None else None) for k, v in rates.items()}, SUCCESS_RATE_CACHE_SECONDS)
    return rates
