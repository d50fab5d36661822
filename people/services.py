"""Writes of the people app: what a person does to their own account, across the apps below.

The preference center's forms land here, and from here in the notification engine's own
services — `preferences_replace` (the service behind PUT /api/v1/preferences/), `quiet_hours_set`
and `quiet_hours_set_dnd` — so the page and the API write exactly the same rows.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime, time
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, Project, User
from accounts.services import user_signup
from common.exceptions import ValidationError
from invitations.services import invitations_record_received_for
from notifications.engine.preferences import preferences_replace
from notifications.engine.quiet_hours import quiet_hours_set, quiet_hours_set_dnd
from notifications.enums import (
    AuditActorType,
    Channel,
    Criticality,
    DigestFrequency,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import ChannelPreference, NotificationPreference

from .preferences import matching_rows, own_row, preference_matrix, rows_for

MatrixChoices = dict[tuple[str, str], dict[str, str]]  # {("cat"|"type", key): {channel: "" | "on" | "off"}}


@transaction.atomic(durable=True)
def person_signup(*, username: str, email: str, password: str, display_name: str = "", active: bool = True) -> User:
    """Create the account and its personal organization (`accounts.services.user_signup`) and
    bring in the invitations already received at that address, in one transaction."""
    user = user_signup(username=username, email=email, password=password, display_name=display_name, active=active)
    invitations_record_received_for(user=user)
    return user


def _replace_own(*, user: User, organization: Organization | None, items: list[dict[str, Any]]) -> None:
    preferences_replace(
        level=PreferenceLevel.USER, items=items, user_id=user.pk, actor_type=AuditActorType.USER,
        actor_id=str(user.pk), actor_label=user.get_username(),
        audit_organization_id=organization.pk if organization else None,
    )


@transaction.atomic(durable=True)
def person_preferences_matrix_save(
    *, user: User, organization: Organization | None, choices: MatrixChoices, project: Project | None = None
) -> int:
    """Write the person's own choices from the matrix; returns how many rows changed.

    Only cells whose value differs from the person's current choice are written, as USER rows
    for every organization (like PUT /api/v1/preferences/). A new row takes the gate the
    person has today, so setting one channel does not reopen a category an administrator
    turned off; choosing "on" does open it for them. Locked cells are refused.
    """
    matrix = {("cat" if r.kind == "category" else "type", r.key): r
              for r in preference_matrix(user=user, organization=organization, project=project)}
    rows = rows_for(user=user, organization=organization, project=project)
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    for (kind, key), channels in choices.items():
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
            own = own_row(rows, scope=scope, category=key)
            matching = matching_rows(rows, key, None)
        else:
            item["event_type"] = key
            own = own_row(rows, scope=scope, event_type=key)
            matching = matching_rows(rows, current.category, key)
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
    _replace_own(user=user, organization=organization, items=items)
    _drop_empty_own_rows(user=user)
    return len(items)


def _drop_empty_own_rows(*, user: User) -> None:
    # A row left with no channel setting and the default gate says nothing but "enabled": it
    # would silently reopen what an organization turned off. Inherit instead.
    NotificationPreference.objects.filter(
        level=PreferenceLevel.USER, user=user, organization__isnull=True, enabled=True, min_criticality=Criticality.LOW,
        scope__in=[PreferenceScope.CATEGORY, PreferenceScope.EVENT_TYPE],
    ).exclude(pk__in=ChannelPreference.objects.values("preference_id")).delete()


@transaction.atomic(durable=True)
def person_quiet_hours_save(
    *, user: User, organization: Organization | None, enabled: bool, days: list[int], start: time | None,
    end: time | None, default_action: str, allow_critical: bool, channel_rules: dict[str, str],
) -> None:
    """One quiet window on the chosen days (replacing the person's windows), in their time zone."""
    schedules = []
    if enabled:
        if not days:
            raise ValidationError({"days": ["Pick at least one day."]})
        schedules = [{"days_of_week": sorted(set(days)), "start": start.strftime("%H:%M") if start else "",
                      "end": end.strftime("%H:%M") if end else ""}]
    quiet_hours_set(
        user=user, organization_id=organization.pk if organization else None, timezone_name=user.timezone or "UTC",
        enabled=bool(schedules), default_action=default_action, allow_critical=allow_critical, schedules=schedules,
        channel_rules=[{"channel": channel, "action": action} for channel, action in channel_rules.items() if action],
    )


@transaction.atomic(durable=True)
def person_dnd_save(*, user: User, organization: Organization | None, until: datetime | None) -> None:
    """Do not disturb until `until` (a wall-clock time is read in the person's time zone); None ends it."""
    if until is not None:
        if until.tzinfo is None:
            until = until.replace(tzinfo=zoneinfo.ZoneInfo(user.timezone or "UTC"))
        if until <= timezone.now():
            raise ValidationError({"until": ["Pick a moment in the future."]})
    quiet_hours_set_dnd(user=user, organization_id=organization.pk if organization else None, until=until)


@transaction.atomic(durable=True)
def person_digest_save(*, user: User, organization: Organization | None, frequency: str, hour: int, day_of_week: int) -> None:
    """The email digest's cadence, on the person's own all-events row."""
    if frequency not in DigestFrequency.values:
        raise ValidationError({"frequency": [f"Choose one of {', '.join(DigestFrequency.values)}."]})
    if not (0 <= hour <= 23 and 0 <= day_of_week <= 6):
        raise ValidationError({"hour": ["An hour from 0 to 23 and a day from Monday to Sunday."]})
    _replace_own(user=user, organization=organization, items=[{"scope": PreferenceScope.ALL, "channels": {Channel.EMAIL: {
        "digest_frequency": frequency, "digest_hour": hour if frequency in ("DAILY", "WEEKLY") else None,
        "digest_day_of_week": day_of_week if frequency == "WEEKLY" else None,
    }}}])


@transaction.atomic(durable=True)
def person_phone_confirm(*, user: User, code: str) -> User:
    """Confirm the person's number with the code we texted to it; the invitations already sent
    to that number join their history."""
    from .phone import phone_code_check

    locked = User.objects.select_for_update().get(pk=user.pk)
    phone_code_check(user=locked, code=code)
    locked.phone_verified_at = timezone.now()
    locked.save(update_fields=["phone_verified_at"])
    invitations_record_received_for(user=locked)
    return locked
