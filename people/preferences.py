"""The preference center: what reaches a person, on which channel, and why.

Reads every row that can apply to the person (platform, organization, their teams, their own)
in two queries and resolves each cell with the routing's own `preference_decide`, so the page
shows exactly what the platform will do. Writes go through `preferences_replace` at the USER
level — the service behind PUT /api/v1/preferences/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from accounts.models import Organization, User
from common.exceptions import ValidationError
from notifications.engine.preferences import PreferenceRow, _row, preference_decide, preferences_replace
from notifications.enums import (
    AuditActorType,
    Channel,
    Criticality,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import ChannelPreference, EventType, NotificationPreference

CHANNELS = list(Channel.values)
SOURCE_LABELS = {
    "DEFAULT": "default",
    PreferenceLevel.GLOBAL: "platform default",
    PreferenceLevel.ORGANIZATION: "organization default",
    PreferenceLevel.TEAM: "team",
    PreferenceLevel.PROJECT: "project",
    PreferenceLevel.USER: "your choice",
}
CELL_CHOICES = ("", "on", "off")


@dataclass
class Cell:
    channel: str
    allowed: bool
    enabled: bool = False
    source: str = ""
    source_key: str = ""  # default | organization | team | project | user | locked | critical_override
    own: str = ""  # the person's own setting at this row's scope: "", "on" or "off"
    locked: bool = False
    is_default_channel: bool = False
    field_name: str = ""


@dataclass
class MatrixRow:
    kind: str  # category | type
    key: str
    label: str
    category: str
    cells: list[Cell] = field(default_factory=list)
    description: str = ""


def _rows_for(*, user: User, organization: Organization | None) -> list[PreferenceRow]:
    levels = Q(level=PreferenceLevel.GLOBAL) | (
        Q(level=PreferenceLevel.USER, user=user) & (Q(organization__isnull=True) | Q(organization=organization))
    )
    if organization is not None:
        team_ids = list(user.memberships.filter(organization=organization).values_list("teams", flat=True))
        levels |= Q(level=PreferenceLevel.ORGANIZATION, organization=organization)
        levels |= Q(level=PreferenceLevel.TEAM, organization=organization, team_id__in=[t for t in team_ids if t])
    return [_row(p) for p in NotificationPreference.objects.filter(levels).prefetch_related("channel_preferences")]


def _matching(rows: list[PreferenceRow], category: str, event_type: str | None) -> list[PreferenceRow]:
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


def _own_row(rows: list[PreferenceRow], *, scope: str, category: str = "", event_type: str = "") -> PreferenceRow | None:
    for r in rows:
        if (r.level == PreferenceLevel.USER and not r.organization_specific and r.scope == scope
                and r.category == category and r.event_type == event_type):
            return r
    return None


def _cell(rows: list[PreferenceRow], own: PreferenceRow | None, *, channel: str, criticality: str, field_name: str,
          allowed: bool = True, default_channel: bool = False) -> Cell:
    cell = Cell(channel=channel, allowed=allowed, is_default_channel=default_channel, field_name=field_name)
    if not allowed:
        return cell
    decision = preference_decide(rows=rows, channel=channel, criticality=criticality)
    cell.enabled = decision.enabled
    pref = decision.preference
    if decision.reason == "critical_override":
        cell.source, cell.source_key = "critical override", "critical_override"
    elif pref and pref.get("locked"):
        cell.source, cell.source_key, cell.locked = "locked by admin", "locked", True
    else:
        level = pref["level"] if pref else "DEFAULT"
        cell.source = SOURCE_LABELS.get(level, level.lower())
        cell.source_key = {"USER": "user", "ORGANIZATION": "organization", "TEAM": "team", "PROJECT": "project"}.get(level, "default")
    if own is not None and channel in own.channels:
        cell.own = "on" if own.channels[channel].get("enabled", True) else "off"
    return cell


def preference_matrix(*, user: User, organization: Organization | None) -> list[MatrixRow]:
    """Categories, each followed by its active event types, × the six channels. Three queries."""
    rows = _rows_for(user=user, organization=organization)
    types = list(EventType.objects.filter(is_active=True).order_by("category", "key"))
    out: list[MatrixRow] = []
    for category, label in EventCategory.choices:
        matching = _matching(rows, category, None)
        own = _own_row(rows, scope=PreferenceScope.CATEGORY, category=category)
        out.append(MatrixRow(
            kind="category", key=category, label=str(label), category=category,
            cells=[_cell(matching, own, channel=ch, criticality=Criticality.MEDIUM, field_name=f"cat:{category}:{ch}")
                   for ch in CHANNELS],
        ))
        for et in (t for t in types if t.category == category):
            matching = _matching(rows, category, et.key)
            own = _own_row(rows, scope=PreferenceScope.EVENT_TYPE, event_type=et.key)
            allowed = set(et.allowed_channels or CHANNELS)
            defaults = set(et.default_channels or [])
            out.append(MatrixRow(
                kind="type", key=et.key, label=et.name, category=category, description=et.description,
                cells=[_cell(matching, own, channel=ch, criticality=et.default_criticality, field_name=f"type:{et.key}:{ch}",
                             allowed=ch in allowed, default_channel=ch in defaults) for ch in CHANNELS],
            ))
    return out


def _parse_matrix_post(data: Any) -> dict[tuple[str, str], dict[str, str]]:
    """{(scope kind, key): {channel: "" | "on" | "off"}} from the form's `cat:KEY:CH` / `type:KEY:CH` fields."""
    wanted: dict[tuple[str, str], dict[str, str]] = {}
    errors: list[str] = []
    for name in data:
        if not (name.startswith("cat:") or name.startswith("type:")):
            continue
        kind, _, rest = name.partition(":")
        key, _, channel = rest.rpartition(":")
        value = data.get(name, "")
        if channel not in CHANNELS or value not in CELL_CHOICES or not key:
            errors.append(f"Unknown setting {name!r}.")
            continue
        wanted.setdefault((kind, key), {})[channel] = value
    if errors:
        raise ValidationError({"preferences": errors})
    return wanted


