"""Hierarchical notification preferences: load in bulk, resolve in Python.

Levels, least to most specific: GLOBAL → ORGANIZATION → TEAM → PROJECT → USER (a user's
row for one organization beats the user's row for every organization). Within a level, an
EVENT_TYPE row beats a CATEGORY row, which beats an ALL row. A row an administrator `locked`
(organization, team or project level) beats every unlocked row: members cannot override it.

Two things are resolved, each by the most specific row that has an opinion:
- the *gate* (is this event wanted at all?): `enabled` and `min_criticality` of the most
  specific matching row;
- each *channel*: the most specific matching row that has a ChannelPreference for it.
A CRITICAL notification passes an opt-out whose row has `critical_override` (the default);
a channel the organization disabled in its ChannelConfiguration is handled by routing and
never reaches this point.

Team and project levels apply through the event's team/project (its context), so a
fan-out needs one query for every recipient's rows.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, Q

from common.query import id_array
from common.exceptions import ValidationError
from notifications.enums import (
    PREFERENCE_LEVEL_RANK,
    PREFERENCE_SCOPE_RANK,
    AuditAction,
    AuditActorType,
    Channel,
    Criticality,
    DigestFrequency,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import (
    ChannelPreference,
    EventType,
    NotificationAuditLog,
    NotificationPreference,
)


@dataclass(frozen=True)
class PreferenceRow:
    id: int
    level: str
    scope: str
    category: str
    event_type: str
    enabled: bool
    min_criticality: str
    critical_override: bool
    user_id: int | None
    organization_specific: bool  # USER level: bound to one organization
    channels: dict[str, dict[str, Any]]
    locked: bool = False

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        # A row an administrator locked outranks every unlocked one: members cannot override it.
        return (1 if self.locked else 0, PREFERENCE_LEVEL_RANK[self.level], 1 if self.organization_specific else 0,
                PREFERENCE_SCOPE_RANK[self.scope])

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "level": self.level, "scope": self.scope}
        if self.locked:
            out["locked"] = True
        if self.scope == PreferenceScope.CATEGORY:
            out["category"] = self.category
        elif self.scope == PreferenceScope.EVENT_TYPE:
            out["event_type"] = self.event_type
        return out


@dataclass
class ChannelPreferenceDecision:
    enabled: bool
    reason: str  # default | preference | preference_disabled | below_min_criticality | critical_override
    preference: dict[str, Any] | None = None
    only_when_offline: bool = False
    digest_frequency: str = DigestFrequency.NONE
    overridden: dict[str, Any] | None = None  # the opt-out a CRITICAL notification passed


@dataclass
class PreferenceSet:
    """Every preference row relevant to one event, grouped by recipient."""

    shared: list[PreferenceRow] = field(default_factory=list)  # GLOBAL, ORGANIZATION, TEAM, PROJECT
    by_user: dict[int, list[PreferenceRow]] = field(default_factory=lambda: defaultdict(list))

    def rows_for(self, user_id: int | None) -> list[PreferenceRow]:
        rows = self.shared + (self.by_user.get(user_id, []) if user_id else [])
        return sorted(rows, key=lambda r: r.sort_key, reverse=True)


def _scope_q(*, event_type: str, category: str) -> Q:
    return (
        Q(scope=PreferenceScope.ALL)
        | Q(scope=PreferenceScope.CATEGORY, category=category)
        | Q(scope=PreferenceScope.EVENT_TYPE, event_type=event_type)
    )


def _row(pref: NotificationPreference) -> PreferenceRow:
    return PreferenceRow(
        id=pref.pk,
        level=pref.level,
        scope=pref.scope,
        category=pref.category,
        event_type=pref.event_type,
        enabled=pref.enabled,
        min_criticality=pref.min_criticality,
        critical_override=pref.critical_override,
        user_id=pref.user_id,
        organization_specific=pref.level == PreferenceLevel.USER and pref.organization_id is not None,
        locked=pref.locked and pref.level != PreferenceLevel.USER,
        channels={
            cp.channel: {
                "enabled": cp.enabled,
                "only_when_offline": cp.only_when_offline,
                "digest_frequency": cp.digest_frequency,
                "digest_hour": cp.digest_hour,
                "digest_day_of_week": cp.digest_day_of_week,
            }
            for cp in pref.channel_preferences.all()
        },
    )


def preferences_load(
    *,
    organization_id: int,
    user_ids: Iterable[int],
    event_type: str,
    category: str,
    team_id: int | None = None,
    project_id: int | None = None,
) -> PreferenceSet:
    """All rows that can apply to this event for these users: two queries whatever their number."""
    user_ids = list(user_ids)
    levels = Q(level=PreferenceLevel.GLOBAL) | Q(level=PreferenceLevel.ORGANIZATION, organization_id=organization_id)
    if team_id:
        levels |= Q(level=PreferenceLevel.TEAM, team_id=team_id, organization_id=organization_id)
    if project_id:
        levels |= Q(level=PreferenceLevel.PROJECT, project_id=project_id, organization_id=organization_id)
    if user_ids:
        levels |= Q(level=PreferenceLevel.USER, user_id__any=id_array(user_ids)) & (
            Q(organization__isnull=True) | Q(organization_id=organization_id)
        )
    prefs = (
        NotificationPreference.objects.filter(levels)
        .filter(_scope_q(event_type=event_type, category=category))
        .prefetch_related(Prefetch("channel_preferences", queryset=ChannelPreference.objects.order_by("channel")))
    )
    result = PreferenceSet()
    for pref in prefs:
        row = _row(pref)
        if row.level == PreferenceLevel.USER:
            result.by_user[row.user_id].append(row)  # type: ignore[index]
        else:
            result.shared.append(row)
    return result


def preference_decide(*, rows: list[PreferenceRow], channel: str, criticality: str) -> ChannelPreferenceDecision:
    """The decision for one channel, given rows sorted most specific first."""
    is_critical = criticality == Criticality.CRITICAL
    # 1. the gate: the most specific row decides whether the event is wanted at all.
    gate = rows[0] if rows else None
    gate_off: tuple[str, PreferenceRow] | None = None
    if gate is not None:
        if not gate.enabled:
            gate_off = ("preference_disabled", gate)
        elif not Criticality.at_least(criticality, gate.min_criticality):
            gate_off = ("below_min_criticality", gate)
    # 2. the channel: the most specific row that mentions it.
    chosen: PreferenceRow | None = next((r for r in rows if channel in r.channels), None)
    settings = chosen.channels[channel] if chosen else {}
    only_when_offline = bool(settings.get("only_when_offline"))
    digest = settings.get("digest_frequency") or DigestFrequency.NONE

    if gate_off is not None:
        reason, row = gate_off
        if is_critical and row.critical_override:
            return ChannelPreferenceDecision(
                True, "critical_override", row.describe(), only_when_offline, digest, overridden={"reason": reason, **row.describe()}
            )
        return ChannelPreferenceDecision(False, reason, row.describe(), only_when_offline, digest)
    if chosen is not None:
        if settings.get("enabled", True):
            return ChannelPreferenceDecision(True, "preference", chosen.describe(), only_when_offline, digest)
        if is_critical and chosen.critical_override:
            return ChannelPreferenceDecision(
                True, "critical_override", chosen.describe(), only_when_offline, digest,
                overridden={"reason": "channel_disabled", **chosen.describe()},
            )
        return ChannelPreferenceDecision(False, "channel_disabled", chosen.describe(), only_when_offline, digest)
    if gate is not None:
        return ChannelPreferenceDecision(True, "preference", gate.describe(), only_when_offline, digest)
    return ChannelPreferenceDecision(True, "default", None)


# --- effective preferences and the user's own level (API) ---------------------------------


def _effective_channels(
    rows: list[PreferenceRow], *, channels: Iterable[str], criticality: str, defaults: Iterable[str]
) -> dict[str, dict[str, Any]]:
    defaults = set(defaults)
    out = {}
    for channel in channels:
        decision = preference_decide(rows=rows, channel=channel, criticality=criticality)
        out[channel] = {
            "enabled": decision.enabled,
            "default": channel in defaults,
            "level": decision.preference["level"] if decision.preference else "DEFAULT",
            "preference_id": decision.preference["id"] if decision.preference else None,
            "locked": bool(decision.preference and decision.preference.get("locked")),
            "reason": decision.reason,
            "only_when_offline": decision.only_when_offline,
            "digest_frequency": decision.digest_frequency,
        }
    return out


def preferences_effective(
    *, user_id: int, organization_id: int | None, event_types: list[EventType]
) -> dict[str, list[dict[str, Any]]]:
    """Effective settings × channel, each with the level it came from:
    per category (rows for all events and for the category, at MEDIUM criticality) and per
    event type (every matching row, at the type's default criticality).

    Two queries: every row of the user, the organization and the platform is loaded once and
    resolved in Python.
    """
    levels = Q(level=PreferenceLevel.GLOBAL) | Q(level=PreferenceLevel.USER, user_id=user_id) & (
        Q(organization__isnull=True) | Q(organization_id=organization_id)
    )
    if organization_id:
        levels |= Q(level=PreferenceLevel.ORGANIZATION, organization_id=organization_id)
    rows = [_row(p) for p in NotificationPreference.objects.filter(levels).prefetch_related("channel_preferences")]

    def matching(category: str, event_type: str | None) -> list[PreferenceRow]:
        return sorted(
            (
                r for r in rows
                if r.scope == PreferenceScope.ALL
                or (r.scope == PreferenceScope.CATEGORY and r.category == category)
                or (event_type is not None and r.scope == PreferenceScope.EVENT_TYPE and r.event_type == event_type)
            ),
            key=lambda r: r.sort_key,
            reverse=True,
        )

    def gate(rows_: list[PreferenceRow]) -> dict[str, Any]:
        top = rows_[0] if rows_ else None
        return {
            "enabled": top.enabled if top else True,
            "min_criticality": top.min_criticality if top else Criticality.LOW,
            "level": top.level if top else "DEFAULT",
            "preference_id": top.id if top else None,
        }

    categories = []
    for category in EventCategory.values:
        rows_ = matching(category, None)
        categories.append({
            "category": category,
            **{f"gate_{k}": v for k, v in gate(rows_).items()},
            "channels": _effective_channels(rows_, channels=Channel.values, criticality=Criticality.MEDIUM, defaults=()),
        })
    types = []
    for et in event_types:
        rows_ = matching(et.category, et.key)
        types.append({
            "event_type": et.key,
            "category": et.category,
            "default_criticality": et.default_criticality,
            **{f"gate_{k}": v for k, v in gate(rows_).items()},
            "channels": _effective_channels(
                rows_, channels=et.allowed_channels or Channel.values, criticality=et.default_criticality,
                defaults=et.default_channels or [],
            ),
        })
    return {"categories": categories, "event_types": types}


def _validate_item(item: dict[str, Any], *, known_types: set[str]) -> list[str]:
    errors = []
    scope = item.get("scope", PreferenceScope.ALL)
    if scope == PreferenceScope.CATEGORY and item.get("category") not in EventCategory.values:
        errors.append(f"category must be one of {', '.join(EventCategory.values)}.")
    if scope == PreferenceScope.EVENT_TYPE and item.get("event_type") not in known_types:
        errors.append(f"Unknown event type: {item.get('event_type')!r}.")
    return errors


CHANNEL_PREFERENCE_FIELDS = ("enabled", "only_when_offline", "digest_frequency", "digest_hour", "digest_day_of_week")


@transaction.atomic
def preferences_replace(
    *,
    level: str,
    items: list[dict[str, Any]],
    organization_id: int | None = None,
    team_id: int | None = None,
    project_id: int | None = None,
    user_id: int | None = None,
    actor_type: str = AuditActorType.USER,
    actor_id: str = "",
    actor_label: str = "",
    audit_organization_id: int | None = None,
) -> list[NotificationPreference]:
    """Upsert the given rows of one owner (a user, an organization, a team or a project).

    `items` are validated dicts: scope, category, event_type, enabled, min_criticality,
    critical_override, channels: {CHANNEL: {enabled, only_when_offline, digest_frequency} or None
    to drop the row's setting for that channel}.
    Rows of the owner that are not listed are left alone; an item with `"delete": true`
    removes its row. Writes one PREFERENCE_CHANGED audit row per call.
    """
    known_types = set(
        EventType.objects.filter(key__in=[i.get("event_type") for i in items if i.get("event_type")]).values_list("key", flat=True)
    )
    errors = {str(index): msgs for index, item in enumerate(items) if (msgs := _validate_item(item, known_types=known_types))}
    if errors:
        raise ValidationError({"preferences": errors})
    owner = {
        "level": level,
        "organization_id": organization_id,
        "team_id": team_id,
        "project_id": project_id,
        "user_id": user_id,
    }
    saved: list[NotificationPreference] = []
    changes: list[dict[str, Any]] = []
    for item in items:
        scope = item.get("scope") or PreferenceScope.ALL
        key = {
            "scope": scope,
            "category": item.get("category", "") if scope == PreferenceScope.CATEGORY else "",
            "event_type": item.get("event_type", "") if scope == PreferenceScope.EVENT_TYPE else "",
        }
        existing = NotificationPreference.objects.select_for_update().filter(**owner, **key).first()
        if item.get("delete"):
            if existing is not None:
                changes.append({"deleted": existing.pk, **key})
                existing.delete()
            continue
        pref = existing or NotificationPreference(**owner, **key)
        before = None if existing is None else {
            "enabled": existing.enabled, "min_criticality": existing.min_criticality,
            "critical_override": existing.critical_override,
        }
        for attr in ("enabled", "min_criticality", "critical_override"):
            if attr in item:
                setattr(pref, attr, item[attr])
        if "locked" in item and level != PreferenceLevel.USER:
            pref.locked = bool(item["locked"])
        pref.save()
        channels = item.get("channels") or {}
        if channels:
            current = {cp.channel: cp for cp in pref.channel_preferences.all()}
            to_create: list[ChannelPreference] = []
            to_update: list[ChannelPreference] = []
            to_delete: list[int] = []
            for channel, cfg in channels.items():
                if cfg is None:  # back to what the levels above say
                    if channel in current:
                        to_delete.append(current[channel].pk)
                    continue
                cp = current.get(channel) or ChannelPreference(preference=pref, channel=channel)
                for attr in CHANNEL_PREFERENCE_FIELDS:
                    if attr in cfg:
                        setattr(cp, attr, cfg[attr])
                (to_update if cp.pk else to_create).append(cp)
            ChannelPreference.objects.bulk_create(to_create)
            if to_delete:
                ChannelPreference.objects.filter(pk__in=to_delete).delete()
            if to_update:
                ChannelPreference.objects.bulk_update(to_update, list(CHANNEL_PREFERENCE_FIELDS))
        changes.append({"id": pref.pk, **key, "before": before, "after": {
            "enabled": pref.enabled, "min_criticality": pref.min_criticality,
            "critical_override": pref.critical_override, "locked": pref.locked, "channels": channels,
        }})
        saved.append(pref)
    NotificationAuditLog.objects.create(
        organization_id=audit_organization_id or organization_id,
        action=AuditAction.PREFERENCE_CHANGED,
        actor_type=actor_type,
        actor_id=actor_id,
        actor_label=actor_label,
        user_id=user_id,
        details={"level": level, "team_id": team_id, "project_id": project_id, "changes": changes},
    )
    return saved
