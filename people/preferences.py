"""The preference center: what reaches a person, on which channel, and why.

Reads every row that can apply to the person (platform, organization, their teams, the project
being looked at, their own) in two queries and resolves each cell with the routing's own
`preference_decide`, so the page shows exactly what the platform will do. The writes are in
`people.services` (through `preferences_replace`, the service behind PUT /api/v1/preferences/).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from accounts.models import Organization, Project, User
from notifications.engine.preferences import PreferenceRow, _row, preference_decide
from notifications.enums import (
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


def rows_for(*, user: User, organization: Organization | None, project: Project | None = None) -> list[PreferenceRow]:
    levels = Q(level=PreferenceLevel.GLOBAL) | (
        Q(level=PreferenceLevel.USER, user=user) & (Q(organization__isnull=True) | Q(organization=organization))
    )
    if organization is not None:
        team_ids = list(user.memberships.filter(organization=organization).values_list("teams", flat=True))
        levels |= Q(level=PreferenceLevel.ORGANIZATION, organization=organization)
        levels |= Q(level=PreferenceLevel.TEAM, organization=organization, team_id__in=[t for t in team_ids if t])
        if project is not None and project.organization_id == organization.pk:
            # A project's rows apply to its events (routing reads them from the event's project).
            levels |= Q(level=PreferenceLevel.PROJECT, organization=organization, project=project)
    return [_row(p) for p in NotificationPreference.objects.filter(levels).prefetch_related("channel_preferences")]


def matching_rows(rows: list[PreferenceRow], category: str, event_type: str | None) -> list[PreferenceRow]:
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


def own_row(rows: list[PreferenceRow], *, scope: str, category: str = "", event_type: str = "") -> PreferenceRow | None:
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


def preference_matrix(*, user: User, organization: Organization | None, project: Project | None = None) -> list[MatrixRow]:
    """Categories, each followed by its active event types, × the six channels, for events of
    `project` when one is given. Three queries."""
    rows = rows_for(user=user, organization=organization, project=project)
    types = list(EventType.objects.filter(is_active=True).order_by("category", "key"))
    out: list[MatrixRow] = []
    for category, label in EventCategory.choices:
        matching = matching_rows(rows, category, None)
        own = own_row(rows, scope=PreferenceScope.CATEGORY, category=category)
        out.append(MatrixRow(
            kind="category", key=category, label=str(label), category=category,
            cells=[_cell(matching, own, channel=ch, criticality=Criticality.MEDIUM, field_name=f"cat:{category}:{ch}")
                   for ch in CHANNELS],
        ))
        for et in (t for t in types if t.category == category):
            matching = matching_rows(rows, category, et.key)
            own = own_row(rows, scope=PreferenceScope.EVENT_TYPE, event_type=et.key)
            allowed = set(et.allowed_channels or CHANNELS)
            defaults = set(et.default_channels or [])
            out.append(MatrixRow(
                kind="type", key=et.key, label=et.name, category=category, description=et.description,
                cells=[_cell(matching, own, channel=ch, criticality=et.default_criticality, field_name=f"type:{et.key}:{ch}",
                             allowed=ch in allowed, default_channel=ch in defaults) for ch in CHANNELS],
            ))
    return out


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
