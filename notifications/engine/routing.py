"""Channel routing for every recipient of one event, at once.

For each recipient the channels are

    requested (or the event type's defaults)
      ∩ allowed for the event type
      ∩ enabled by the organization (ChannelConfiguration, then CriticalityRouting)
      ∩ preferences (global → organization → team → project → user)

and then, per remaining channel: an address is needed (else SKIPPED), `only_when_offline`
channels are SKIPPED while the user is online, quiet hours BLOCK (SKIPPED) or HOLD (HELD),
and rate limits HOLD or DROP. Every check, passed or not, is written to the channel's trace.

Everything is loaded in a fixed number of queries (configuration, preferences, quiet hours,
presence) and resolved in Python; rate-limit counters are reserved in Redis pipelines.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch, Q
from django.db.models.functions import Lower

from common.channels import CHANNEL_DEFINITIONS
from notifications.enums import (
    CHANNEL_ADDRESS_FIELD,
    Channel,
    Criticality,
    DeliveryStatus,
    QuietHoursAction,
    RateLimitAction,
)
from notifications.models import ChannelConfiguration, CriticalityRouting, EventType

from . import ratelimit
from .preferences import PreferenceSet, preference_decide, preferences_load
from .presence import presence_online_user_ids
from .quiet_hours import (
    QuietHoursSet,
    QuietState,
    quiet_channel_action,
    quiet_hours_load,
    quiet_state_at,
)


@dataclass
class Recipient:
    """A resolved recipient: a member of the organization, or a bare address."""

    key: str  # "u:<id>" or "a:<email|phone>": stable within the event, used for rate limits
    user_id: int | None = None
    email: str = ""
    phone: str = ""
    locale: str = ""
    timezone: str = ""
    name: str = ""

    def address(self, channel: str) -> str:
        return channel_address(channel, user_id=self.user_id, email=self.email, phone=self.phone)


def channel_address(channel: str, *, user_id: Any, email: str, phone: str) -> str:
    """The address a channel needs ("" when there is none): in-app and push address the user
    account itself, the others its email or phone. The one place that decides it."""
    field_name = CHANNEL_ADDRESS_FIELD.get(channel)
    if field_name is None:
        return str(user_id) if user_id else ""
    return email if field_name == "email" else phone


def notification_address(notification: Any, channel: str) -> str:
    """The address a channel needs for a stored notification's recipient: what the event named,
    else the user account's own."""
    user = notification.recipient
    return channel_address(channel, user_id=notification.recipient_id,
                           email=notification.recipient_email or (user.email if user else ""),
                           phone=notification.recipient_phone or (user.phone if user else ""))


@dataclass
class ChannelRoute:
    channel: str
    status: str | None  # DeliveryStatus PENDING / HELD / SKIPPED, or None: no delivery row
    address: str = ""
    reason: str = ""
    detail: str = ""
    hold_until: datetime | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    # Digest preference of the recipient for this channel (engine.digest collects it).
    digest_frequency: str = ""
    preference_id: int | None = None

    @property
    def used(self) -> bool:
        return self.status in (DeliveryStatus.PENDING, DeliveryStatus.HELD)

    def trace(self) -> dict[str, Any]:
        decisions: dict[str | None, str] = {
            DeliveryStatus.PENDING: "send",
            DeliveryStatus.HELD: "held",
            DeliveryStatus.SKIPPED: "skipped",
            None: "excluded",
        }
        decision = decisions[self.status]
        out: dict[str, Any] = {
            "used": self.used,
            "decision": decision,
            "reason": self.reason,
            "detail": self.detail,
            "steps": self.steps,
            "cost_tier": CHANNEL_DEFINITIONS[self.channel].cost_tier if self.channel in CHANNEL_DEFINITIONS else "",
        }
        if self.hold_until:
            out["hold_until"] = self.hold_until.isoformat()
        return out


@dataclass
class RoutingContext:
    organization_id: int
    event_type: EventType
    category: str
    criticality: str
    channels: list[str]  # candidate channels, in order
    channel_source: str  # "request" or "event_type"
    team_id: int | None
    project_id: int | None
    now: datetime
    send_at: datetime | None = None  # scheduled_for, when the notification is sent later

    @property
    def scheduled(self) -> bool:
        # Sent later: judged against quiet hours at its send time, no rate-limit budget now.
        return self.send_at is not None and self.send_at > self.now


