"""Quiet hours in the recipient's time zone, DND, per-channel rules, and the quiet-hours APIs."""
from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.engine.quiet_hours import QuietConfig, Window, quiet_state_at
from notifications.enums import (
    AuditAction,
    Channel,
    Criticality,
    DeliveryStatus,
    NotificationStatus,
    QuietHoursAction,
)
from notifications.models import (
    CriticalityRouting,
    Notification,
    NotificationAuditLog,
    QuietHours,
    QuietHoursChannelRule,
    QuietHoursSchedule,
)
from notifications.services import event_emit

from .intake_support import EVENT, channel_config, intake_event_type, member, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NY = zoneinfo.ZoneInfo("America/New_York")
FRIDAY = 4


@pytest.fixture
def event_type(db):
    return intake_event_type()


def _ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def _quiet_user(organization, *, rules=None, **fields):
    recipient = member(organization, phone="+14155550123", timezone="America/New_York")
    qh = QuietHours.objects.create(user=recipient, organization=organization, timezone="America/New_York", **fields)
    QuietHoursSchedule.objects.create(quiet_hours=qh, days_of_week=[FRIDAY], start_time=time(22, 0), end_time=time(7, 0))
    for channel, action, allow_critical in rules or []:
        QuietHoursChannelRule.objects.create(quiet_hours=qh, channel=channel, action=action, allow_critical=allow_critical)
    return recipient


def _emit(organization, recipient, **kwargs) -> Notification:
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[recipient.pk], **kwargs)
    return Notification.objects.prefetch_related("deliveries").get(pk=result.notifications[0][0])


@pytest.mark.parametrize("moment, quiet", [
    (_ny(2026, 11, 20, 21, 59), False),   # Friday, just before
    (_ny(2026, 11, 20, 23, 30), True),    # Friday night
    (_ny(2026, 11, 21, 6, 30), True),     # Saturday morning: still Friday's window
    (_ny(2026, 11, 21, 7, 0), False),     # the window has ended
    (_ny(2026, 11, 21, 23, 30), False),   # Saturday night: not a quiet day
    (_ny(2026, 11, 19, 23, 30), False),   # Thursday night
])
def test_window_across_midnight_in_the_users_time_zone(organization, event_type, moment, quiet):
    recipient = _quiet_user(organization)
    with time_machine.travel(moment, tick=False):
        n = _emit(organization, recipient, channels=[Channel.EMAIL])
    email = n.deliveries.get(channel=Channel.EMAIL)
    if quiet:
        assert email.status == DeliveryStatus.HELD and n.status == NotificationStatus.HELD
        # Held until 07:00 New York time on Saturday, whatever the server's zone.
        assert email.next_retry_at == _ny(2026, 11, 21, 7, 0)
        assert n.trace[Channel.EMAIL]["reason"] == "quiet_hours_hold"
        assert n.trace["routing"]["quiet_hours"]["cause"] == "schedule 22:00-07:00"
        assert NotificationAuditLog.objects.filter(notification=n, action=AuditAction.NOTIFICATION_HELD).exists()
    else:
        assert email.status == DeliveryStatus.PENDING and n.status == NotificationStatus.PENDING


def test_channel_rules_block_hold_allow_and_critical(organization, event_type):
    recipient = _quiet_user(organization, rules=[
        (Channel.SMS, QuietHoursAction.BLOCK, False),
        (Channel.IN_APP, QuietHoursAction.ALLOW, True),
        (Channel.EMAIL, QuietHoursAction.HOLD, True),
    ])
    channels = [Channel.IN_APP, Channel.EMAIL, Channel.SMS]
    with time_machine.travel(_ny(2026, 11, 20, 23, 30), tick=False):
        n = _emit(organization, recipient, channels=channels)
        critical = _emit(organization, recipient, channels=channels, criticality=Criticality.CRITICAL)
    assert statuses(n) == {Channel.IN_APP: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.HELD, Channel.SMS: DeliveryStatus.SKIPPED}
    # In-app went out at intake (the inbox row is the send); email waits for the window's end.
    assert n.status == NotificationStatus.PARTIALLY_DELIVERED
    assert n.trace[Channel.SMS]["reason"] == "quiet_hours_block"
    # CRITICAL passes where the rule allows critical (EMAIL), not where it doesn't (SMS).
    assert statuses(critical) == {Channel.IN_APP: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.PENDING, Channel.SMS: DeliveryStatus.SKIPPED}
    step = next(s for s in critical.trace[Channel.EMAIL]["steps"] if s["check"] == "quiet_hours")
    assert step["reason"] == "critical_allowed"


def test_criticality_routing_can_bypass_quiet_hours(organization, event_type):
    recipient = _quiet_user(organization, allow_critical=False)
    config = channel_config(organization, Channel.SMS)
    CriticalityRouting.objects.create(configuration=config, criticality=Criticality.HIGH, bypass_quiet_hours=True)
    with time_machine.travel(_ny(2026, 11, 20, 23, 30), tick=False):
        high = _emit(organization, recipient, channels=[Channel.SMS, Channel.EMAIL], criticality=Criticality.HIGH)
    assert statuses(high) == {Channel.SMS: DeliveryStatus.PENDING, Channel.EMAIL: DeliveryStatus.HELD}


