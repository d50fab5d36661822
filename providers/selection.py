"""Which provider a message tries first: the selection strategies of a channel.

A channel configuration names one strategy (`settings["provider_strategy"]`, priority when
unset); this module orders the channel's provider bindings for one message and explains the
choice in words that go into the delivery's trace. It never skips a provider for being
unhealthy, open-circuited or over its rate limit: the failover loop gates every candidate
(providers.services) in the order given here, and the explanation names those passed over.

What a provider declares, in its record's non-secret `config`:
- `cost_per_message`: a decimal, or per recipient country `{"GB": "0.035", "*": "0.05"}`;
- `coverage`: ISO 3166 alpha-2 countries it can deliver to (`["GB", "IE"]`); absent or
  containing "*" means everywhere;
- `weight`: its share of the weighted split (default 1; 0 = only as a fallback).
Without coverage, per-country costs or the region strategy the recipient's country is not read
(nothing would depend on it) and the trace names none.

Strategies (`SelectionStrategy`):
- priority: the channel configuration's `default_provider`, then the organization's own
  records before the platform's, `is_default` first within each, then `priority`;
- lowest_cost: cheapest for the recipient's country first (unpriced last);
- success_rate: best share of successful deliveries over the last 24 hours first (providers
  without traffic after those with some);
- region: providers naming the recipient's country in their coverage first, then worldwide ones;
- weighted: a weighted random order (A/B split by `weight`), drawn from the delivery id so a
  retry of one delivery sees the same order.
Whatever the strategy, a provider whose declared coverage excludes the recipient's country is
not a candidate, and ties keep the priority order (so the default wins them).
The recipient's country is read from an E.164 number; for other addresses the channel
configuration's declared `settings["region"]` is used.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.db import models

WORLDWIDE = "*"
MAX_WEIGHT = 1000


class SelectionStrategy(models.TextChoices):
    PRIORITY = "priority", "Priority"
    LOWEST_COST = "lowest_cost", "Lowest cost"
    SUCCESS_RATE = "success_rate", "Best 24 h success rate"
    REGION = "region", "Recipient's region"
    WEIGHTED = "weighted", "Weighted split"


@dataclass(frozen=True)
class SelectionPolicy:
    """How a channel of one organization picks its provider (built from ChannelConfiguration)."""

    strategy: str = SelectionStrategy.PRIORITY
    default_provider_id: int | None = None
    region: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None, *, default_provider_id: int | None = None) -> SelectionPolicy:
        settings = settings or {}
        strategy = settings.get("provider_strategy") or SelectionStrategy.PRIORITY
        if strategy not in SelectionStrategy.values:  # checked when saved; an old row falls back
            strategy = SelectionStrategy.PRIORITY
        return cls(strategy=strategy, default_provider_id=default_provider_id, region=str(settings.get("region") or "").upper())


def policy_settings_errors(settings: Mapping[str, Any]) -> dict[str, list[str]]:
    """Problems with the selection keys of a channel configuration's `settings`."""
    errors: dict[str, list[str]] = {}
    strategy = settings.get("provider_strategy")
    if strategy not in (None, "") and strategy not in SelectionStrategy.values:
        errors["provider_strategy"] = [f"Unknown strategy {strategy!r}. Valid: {', '.join(SelectionStrategy.values)}."]
    region = settings.get("region")
    if region not in (None, "") and (not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS):
        errors["region"] = [f"{region!r} is not an ISO 3166 alpha-2 country code."]
    return errors