@dataclass
class RecipientRoute:
    recipient: Recipient
    channels: list[ChannelRoute]
    quiet: dict[str, Any]
    presence: str | None

    @property
    def any_pending(self) -> bool:
        return any(c.status == DeliveryStatus.PENDING for c in self.channels)

    @property
    def any_held(self) -> bool:
        return any(c.status == DeliveryStatus.HELD for c in self.channels)

    def trace(self, ctx: RoutingContext) -> dict[str, Any]:
        out: dict[str, Any] = {c.channel: c.trace() for c in self.channels}
        out["routing"] = {
            "event_type": ctx.event_type.key,
            "category": ctx.category,
            "criticality": ctx.criticality,
            "channels_considered": ctx.channels,
            "channel_source": ctx.channel_source,
            "allowed_channels": list(ctx.event_type.allowed_channels or []),
            "team_id": ctx.team_id,
            "project_id": ctx.project_id,
            "quiet_hours": self.quiet,
            "presence": self.presence,
            "decided_at": ctx.now.isoformat(),
        }
        return out


# --- organization configuration ------------------------------------------------------------


@dataclass
class ChannelRules:
    configuration_id: int | None
    scope: str  # "organization", "global" or "default"
    enabled: bool
    criticality_enabled: dict[str, bool]
    bypass_quiet_hours: dict[str, bool]
    user_per_minute: int | None
    user_per_hour: int | None
    org_per_minute: int | None
    org_per_hour: int | None
    rate_limit_action: str
    # Seed 004 §4.2 `requiresOptIn`, from the configuration's settings (None: not said, the
    # seed's default for the channel applies). When true, a bare number (no account that gave
    # it) gets nothing on the channel; `false` is the configuration saying consent is given.
    requires_opt_in: bool | None = None

    @classmethod
    def default(cls) -> ChannelRules:
        return cls(None, "default", True, {}, {}, None, None, None, None, RateLimitAction.HOLD)


def _opt_in_setting(settings: Any) -> bool | None:
    value = settings.get("requiresOptIn") if isinstance(settings, dict) else None
    return value if isinstance(value, bool) else None


def channel_rules_load(*, organization_id: int) -> dict[str, ChannelRules]:
    """The organization's channel configuration, over the platform's: two queries, or none
    (engine.config_memo). The rules are shared: read-only."""
    from .config_memo import config_read

    return config_read(("channel_rules", organization_id), lambda: _channel_rules_read(organization_id=organization_id))


def _channel_rules_read(*, organization_id: int) -> dict[str, ChannelRules]:
    configs = ChannelConfiguration.objects.filter(
        Q(organization_id=organization_id) | Q(organization__isnull=True)
    ).prefetch_related(Prefetch("criticality_routing", queryset=CriticalityRouting.objects.all()))
    rules: dict[str, ChannelRules] = {}
    # Global rows first so that the organization's own row replaces them.
    for config in sorted(configs, key=lambda c: c.organization_id is not None):
        routing = list(config.criticality_routing.all())
        rules[config.channel] = ChannelRules(
            configuration_id=config.pk,
            scope="organization" if config.organization_id else "global",
            enabled=config.enabled,
            criticality_enabled={r.criticality: r.enabled for r in routing},
            bypass_quiet_hours={r.criticality: r.bypass_quiet_hours for r in routing},
            user_per_minute=config.rate_limit_user_per_minute,
            user_per_hour=config.rate_limit_user_per_hour,
            org_per_minute=config.rate_limit_org_per_minute,
            org_per_hour=config.rate_limit_org_per_hour,
            rate_limit_action=config.rate_limit_action,
            requires_opt_in=_opt_in_setting(config.settings),
        )
    return rules


# Channels that reach a person at an address of theirs (the suppression list applies).
SUPPRESSIBLE_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.VOICE)
# Seed 004 §4.2 channel definitions (`requiresOptIn`), among the channels that reach an address
# (push needs a subscription, so a user, anyway): SMS, WhatsApp, voice.
OPT_IN_CHANNELS = tuple(code for code, d in CHANNEL_DEFINITIONS.items() if d.requires_opt_in and code in SUPPRESSIBLE_CHANNELS)


