"""Quiet hours and do-not-disturb, evaluated in the recipient's time zone.

A schedule is a window of local time on some days of the week (0 = Monday). A window whose
end is not after its start crosses midnight and belongs to the day it starts on: "Fri
22:00–07:00" is quiet from Friday 22:00 to Saturday 07:00. Manual DND (`dnd_until`) is quiet
until that instant whatever the schedule.

While quiet, each channel follows its rule (or the row's default): ALLOW, BLOCK (the
delivery is skipped) or HOLD (the delivery is held until the quiet period ends); a CRITICAL
notification passes when the rule allows critical.

A user's own row wins over the organization's default row (user NULL).
"""
from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.query import id_array
from common.exceptions import ValidationError
from notifications.enums import (
    AuditAction,
    AuditActorType,
    Channel,
    Criticality,
    QuietHoursAction,
)
from notifications.models import (
    NotificationAuditLog,
    QuietHours,
    QuietHoursChannelRule,
    QuietHoursSchedule,
)


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass
class QuietConfig:
    id: int
    owner: str  # "user" or "organization"
    timezone: str
    enabled: bool
    dnd_until: datetime | None
    default_action: str
    allow_critical: bool
    windows: list[Window] = field(default_factory=list)
    rules: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class QuietState:
    active: bool
    until: datetime | None = None
    config: QuietConfig | None = None
    cause: str = ""  # "dnd" or "schedule 22:00-07:00"

    def describe(self) -> dict[str, Any]:
        if self.config is None:
            return {"active": False}
        return {
            "active": self.active,
            "quiet_hours_id": self.config.id,
            "owner": self.config.owner,
            "timezone": self.config.timezone,
            "cause": self.cause,
            "until": self.until.isoformat() if self.until else None,
        }


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(day: date, at: time, zone: tzinfo | None) -> datetime:
    return datetime.combine(day, at).replace(tzinfo=zone)


def _window_end_if_active(window: Window, local: datetime) -> datetime | None:
    """When `window` ends if it contains `local`, else None (aware, in local's zone)."""
    zone = local.tzinfo
    now_t = local.time().replace(tzinfo=None)
    today = local.date()
    weekday = local.weekday()
    if not window.crosses_midnight:
        if weekday in window.days and window.start <= now_t < window.end:
            return _local(today, window.end, zone)
        return None
    if weekday in window.days and now_t >= window.start:
        return _local(today + timedelta(days=1), window.end, zone)
    if (weekday - 1) % 7 in window.days and now_t < window.end:
        return _local(today, window.end, zone)
    return None


def quiet_state_at(config: QuietConfig | None, *, now: datetime, timezone_name: str | None = None) -> QuietState:
    """Whether `config` is quiet at `now` and until when (following back-to-back windows)."""
    if config is None or not config.enabled:
        return QuietState(active=False, config=config)
    zone = _zone(timezone_name or config.timezone)
    until: datetime | None = None
    cause = ""
    probe = now
    if config.dnd_until and config.dnd_until > now:
        until, cause, probe = config.dnd_until, "dnd", config.dnd_until
    # Windows may chain (22:00-00:00 then 00:00-07:00, or DND running into a window):
    # follow them from the end of each, two weeks at most.
    for _ in range(14):
        local = probe.astimezone(zone)
        ends = [(end, w) for w in config.windows if (end := _window_end_if_active(w, local)) is not None]
        if not ends:
            break
        end, window = max(ends, key=lambda pair: pair[0])
        end_utc = end.astimezone(UTC)
        if end_utc <= probe:
            break
        cause = cause or f"schedule {window.label()}"
        until = end_utc if until is None or end_utc > until else until
        probe = end_utc
    return QuietState(active=until is not None, until=until, config=config, cause=cause)


def quiet_channel_action(state: QuietState, *, channel: str, criticality: str, bypass: bool = False) -> tuple[str, str]:
    """(ALLOW|BLOCK|HOLD, reason) for one channel while `state` applies."""
    if not state.active or state.config is None:
        return QuietHoursAction.ALLOW, "not_quiet"
    if bypass:
        return QuietHoursAction.ALLOW, "criticality_routing_bypass"
    action, allow_critical = state.config.rules.get(channel, (state.config.default_action, state.config.allow_critical))
    if criticality == Criticality.CRITICAL and allow_critical:
        return QuietHoursAction.ALLOW, "critical_allowed"
    if action == QuietHoursAction.ALLOW:
        return QuietHoursAction.ALLOW, "channel_allowed"
    return action, "quiet_hours_block" if action == QuietHoursAction.BLOCK else "quiet_hours_hold"


def quiet_config_from_row(qh: QuietHours) -> QuietConfig:
    return QuietConfig(
        id=qh.pk,
        owner="user" if qh.user_id else "organization",
        timezone=qh.timezone,
        enabled=qh.enabled,
        dnd_until=qh.dnd_until,
        default_action=qh.default_action,
        allow_critical=qh.allow_critical,
        windows=[Window(frozenset(s.days_of_week or []), s.start_time, s.end_time) for s in qh.schedules.all()],
        rules={r.channel: (r.action, r.allow_critical) for r in qh.channel_rules.all()},
    )


@dataclass
class QuietHoursSet:
    by_user: dict[int, QuietConfig]
    organization_default: QuietConfig | None

    def for_user(self, user_id: int | None) -> QuietConfig | None:
        if user_id is None:
            return None
        return self.by_user.get(user_id) or self.organization_default


