"""The preference center: effective values and their sources, writes through preferences_replace, and their effect on routing."""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from accounts.models import Project, Team
from notifications.enums import Channel, DeliveryStatus, PreferenceLevel, PreferenceScope
from notifications.models import ChannelPreference, NotificationDelivery, NotificationPreference, QuietHours
from notifications.services import event_emit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _org_row(organization, *, category="COLLABORATION", channel="EMAIL", enabled=False, locked=False, level="ORGANIZATION",
             team=None, project=None):
    pref = NotificationPreference.objects.create(
        level=level, organization=organization, team=team, project=project, scope=PreferenceScope.CATEGORY, category=category,
        locked=locked,
    )
    ChannelPreference.objects.create(preference=pref, channel=channel, enabled=enabled)
    return pref


def _cell(html: str, name: str) -> dict:
    match = re.search(rf'data-cell="{re.escape(name)}" data-enabled="(\w+)" data-source="(\w*)"', html)
    assert match, name
    return {"enabled": match.group(1), "source": match.group(2)}


def _accepted(organization, user, **context):
    return event_emit(organization=organization, type="story.invitation_accepted", recipient_ids=[user.pk],
                      data={"inviteeName": "Bea", "storyTitle": "The Lighthouse"}, **context)


def _channels_sent(result) -> set[str]:
    ids = [n[0] for n in result.notifications]
    return set(NotificationDelivery.objects.filter(notification_id__in=ids).exclude(
        status__in=[DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED]).values_list("channel", flat=True))


def test_cells_show_the_effective_value_and_where_it_comes_from(client, user, organization):
    _org_row(organization, category="COLLABORATION", channel="EMAIL", enabled=False)
    team = Team.objects.create(organization=organization, name="Night shift")
    user.memberships.get().teams.add(team)
    _org_row(organization, category="INCIDENTS", channel="SMS", enabled=True, level="TEAM", team=team)
    _org_row(organization, category="SECURITY", channel="EMAIL", enabled=True, locked=True)
    client.force_login(user)

    html = client.get("/me/preferences/").content.decode()

    assert _cell(html, "cat:COLLABORATION:EMAIL") == {"enabled": "off", "source": "organization"}
    assert _cell(html, "cat:INCIDENTS:SMS") == {"enabled": "on", "source": "team"}
    assert _cell(html, "cat:SECURITY:EMAIL") == {"enabled": "on", "source": "locked"}
    assert 'name="cat:SECURITY:EMAIL"' not in html  # a locked cell is not a control
    assert _cell(html, "cat:BILLING:PUSH") == {"enabled": "on", "source": "default"}
    assert _cell(html, "type:story.invitation_accepted:IN_APP") == {"enabled": "on", "source": "organization"}  # its category row
    assert _cell(html, "type:task.assigned:EMAIL") == {"enabled": "on", "source": "default"}


def test_project_rows_are_a_source_of_the_cells_shown_for_that_project(client, user, organization, other_user):
    apollo = Project.objects.create(organization=organization, name="Apollo")
    Project.objects.create(organization=organization, name="Zephyr")
    _org_row(organization, category="COLLABORATION", channel="EMAIL", enabled=False, level="PROJECT", project=apollo)
    _org_row(organization, category="SECURITY", channel="SMS", enabled=True, locked=True, level="PROJECT", project=apollo)
    client.force_login(user)

    plain = client.get("/me/preferences/").content.decode()
    assert 'id="project-select"' in plain and ">Apollo</option>" in plain and ">Zephyr</option>" in plain
    assert _cell(plain, "cat:COLLABORATION:EMAIL") == {"enabled": "on", "source": "default"}  # not an Apollo event
    html = client.get(f"/me/preferences/?project={apollo.pk}").content.decode()
    assert _cell(html, "cat:COLLABORATION:EMAIL") == {"enabled": "off", "source": "project"}
    assert ">project</span>" in html
    assert _cell(html, "cat:SECURITY:SMS") == {"enabled": "on", "source": "locked"}
    assert 'name="cat:SECURITY:SMS"' not in html
    # what the page says is what routing does to an Apollo event
    assert _channels_sent(_accepted(organization, user, project_id=apollo.pk)) == {Channel.IN_APP}
    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP, Channel.EMAIL}

    # the person's own choice beats an unlocked project row, and is saved for every project
    response = client.post(f"/me/preferences/?project={apollo.pk}", {"section": "matrix", "cat:COLLABORATION:EMAIL": "on"})
    assert response.status_code == 302 and response["Location"] == f"/me/preferences/?project={apollo.pk}#matrix"
    html = client.get(f"/me/preferences/?project={apollo.pk}").content.decode()
    assert _cell(html, "cat:COLLABORATION:EMAIL") == {"enabled": "on", "source": "user"}
    assert _channels_sent(_accepted(organization, user, project_id=apollo.pk)) == {Channel.IN_APP, Channel.EMAIL}
    # a locked project cell is refused
    refused = client.post(f"/me/preferences/?project={apollo.pk}", {"section": "matrix", "cat:SECURITY:SMS": "off"})
    assert refused.status_code == 400 and "locked by your organization" in refused.content.decode()

    # another organization's project is not reachable, nor listed
    theirs = Project.objects.create(organization=other_user.memberships.get().organization, name="Theirs")
    assert client.get(f"/me/preferences/?project={theirs.pk}").status_code == 404
    assert ">Theirs</option>" not in client.get("/me/preferences/").content.decode()