def requires_opt_in(rules: ChannelRules, channel: str) -> bool:
    """Does a bare number need consent on record for `channel`? The configuration's own
    `requiresOptIn` (organization's, else the platform's), else the seed's default: yes."""
    if channel not in OPT_IN_CHANNELS:
        return False
    return True if rules.requires_opt_in is None else rules.requires_opt_in


def suppressions_load(*, organization_id: int, channels: list[str], recipients: list[Recipient]) -> dict[tuple[str, str], str]:
    """{(channel, lower-cased address): reason} of the suppressed addresses among these recipients
    (hard bounces, complaints, unsubscribes, SMS STOP replies): one query, whatever their number."""
    from providers.models import SuppressedAddress

    wanted_channels = [c for c in channels if c in SUPPRESSIBLE_CHANNELS]
    addresses = {r.address(c).strip().lower() for r in recipients for c in wanted_channels if r.address(c)}
    if not addresses:
        return {}
    rows = (
        SuppressedAddress.objects.annotate(address_lower=Lower("address"))
        .filter(Q(organization__isnull=True) | Q(organization_id=organization_id), channel__in=wanted_channels,
                address_lower__in=addresses)
        .values_list("channel", "address_lower", "reason")
    )
    return {(channel, address): reason for channel, address, reason in rows}


# --- the router ------------------------------------------------------------------------------


def _excluded(route: ChannelRoute, reason: str, detail: str) -> ChannelRoute:
    route.status, route.reason, route.detail = None, reason, detail
    return route


def _skipped(route: ChannelRoute, reason: str, detail: str) -> ChannelRoute:
    route.status, route.reason, route.detail = DeliveryStatus.SKIPPED, reason, detail
    return route


def _route_channel(
    *,
    ctx: RoutingContext,
    recipient: Recipient,
    channel: str,
    rules: ChannelRules,
    prefs: PreferenceSet,
    quiet: QuietState,
    online: bool,
    suppressed: dict[tuple[str, str], str] | None = None,
) -> ChannelRoute:
    route = ChannelRoute(channel=channel, status=DeliveryStatus.PENDING)
    steps = route.steps
    allowed = ctx.event_type.allowed_channels or Channel.values
    if channel not in allowed:
        steps.append({"check": "allowed_channels", "result": "fail"})
        return _excluded(route, "not_allowed", f"{channel} is not allowed for {ctx.event_type.key}.")
    steps.append({"check": "allowed_channels", "result": "pass"})

    org_step = {"check": "channel_configuration", "scope": rules.scope, "configuration_id": rules.configuration_id}
    if not rules.enabled:
        steps.append({**org_step, "result": "fail"})
        who = "the organization" if rules.scope == "organization" else "the platform"
        return _excluded(route, "organization_disabled", f"{channel} is disabled by {who}.")
    if rules.criticality_enabled.get(ctx.criticality, True) is False:
        steps.append({**org_step, "result": "fail", "criticality": ctx.criticality})
        return _excluded(
            route, "criticality_routing_disabled", f"{channel} is not used for {ctx.criticality} notifications."
        )
    steps.append({**org_step, "result": "pass"})

    decision = preference_decide(rows=prefs.rows_for(recipient.user_id), channel=channel, criticality=ctx.criticality)
    pref_step: dict[str, Any] = {"check": "preference", "result": "pass" if decision.enabled else "fail", "reason": decision.reason}
    if decision.preference:
        pref_step.update({"level": decision.preference["level"], "preference_id": decision.preference["id"],
                          "scope": decision.preference["scope"]})
    if decision.overridden:
        pref_step["overridden"] = decision.overridden
    if decision.digest_frequency and decision.digest_frequency != "NONE":
        pref_step["digest_frequency"] = decision.digest_frequency
        route.digest_frequency = decision.digest_frequency
        route.preference_id = decision.preference["id"] if decision.preference else None
    steps.append(pref_step)
    if not decision.enabled:
        level = decision.preference["level"] if decision.preference else "?"
        detail = {
            "preference_disabled": f"Notifications turned off by the {level} preference #{pref_step.get('preference_id')}.",
            "below_min_criticality": f"{ctx.criticality} is below the minimum criticality of the {level} preference #{pref_step.get('preference_id')}.",
            "channel_disabled": f"{channel} turned off by the {level} preference #{pref_step.get('preference_id')}.",
        }.get(decision.reason, decision.reason)
        return _excluded(route, decision.reason, detail)

    address = recipient.address(channel)
    if not address:
        needed = CHANNEL_ADDRESS_FIELD.get(channel) or "user account"
        steps.append({"check": "address", "result": "fail", "needs": needed})
        return _skipped(route, "no_address", f"The recipient has no {needed} for {channel}.")
    route.address = address
    steps.append({"check": "address", "result": "pass"})
    why = (suppressed or {}).get((channel, address.strip().lower()))
    if why:
        steps.append({"check": "suppression", "result": "fail", "reason": why})
        return _skipped(route, "suppressed", f"The recipient's address is on the suppression list for {channel} ({why.lower()}).")
    if recipient.user_id is None and requires_opt_in(rules, channel):
        steps.append({"check": "consent", "result": "fail", "requires_opt_in": True,
                      "configuration": rules.scope})
        return _skipped(route, "opt_in_required", f"{channel} needs the recipient's consent: a bare number has none on record, "
                                                  f"and the {rules.scope} {channel} configuration does not say consent is given "
                                                  f"(settings.requiresOptIn: false).")
    if recipient.user_id is None and channel in OPT_IN_CHANNELS:
        steps.append({"check": "consent", "result": "pass", "configuration": rules.scope})

    if decision.only_when_offline:
        if online:
            steps.append({"check": "presence", "result": "fail", "status": "ONLINE"})
            return _skipped(route, "presence_online", f"{channel} is only used while the recipient is offline.")
        steps.append({"check": "presence", "result": "pass", "status": "OFFLINE"})

    if quiet.active:
        action, why = quiet_channel_action(
            quiet, channel=channel, criticality=ctx.criticality,
            bypass=bool(rules.bypass_quiet_hours.get(ctx.criticality)),
        )
        q_step = {"check": "quiet_hours", "result": "pass" if action == QuietHoursAction.ALLOW else action.lower(),
                  "reason": why, **quiet.describe()}
        steps.append(q_step)
        if action == QuietHoursAction.BLOCK:
            return _skipped(route, "quiet_hours_block", f"Quiet hours ({quiet.cause}) block {channel}.")
        if action == QuietHoursAction.HOLD:
            route.status, route.reason = DeliveryStatus.HELD, "quiet_hours_hold"
            route.hold_until = quiet.until
            route.detail = f"Held by quiet hours ({quiet.cause}) until {quiet.until.isoformat() if quiet.until else '?'}."
            return route
    route.reason = "routed"
    route.detail = f"{channel} will be sent."
    return route