def quiet_hours_load(*, organization_id: int, user_ids: Iterable[int]) -> QuietHoursSet:
    """The users' rows and the organization's default: three queries for any number of users."""
    user_ids = list(user_ids)
    rows = QuietHours.objects.filter(
        Q(user_id__any=id_array(user_ids)) | Q(user__isnull=True, organization_id=organization_id)
    ).prefetch_related("schedules", "channel_rules") if user_ids else []
    by_user: dict[int, QuietConfig] = {}
    default = None
    for qh in rows:
        if qh.user_id:
            by_user[qh.user_id] = quiet_config_from_row(qh)
        else:
            default = quiet_config_from_row(qh)
    return QuietHoursSet(by_user=by_user, organization_default=default)


# --- the user's own quiet hours (API services) ----------------------------------------------


def _parse_time(value: Any, *, field_name: str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValidationError({field_name: [f"Expected HH:MM, got {value!r}."]})


def quiet_hours_get_for_user(*, user) -> QuietHours | None:
    return QuietHours.objects.filter(user=user).prefetch_related("schedules", "channel_rules").first()


@transaction.atomic
def quiet_hours_set(
    *,
    user,
    organization_id: int | None,
    timezone_name: str | None = None,
    enabled: bool = True,
    default_action: str = QuietHoursAction.HOLD,
    allow_critical: bool = True,
    schedules: list[dict[str, Any]] | None = None,
    channel_rules: list[dict[str, Any]] | None = None,
) -> QuietHours:
    """Replace the user's quiet hours (schedules and channel rules included)."""
    tz_name = timezone_name or getattr(user, "timezone", "") or "UTC"
    try:
        zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": [f"Unknown time zone: {tz_name}."]})
    schedule_rows: list[QuietHoursSchedule] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(schedules or []):
        try:
            start = _parse_time(item.get("start"), field_name="start")
            end = _parse_time(item.get("end"), field_name="end")
        except ValidationError as exc:
            errors[str(index)] = exc.detail
            continue
        days = item.get("days_of_week", list(range(7)))
        if not isinstance(days, list) or not days or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
            errors[str(index)] = {"days_of_week": ["Days are integers from 0 (Monday) to 6 (Sunday)."]}
            continue
        if start == end:
            errors[str(index)] = {"end": ["A window cannot start and end at the same time."]}
            continue
        schedule_rows.append(QuietHoursSchedule(days_of_week=sorted(set(days)), start_time=start, end_time=end))
    if errors:
        raise ValidationError({"schedules": errors})
    rule_rows: list[QuietHoursChannelRule] = []
    seen: set[str] = set()
    for index, item in enumerate(channel_rules or []):
        channel, action = item.get("channel"), item.get("action", QuietHoursAction.HOLD)
        if channel not in Channel.values or action not in QuietHoursAction.values or channel in seen:
            errors[str(index)] = [f"Expected a distinct channel of {Channel.values} and an action of {QuietHoursAction.values}."]
            continue
        seen.add(channel)
        rule_rows.append(QuietHoursChannelRule(channel=channel, action=action, allow_critical=bool(item.get("allow_critical", True))))
    if errors:
        raise ValidationError({"channel_rules": errors})
    qh, _ = QuietHours.objects.select_for_update().get_or_create(user=user, defaults={"organization_id": organization_id})
    qh.timezone = tz_name
    qh.enabled = enabled
    qh.default_action = default_action
    qh.allow_critical = allow_critical
    qh.save()
    qh.schedules.all().delete()
    qh.channel_rules.all().delete()
    for row in schedule_rows:
        row.quiet_hours = qh
    for rule in rule_rows:
        rule.quiet_hours = qh
    QuietHoursSchedule.objects.bulk_create(schedule_rows)
    QuietHoursChannelRule.objects.bulk_create(rule_rows)
    NotificationAuditLog.objects.create(
        organization_id=organization_id,
        action=AuditAction.QUIET_HOURS_CHANGED,
        actor_type=AuditActorType.USER,
        actor_id=str(user.pk),
        actor_label=user.get_username(),
        user=user,
        details={
            "timezone": tz_name, "enabled": enabled, "default_action": default_action,
            "schedules": [{"days_of_week": r.days_of_week, "start": r.start_time.isoformat("minutes"), "end": r.end_time.isoformat("minutes")} for r in schedule_rows],
            "channel_rules": [{"channel": r.channel, "action": r.action, "allow_critical": r.allow_critical} for r in rule_rows],
        },
    )
    return quiet_hours_get_for_user(user=user)  # type: ignore[return-value]


@transaction.atomic
def quiet_hours_set_dnd(*, user, organization_id: int | None, until: datetime | None) -> QuietHours:
    """Manual do-not-disturb until `until` (None or a past time ends it)."""
    now = timezone.now()
    if until is not None and until > now + timedelta(days=366):
        raise ValidationError({"until": ["At most one year ahead."]})
    qh, _ = QuietHours.objects.select_for_update().get_or_create(
        user=user, defaults={"organization_id": organization_id, "timezone": getattr(user, "timezone", "") or "UTC"}
    )
    qh.dnd_until = until if until and until > now else None
    qh.save(update_fields=["dnd_until", "updated_at"])
    NotificationAuditLog.objects.create(
        organization_id=organization_id,
        action=AuditAction.QUIET_HOURS_CHANGED,
        actor_type=AuditActorType.USER,
        actor_id=str(user.pk),
        actor_label=user.get_username(),
        user=user,
        details={"dnd_until": qh.dnd_until.isoformat() if qh.dnd_until else None},
    )
    return quiet_hours_get_for_user(user=user)  # type: ignore[return-value]