def test_the_page_and_put_api_v1_preferences_write_the_same_row(client, user):
    client.force_login(user)
    client.post("/me/preferences/", {"section": "matrix", "type:task.assigned:SMS": "on"})
    from_page = NotificationPreference.objects.get(level=PreferenceLevel.USER, user=user)
    page_row = (from_page.scope, from_page.event_type, from_page.organization_id,
                list(from_page.channel_preferences.values_list("channel", "enabled")))
    NotificationPreference.objects.filter(user=user).delete()

    response = client.put("/api/v1/preferences/", {"preferences": [
        {"scope": "EVENT_TYPE", "event_type": "task.assigned", "channels": {"SMS": {"enabled": True}}},
    ]}, content_type="application/json")
    assert response.status_code == 200, response.content
    from_api = NotificationPreference.objects.get(level=PreferenceLevel.USER, user=user)
    assert (from_api.scope, from_api.event_type, from_api.organization_id,
            list(from_api.channel_preferences.values_list("channel", "enabled"))) == page_row


def test_a_cell_change_writes_the_users_level_and_the_next_delivery_follows_it(client, user, organization):
    client.force_login(user)
    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP, Channel.EMAIL}

    response = client.post("/me/preferences/", {"section": "matrix", "type:story.invitation_accepted:EMAIL": "off"})

    assert response.status_code == 302
    row = NotificationPreference.objects.get(level=PreferenceLevel.USER, user=user)
    assert (row.scope, row.event_type, row.organization_id) == ("EVENT_TYPE", "story.invitation_accepted", None)
    assert not row.channel_preferences.get(channel="EMAIL").enabled
    html = client.get("/me/preferences/").content.decode()
    assert _cell(html, "type:story.invitation_accepted:EMAIL") == {"enabled": "off", "source": "user"}
    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP}
    # the same row the API reads
    api = client.get("/api/v1/preferences/").json()
    accepted = next(t for t in api["event_types"] if t["event_type"] == "story.invitation_accepted")
    assert accepted["channels"]["EMAIL"]["enabled"] is False and accepted["channels"]["EMAIL"]["level"] == "USER"

    # back to "inherit": the row goes away, the organization decides again
    client.post("/me/preferences/", {"section": "matrix", "type:story.invitation_accepted:EMAIL": ""})
    assert not NotificationPreference.objects.filter(level=PreferenceLevel.USER, user=user).exists()
    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP, Channel.EMAIL}


def test_a_locked_organization_row_beats_the_users_own_and_cannot_be_changed_here(client, user, organization):
    client.force_login(user)
    client.post("/me/preferences/", {"section": "matrix", "cat:COLLABORATION:EMAIL": "off"})
    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP}
    _org_row(organization, category="COLLABORATION", channel="EMAIL", enabled=True, locked=True)

    assert _channels_sent(_accepted(organization, user)) == {Channel.IN_APP, Channel.EMAIL}
    refused = client.post("/me/preferences/", {"section": "matrix", "cat:COLLABORATION:EMAIL": "on"})
    assert refused.status_code == 400 and "locked by your organization" in refused.content.decode()