def provider_config_errors(config: Mapping[str, Any]) -> list[str]:
    """Problems with the selection keys of a provider record's config (checked when saved)."""
    problems: list[str] = []
    cost = config.get("cost_per_message")
    if cost is not None:
        prices = cost if isinstance(cost, dict) else {WORLDWIDE: cost}
        for country, price in prices.items():
            if country != WORLDWIDE and str(country).upper() not in phonenumbers.SUPPORTED_REGIONS:
                problems.append(f"cost_per_message: {country!r} is not an ISO 3166 alpha-2 country code.")
            elif (amount := _decimal(price)) is None or amount < 0:
                problems.append(f"cost_per_message: {price!r} is not a non-negative decimal.")
    coverage = config.get("coverage")
    if coverage is not None:
        if not isinstance(coverage, list) or not all(isinstance(c, str) for c in coverage):
            problems.append("coverage: a list of ISO 3166 alpha-2 country codes (or \"*\").")
        else:
            unknown = [c for c in coverage if c != WORLDWIDE and c.upper() not in phonenumbers.SUPPORTED_REGIONS]
            if unknown:
                problems.append(f"coverage: not country codes: {', '.join(map(repr, unknown))}.")
    weight = config.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT):
        problems.append(f"weight: an integer from 0 to {MAX_WEIGHT}.")
    return problems


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@lru_cache(maxsize=4096)
def recipient_region(address: str, *, declared: str = "") -> str:
    """The recipient's country: from an E.164 number, else the declared region ("" if none)."""
    raw = (address or "").strip().removeprefix("whatsapp:")
    if raw.startswith("+"):
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(raw, None))
        except phonenumbers.NumberParseException:
            region = None
        if region and region != "ZZ":
            return region
    return declared.upper()


def cost_for(config: Mapping[str, Any], region: str) -> Decimal | None:
    cost = config.get("cost_per_message")
    if isinstance(cost, dict):
        cost = cost.get(region) if region and region in cost else cost.get(WORLDWIDE)
    return _decimal(cost) if cost is not None else None


def coverage_of(config: Mapping[str, Any]) -> set[str] | None:
    """Declared countries, or None for everywhere."""
    coverage = config.get("coverage")
    if not coverage or not isinstance(coverage, list) or WORLDWIDE in coverage:
        return None
    return {str(c).upper() for c in coverage}


def _weight(config: Mapping[str, Any]) -> int:
    weight = config.get("weight", 1)
    return weight if isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0 else 1


@dataclass
class Selection:
    """The candidates for one message, in the order to try them, and why."""

    strategy: str
    candidates: list[Any]  # ProviderBinding
    region: str = ""
    excluded: list[str] = field(default_factory=list)  # codes left out for their coverage
    reasons: dict[str, str] = field(default_factory=dict)  # binding key → why it ranks there

    def explain(self, chosen: Any, passed_over: Iterable[tuple[str, str]] = ()) -> str:
        """`chose plivo: cheapest healthy provider covering GB (0.035 per message); passed over
        twilio_sms (circuit open)` — the sentence written in the delivery's trace."""
        text = f"chose {chosen.code}: {self.reasons.get(chosen.key, 'next available provider')}"
        skipped = [f"{code} ({why})" for code, why in passed_over]
        if skipped:
            text += "; passed over " + ", ".join(skipped)
        if self.excluded:
            text += f"; not covering {self.region}: " + ", ".join(self.excluded)
        return text

    def explain_none(self, passed_over: Iterable[tuple[str, str]] = ()) -> str:
        skipped = [f"{code} ({why})" for code, why in passed_over]
        text = f"no provider chosen ({self.strategy})"
        if skipped:
            text += "; passed over " + ", ".join(skipped)
        if self.excluded:
            text += f"; not covering {self.region}: " + ", ".join(self.excluded)
        return text

    @property
    def order_key(self) -> tuple[str, ...]:
        return tuple(b.key for b in self.candidates)


def _priority_order(bindings: list[Any], policy: SelectionPolicy) -> list[Any]:
    # Bindings arrive as the organization's own records then the platform's, each by priority.
    def key(item: tuple[int, Any]) -> tuple[bool, bool, bool, int]:
        index, b = item
        is_default = bool(b.record is not None and b.record.is_default)
        return (policy.default_provider_id is None or b.record_id != policy.default_provider_id,
                b.organization_id is None, not is_default, index)

    return [b for _, b in sorted(enumerate(bindings), key=key)]