def _window_end(now: datetime, window: int) -> datetime:
    ts = now.timestamp()
    return now + timedelta(seconds=window - (ts % window))


def _apply_rate_limits(*, ctx: RoutingContext, routes: list[RecipientRoute], rules: dict[str, ChannelRules]) -> None:
    """Reserve rate-limit budget for every PENDING delivery; hold or drop what does not fit.

    Per user and channel first (per minute and per hour), then what passed against the
    organization's budget for the channel, in recipient order. Budget reserved by a
    delivery that is refused at a later stage is given back.
    """
    if ctx.scheduled:
        return
    org = ctx.organization_id
    candidates: dict[str, list[tuple[RecipientRoute, ChannelRoute]]] = defaultdict(list)
    for rroute in routes:
        for croute in rroute.channels:
            if croute.status != DeliveryStatus.PENDING:
                continue
            if ctx.criticality == Criticality.CRITICAL:
                if _has_limits(rules.get(croute.channel)):
                    croute.steps.append({"check": "rate_limit", "result": "pass", "reason": "critical_exempt"})
                continue
            if _has_limits(rules.get(croute.channel)):
                candidates[croute.channel].append((rroute, croute))
    for channel, items in candidates.items():
        rule = rules[channel]
        refused: dict[int, tuple[str, int]] = {}  # index -> (limit name, window)
        user_granted: dict[int, list[tuple[str, int]]] = defaultdict(list)  # index -> reserved (key, window)
        for window, limit in ((60, rule.user_per_minute), (3600, rule.user_per_hour)):
            if not limit:
                continue
            keys = {}
            for index, (rroute, _c) in enumerate(items):
                if index in refused:
                    continue
                keys[index] = ratelimit.user_channel_key(organization_id=org, user_key=rroute.recipient.key, channel=channel)
            granted = ratelimit.counters_reserve(demands={k: (1, limit) for k in keys.values()}, window=window) if keys else {}
            for index, key in keys.items():
                if granted.get(key):
                    user_granted[index].append((key, window))
                else:
                    refused[index] = ("user_per_minute" if window == 60 else "user_per_hour", window)
        for window, limit in ((60, rule.org_per_minute), (3600, rule.org_per_hour)):
            if not limit:
                continue
            passing = [i for i in range(len(items)) if i not in refused]
            if not passing:
                break
            key = ratelimit.organization_channel_key(organization_id=org, channel=channel)
            ok = ratelimit.counters_reserve(demands={key: (len(passing), limit)}, window=window)[key]
            for index in passing[ok:]:
                refused[index] = ("organization_per_minute" if window == 60 else "organization_per_hour", window)
            # Budget taken in an earlier (minute) window by items now refused is given back below.
            if ok < len(passing) and window == 3600 and rule.org_per_minute:
                ratelimit.counters_release(amounts={key: len(passing) - ok}, window=60)
        # Users refused by the organization's budget give their own reservation back.
        release: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for index in refused:
            for key, window in user_granted.get(index, []):
                release[window][key] += 1
        for window, amounts in release.items():
            ratelimit.counters_release(amounts=amounts, window=window)
        for index, (_rroute, croute) in enumerate(items):
            if index not in refused:
                croute.steps.append({"check": "rate_limit", "result": "pass"})
                continue
            limit_name, window = refused[index]
            step = {"check": "rate_limit", "result": "fail", "limit": limit_name, "action": rule.rate_limit_action,
                    "configuration_id": rule.configuration_id}
            croute.steps.append(step)
            if rule.rate_limit_action == RateLimitAction.DROP:
                _skipped(croute, "rate_limited", f"Over the {limit_name.replace('_', ' ')} limit for {channel}: dropped.")
            else:
                until = _window_end(ctx.now, window)
                croute.status, croute.reason, croute.hold_until = DeliveryStatus.HELD, "rate_limited_hold", until
                croute.detail = f"Over the {limit_name.replace('_', ' ')} limit for {channel}: held until {until.isoformat()}."