def test_manual_dnd_holds_until_its_end_and_chains_into_a_window(organization, event_type):
    recipient = _quiet_user(organization)
    with time_machine.travel(_ny(2026, 11, 20, 20, 0), tick=False):
        QuietHours.objects.filter(user=recipient).update(dnd_until=_ny(2026, 11, 20, 21, 0))
        n = _emit(organization, recipient, channels=[Channel.EMAIL])
        assert n.deliveries.get().next_retry_at == _ny(2026, 11, 20, 21, 0)
        assert n.trace["routing"]["quiet_hours"]["cause"] == "dnd"
        # DND running into the night window: quiet until the window ends.
        QuietHours.objects.filter(user=recipient).update(dnd_until=_ny(2026, 11, 20, 23, 0))
        n = _emit(organization, recipient, channels=[Channel.EMAIL])
        assert n.deliveries.get().next_retry_at == _ny(2026, 11, 21, 7, 0)


def test_organization_default_applies_in_each_users_time_zone(organization, event_type):
    qh = QuietHours.objects.create(organization=organization, user=None, default_action=QuietHoursAction.BLOCK)
    QuietHoursSchedule.objects.create(quiet_hours=qh, days_of_week=list(range(7)), start_time=time(22, 0), end_time=time(7, 0))
    paris = member(organization, timezone="Europe/Paris")
    tokyo = member(organization, timezone="Asia/Tokyo")
    # 22:30 UTC = 23:30 in Paris (quiet), 07:30 next day in Tokyo (not quiet).
    with time_machine.travel(datetime(2026, 11, 20, 22, 30, tzinfo=zoneinfo.ZoneInfo("UTC")), tick=False):
        in_paris = _emit(organization, paris, channels=[Channel.EMAIL])
        in_tokyo = _emit(organization, tokyo, channels=[Channel.EMAIL])
    assert statuses(in_paris) == {Channel.EMAIL: DeliveryStatus.SKIPPED}
    assert statuses(in_tokyo) == {Channel.EMAIL: DeliveryStatus.PENDING}


def test_quiet_state_handles_daylight_saving_and_chained_windows():
    config = QuietConfig(
        id=1, owner="user", timezone="Europe/Paris", enabled=True, dnd_until=None,
        default_action=QuietHoursAction.HOLD, allow_critical=True,
        windows=[Window(frozenset({5}), time(22, 0), time(0, 0)), Window(frozenset({6}), time(0, 0), time(9, 0))],
    )
    # Saturday 25 Oct 2026 23:00 Paris; the clocks go back that night (CEST → CET).
    state = quiet_state_at(config, now=datetime(2026, 10, 24, 21, 0, tzinfo=zoneinfo.ZoneInfo("UTC")))
    assert state.active
    assert state.until == datetime(2026, 10, 25, 9, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert state.until.astimezone(zoneinfo.ZoneInfo("UTC")).hour == 8  # CET is UTC+1 after the change


# --- API ----------------------------------------------------------------------------------------


def test_put_and_get_quiet_hours(organization, user, auth_client):
    body = {
        "timezone": "Europe/Paris", "default_action": "HOLD",
        "schedules": [{"days_of_week": [0, 1, 2, 3, 4], "start": "22:00", "end": "07:00"}],
        "channel_rules": [{"channel": "SMS", "action": "BLOCK", "allow_critical": False}],
    }
    response = auth_client.put("/api/v1/quiet-hours/", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["timezone"] == "Europe/Paris"
    assert data["schedules"][0] | {"id": None} == {"id": None, "days_of_week": [0, 1, 2, 3, 4], "start": "22:00", "end": "07:00"}
    assert data["channel_rules"] == [{"channel": "SMS", "action": "BLOCK", "allow_critical": False}]
    assert auth_client.get("/api/v1/quiet-hours/").json()["schedules"] == data["schedules"]
    # Replacing keeps one row per user.
    assert auth_client.put("/api/v1/quiet-hours/", {**body, "schedules": []}, format="json").status_code == 200
    assert QuietHours.objects.filter(user=user).count() == 1 and not QuietHoursSchedule.objects.exists()
    assert NotificationAuditLog.objects.filter(action=AuditAction.QUIET_HOURS_CHANGED, user=user).count() == 2


@pytest.mark.parametrize("body", [
    {"timezone": "Mars/Olympus"},
    {"schedules": [{"start": "22:00", "end": "22:00"}]},
    {"schedules": [{"days_of_week": [7], "start": "22:00", "end": "07:00"}]},
    {"schedules": [{"start": "25:00", "end": "07:00"}]},
    {"channel_rules": [{"channel": "PIGEON", "action": "BLOCK"}]},
    {"channel_rules": [{"channel": "SMS", "action": "BLOCK"}, {"channel": "SMS", "action": "HOLD"}]},
])
def test_invalid_quiet_hours_are_400(user, auth_client, body):
    response = auth_client.put("/api/v1/quiet-hours/", body, format="json")
    assert response.status_code == 400
    assert not QuietHours.objects.exists()


def test_dnd_api_sets_and_clears(organization, user, auth_client, event_type):
    until = timezone.now() + timedelta(hours=2)
    response = auth_client.post("/api/v1/quiet-hours/dnd/", {"until": until.isoformat()}, format="json")
    assert response.status_code == 200 and response.json()["active_now"] is True
    n = _emit(organization, user, channels=[Channel.EMAIL])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.HELD}
    assert auth_client.post("/api/v1/quiet-hours/dnd/", {"until": None}, format="json").json()["dnd_until"] is None
    n = _emit(organization, user, channels=[Channel.EMAIL])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.PENDING}
    assert auth_client.post("/api/v1/quiet-hours/dnd/", {"until": "soon"}, format="json").status_code == 400