@transaction.atomic(durable=True)
def preference_matrix_save(*, user: User, organization: Organization | None, data: Any) -> int:
    """Write the person's own choices from the matrix form; returns how many rows changed.

    Only cells whose value differs from the person's current choice are written, as USER rows
    for every organization (like PUT /api/v1/preferences/). A new row takes the gate the
    person has today, so setting one channel does not reopen a category an administrator
    turned off; choosing "on" does open it for them. Locked cells are refused.
    """
    wanted = _parse_matrix_post(data)
    matrix = {(("cat" if r.kind == "category" else "type"), r.key): r for r in preference_matrix(user=user, organization=organization)}
    rows = _rows_for(user=user, organization=organization)
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    for (kind, key), channels in wanted.items():
        current = matrix.get((kind, key))
        if current is None:
            errors.append(f"Unknown {'category' if kind == 'cat' else 'event type'} {key!r}.")
            continue
        cells = {c.channel: c for c in current.cells}
        changes: dict[str, Any] = {}
        for channel, value in channels.items():
            cell = cells[channel]
            if value == cell.own:
                continue
            if not cell.allowed:
                errors.append(f"{current.label}: {channel} is not a channel of this event type.")
                continue
            if cell.locked:
                errors.append(f"{current.label}: {Channel(channel).label} is locked by your organization.")
                continue
            changes[channel] = None if value == "" else {"enabled": value == "on"}
        if not changes:
            continue
        scope = PreferenceScope.CATEGORY if kind == "cat" else PreferenceScope.EVENT_TYPE
        item: dict[str, Any] = {"scope": scope, "channels": changes}
        if kind == "cat":
            item["category"] = key
            own = _own_row(rows, scope=scope, category=key)
            matching = _matching(rows, key, None)
        else:
            item["event_type"] = key
            own = _own_row(rows, scope=scope, event_type=key)
            matching = _matching(rows, current.category, key)
        if own is None:
            gate = matching[0] if matching else None
            item["enabled"] = gate.enabled if gate else True
            item["min_criticality"] = gate.min_criticality if gate else Criticality.LOW
        if any(v and v.get("enabled") for v in changes.values()):
            item["enabled"] = True
        items.append(item)
    if errors:
        raise ValidationError({"preferences": errors})
    if not items:
        return 0
    preferences_replace(
        level=PreferenceLevel.USER, items=items, user_id=user.pk, actor_type=AuditActorType.USER,
        actor_id=str(user.pk), actor_label=user.get_username(),
        audit_organization_id=organization.pk if organization else None,
    )
    _drop_empty_own_rows(user=user)
    return len(items)


def _drop_empty_own_rows(*, user: User) -> None:
    # A row left with no channel setting and the default gate says nothing but "enabled": it
    # would silently reopen what an organization turned off. Inherit instead.
    NotificationPreference.objects.filter(
        level=PreferenceLevel.USER, user=user, organization__isnull=True, enabled=True, min_criticality=Criticality.LOW,
        scope__in=[PreferenceScope.CATEGORY, PreferenceScope.EVENT_TYPE],
    ).exclude(pk__in=ChannelPreference.objects.values("preference_id")).delete()


def digest_settings(*, user: User) -> dict[str, Any]:
    """The person's email digest: cadence, hour, day — on their own all-events row."""
    cp = ChannelPreference.objects.filter(
        preference__level=PreferenceLevel.USER, preference__user=user, preference__organization__isnull=True,
        preference__scope=PreferenceScope.ALL, channel=Channel.EMAIL,
    ).first()
    return {
        "frequency": cp.digest_frequency if cp else "NONE",
        "hour": cp.digest_hour if cp and cp.digest_hour is not None else 8,
        "day_of_week": cp.digest_day_of_week if cp and cp.digest_day_of_week is not None else 0,
    }