def _has_limits(rule: ChannelRules | None) -> bool:
    return bool(rule and (rule.user_per_minute or rule.user_per_hour or rule.org_per_minute or rule.org_per_hour))


def route_recipients(*, ctx: RoutingContext, recipients: list[Recipient]) -> list[RecipientRoute]:
    """Decide every channel of every recipient. A fixed number of queries, whatever the count."""
    user_ids = [r.user_id for r in recipients if r.user_id]
    rules = channel_rules_load(organization_id=ctx.organization_id)
    prefs = preferences_load(
        organization_id=ctx.organization_id, user_ids=user_ids, event_type=ctx.event_type.key,
        category=ctx.category, team_id=ctx.team_id, project_id=ctx.project_id,
    )
    quiet_set: QuietHoursSet = quiet_hours_load(organization_id=ctx.organization_id, user_ids=user_ids)
    online = presence_online_user_ids(user_ids=user_ids, now=ctx.now)
    suppressed = suppressions_load(organization_id=ctx.organization_id, channels=list(ctx.channels), recipients=recipients)
    at = ctx.send_at if ctx.scheduled and ctx.send_at is not None else ctx.now
    routes: list[RecipientRoute] = []
    default_rules = ChannelRules.default()
    for recipient in recipients:
        config = quiet_set.for_user(recipient.user_id)
        # A user's own row carries its time zone; the organization's default is read in the user's.
        tz_name = None if config is None or config.owner == "user" else recipient.timezone
        quiet = quiet_state_at(config, now=at, timezone_name=tz_name)
        is_online = recipient.user_id in online if recipient.user_id else False
        channel_routes = [
            _route_channel(
                ctx=ctx, recipient=recipient, channel=channel, rules=rules.get(channel, default_rules),
                prefs=prefs, quiet=quiet, online=is_online, suppressed=suppressed,
            )
            for channel in ctx.channels
        ]
        routes.append(
            RecipientRoute(
                recipient=recipient,
                channels=channel_routes,
                quiet=quiet.describe(),
                presence=("ONLINE" if is_online else "OFFLINE") if recipient.user_id else None,
            )
        )
    _apply_rate_limits(ctx=ctx, routes=routes, rules=rules)
    return routes