def test_one_click_off_does_not_reopen_a_category_the_organization_turned_off(client, user, organization):
    pref = NotificationPreference.objects.create(level="ORGANIZATION", organization=organization, scope="CATEGORY",
                                                 category="COLLABORATION", enabled=False)
    client.force_login(user)
    client.post("/me/preferences/", {"section": "matrix", "cat:COLLABORATION:SMS": "off"})

    own = NotificationPreference.objects.get(level="USER", user=user)
    assert own.enabled is False  # took the gate the person had
    assert _channels_sent(_accepted(organization, user)) == set()
    assert pref.pk


def test_bad_cells_are_refused_and_nothing_is_saved(client, user):
    client.force_login(user)
    for data in ({"cat:NOPE:EMAIL": "off"}, {"cat:COLLABORATION:FAX": "off"}, {"cat:COLLABORATION:EMAIL": "maybe"},
                 {"type:story.invitation:VOICE": "on"}, {"type:no.such:EMAIL": "on"}):
        response = client.post("/me/preferences/", {"section": "matrix", **data})
        assert response.status_code == 400, data
    assert not NotificationPreference.objects.filter(user=user).exists()


def test_quiet_hours_dnd_and_digest_forms(client, user):
    user.timezone = "Europe/Paris"
    user.save()
    client.force_login(user)

    r = client.post("/me/preferences/", {"section": "quiet_hours", "enabled": "on", "days": ["0", "4"], "start": "22:30",
                                         "end": "06:45", "default_action": "HOLD", "rule:SMS": "BLOCK", "allow_critical": "on"})
    assert r.status_code == 302
    qh = QuietHours.objects.get(user=user)
    assert qh.timezone == "Europe/Paris" and qh.enabled
    schedule = qh.schedules.get()
    assert schedule.days_of_week == [0, 4] and schedule.start_time.strftime("%H:%M") == "22:30"
    assert qh.channel_rules.get().channel == "SMS"
    bad = client.post("/me/preferences/", {"section": "quiet_hours", "enabled": "on", "days": ["0"], "start": "22:00", "end": "22:00"})
    assert bad.status_code == 400
    assert QuietHours.objects.get(user=user).schedules.get().start_time.strftime("%H:%M") == "22:30"  # unchanged

    day = (timezone.now() + timedelta(days=3)).date()
    assert client.post("/me/preferences/", {"section": "dnd", "until": f"{day.isoformat()}T09:00"}).status_code == 302
    qh.refresh_from_db()
    assert qh.dnd_until == datetime.combine(day, time(9, 0), tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert client.post("/me/preferences/", {"section": "dnd", "until": "2000-01-01T09:00"}).status_code == 400
    assert client.post("/me/preferences/", {"section": "dnd", "action": "clear"}).status_code == 302
    qh.refresh_from_db()
    assert qh.dnd_until is None

    assert client.post("/me/preferences/", {"section": "digest", "frequency": "WEEKLY", "hour": "7", "day_of_week": "5"}).status_code == 302
    cp = ChannelPreference.objects.get(preference__user=user, channel="EMAIL")
    assert (cp.digest_frequency, cp.digest_hour, cp.digest_day_of_week) == ("WEEKLY", 7, 5)
    assert client.post("/me/preferences/", {"section": "digest", "frequency": "YEARLY", "hour": "7"}).status_code == 400
    assert client.post("/me/preferences/", {"section": "digest", "frequency": "DAILY", "hour": "24"}).status_code == 400
    for bad in ({"days": ["9"]}, {"days": ["0"], "start": "late"}, {"days": []}):
        response = client.post("/me/preferences/", {"section": "quiet_hours", "enabled": "on", "start": "22:00", "end": "07:00", **bad})
        assert response.status_code == 400, bad
    assert client.post("/me/preferences/", {"section": "dnd", "until": "soon"}).status_code == 400
    assert client.post("/me/preferences/", {"section": "nope"}).status_code == 400


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/me/preferences/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