def _draw(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def provider_select(
    bindings: list[Any], *, policy: SelectionPolicy | None, address: str, seed: str = "",
    success_rates: Callable[[list[int]], Mapping[int, Decimal | None]] | None = None,
) -> Selection:
    """Order `bindings` (ProviderBinding) for one message to `address` under `policy`."""
    policy = policy or SelectionPolicy()
    strategy = policy.strategy
    # Parsing a number costs more than the rest of the choice: only when something depends on it.
    needs_region = strategy == SelectionStrategy.REGION or any(
        coverage_of(b.config) is not None or isinstance(b.config.get("cost_per_message"), dict) for b in bindings)
    region = recipient_region(address, declared=policy.region) if needs_region else ""
    ordered = _priority_order(bindings, policy)
    excluded: list[str] = []
    if region:
        kept = []
        for b in ordered:
            covered = coverage_of(b.config)
            if covered is not None and region not in covered:
                excluded.append(b.code)
            else:
                kept.append(b)
        ordered = kept
    where = f" covering {region}" if region else ""
    reasons: dict[str, str] = {}

    if strategy == SelectionStrategy.LOWEST_COST:
        costs = {b.key: cost_for(b.config, region) for b in ordered}
        ordered = sorted(ordered, key=lambda b: (costs[b.key] is None, costs[b.key] or 0))
        for rank, b in enumerate(ordered):
            cost = costs[b.key]
            if cost is None:
                reasons[b.key] = f"no declared cost; the cheaper healthy providers{where} were unavailable"
            else:
                reasons[b.key] = (f"cheapest healthy provider{where} ({cost.normalize():f} per message)" if rank == 0
                                  else f"cheapest healthy provider{where} still available ({cost.normalize():f} per message)")
    elif strategy == SelectionStrategy.SUCCESS_RATE:
        ids = [b.record_id for b in ordered if b.record_id is not None]
        rates = dict(success_rates(ids)) if (success_rates and ids) else {}
        rate = {b.key: rates.get(b.record_id) if b.record_id is not None else None for b in ordered}
        ordered = sorted(ordered, key=lambda b: (rate[b.key] is None, -(rate[b.key] or 0)))
        for b in ordered:
            reasons[b.key] = (f"best 24 h success rate among healthy providers{where} ({rate[b.key]}%)" if rate[b.key] is not None
                              else f"no deliveries in the last 24 h; providers{where} with a success rate were unavailable")
    elif strategy == SelectionStrategy.REGION:
        if not region:
            for b in ordered:
                reasons[b.key] = "no region known for the recipient; first healthy provider by priority"
        else:
            specific = [b for b in ordered if coverage_of(b.config) is not None]
            worldwide = [b for b in ordered if coverage_of(b.config) is None]
            ordered = specific + worldwide
            for b in specific:
                reasons[b.key] = f"healthy provider declaring coverage of {region}"
            for b in worldwide:
                reasons[b.key] = f"no healthy provider declares {region}; worldwide provider"
    elif strategy == SelectionStrategy.WEIGHTED:
        rng = _draw(seed or address)
        total = sum(_weight(b.config) for b in ordered) or 1
        # Efraimidis–Spirakis: each weighted key u^(1/w); weight 0 sorts after every positive one.
        keyed = [(rng.random() ** (1 / _weight(b.config)) if _weight(b.config) else -1.0, b) for b in ordered]
        ordered = [b for _, b in sorted(keyed, key=lambda kb: -kb[0])]
        for b in ordered:
            reasons[b.key] = f"weighted split (weight {_weight(b.config)} of {total})"
    else:
        for b in ordered:
            if policy.default_provider_id is not None and b.record_id == policy.default_provider_id:
                reasons[b.key] = "the channel's default provider"
            elif b.record is not None and b.record.is_default:
                reasons[b.key] = f"default {'organization' if b.organization_id else 'platform'} provider"
            else:
                reasons[b.key] = f"first healthy provider by priority{where}"
    return Selection(strategy=strategy, candidates=ordered, region=region, excluded=excluded, reasons=reasons)
