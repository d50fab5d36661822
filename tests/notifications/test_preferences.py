"""Preference hierarchy (the matrix), min_criticality, and the preferences APIs."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.enums import (
    AuditAction,
    Channel,
    Criticality,
    EventCategory,
    PreferenceLevel,
    PreferenceScope,
)
from notifications.models import (
    ChannelPreference,
    Notification,
    NotificationAuditLog,
    NotificationPreference,
)
from notifications.services import event_emit
from tests.factories import OrganizationFactory, ProjectFactory, TeamFactory

from .intake_support import EVENT, intake_event_type, member, preference, user_pref

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def event_type(db):
    return intake_event_type()


def _email_decision(organization, user, *, team=None, project=None, criticality=None):
    result = event_emit(
        organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.EMAIL],
        team_id=team.pk if team else None, project_id=project.pk if project else None, criticality=criticality,
    )
    trace = Notification.objects.get(pk=result.notifications[0][0]).trace[Channel.EMAIL]
    step = next(s for s in trace["steps"] if s["check"] == "preference")
    return trace["used"], step.get("level", "DEFAULT"), step.get("preference_id"), step["reason"]


def test_preference_matrix_each_level_overrides_the_one_above(organization, user, event_type):
    team = TeamFactory(organization=organization)
    project = ProjectFactory(organization=organization, team=team)
    ctx = {"team": team, "project": project}
    assert _email_decision(organization, user, **ctx) == (True, "DEFAULT", None, "default")

    g = preference(level=PreferenceLevel.GLOBAL, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user, **ctx) == (False, "GLOBAL", g.pk, "channel_disabled")
    o = preference(level=PreferenceLevel.ORGANIZATION, organization=organization, channels={Channel.EMAIL: True})
    assert _email_decision(organization, user, **ctx) == (True, "ORGANIZATION", o.pk, "preference")
    t = preference(level=PreferenceLevel.TEAM, organization=organization, team=team, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user, **ctx) == (False, "TEAM", t.pk, "channel_disabled")
    p = preference(level=PreferenceLevel.PROJECT, organization=organization, project=project, channels={Channel.EMAIL: True})
    assert _email_decision(organization, user, **ctx) == (True, "PROJECT", p.pk, "preference")
    u = user_pref(user, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user, **ctx) == (False, "USER", u.pk, "channel_disabled")
    # A user's row for this organization beats the user's row for every organization.
    uo = user_pref(user, organization=organization, channels={Channel.EMAIL: True})
    assert _email_decision(organization, user, **ctx) == (True, "USER", uo.pk, "preference")

    # Team and project rows apply only in their context; without it the organization's row decides.
    uo.delete()
    u.delete()
    assert _email_decision(organization, user) == (True, "ORGANIZATION", o.pk, "preference")
    other_team = TeamFactory(organization=organization)
    assert _email_decision(organization, user, team=other_team) == (True, "ORGANIZATION", o.pk, "preference")
    # Another organization's rows never apply.
    preference(level=PreferenceLevel.ORGANIZATION, organization=OrganizationFactory(), channels={Channel.EMAIL: False},
               scope=PreferenceScope.EVENT_TYPE, event_type=EVENT)
    assert _email_decision(organization, user) == (True, "ORGANIZATION", o.pk, "preference")


def test_event_type_beats_category_beats_all(organization, user, event_type):
    all_events = user_pref(user, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user)[:3] == (False, "USER", all_events.pk)
    category = user_pref(user, scope=PreferenceScope.CATEGORY, category=EventCategory.PROJECT_MANAGEMENT, channels={Channel.EMAIL: True})
    assert _email_decision(organization, user)[:3] == (True, "USER", category.pk)
    user_pref(user, scope=PreferenceScope.CATEGORY, category=EventCategory.SECURITY, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user)[:3] == (True, "USER", category.pk)  # another category: ignored
    by_type = user_pref(user, scope=PreferenceScope.EVENT_TYPE, event_type=EVENT, channels={Channel.EMAIL: False})
    assert _email_decision(organization, user)[:3] == (False, "USER", by_type.pk)
    # Same scopes at the organization level lose to any user row.
    preference(level=PreferenceLevel.ORGANIZATION, organization=organization, scope=PreferenceScope.EVENT_TYPE,
               event_type=EVENT, channels={Channel.EMAIL: True})
    assert _email_decision(organization, user)[:3] == (False, "USER", by_type.pk)


def test_min_criticality_threshold(organization, user, event_type):
    row = user_pref(user, scope=PreferenceScope.EVENT_TYPE, event_type=EVENT, min_criticality=Criticality.HIGH)
    assert _email_decision(organization, user, criticality=Criticality.MEDIUM) == (False, "USER", row.pk, "below_min_criticality")
    assert _email_decision(organization, user, criticality=Criticality.HIGH) == (True, "USER", row.pk, "preference")
    assert _email_decision(organization, user, criticality=Criticality.CRITICAL)[0] is True


def test_disabled_row_turns_every_channel_off_and_a_more_specific_one_turns_it_back_on(organization, user, event_type):
    org_off = preference(level=PreferenceLevel.ORGANIZATION, organization=organization, enabled=False)
    assert _email_decision(organization, user) == (False, "ORGANIZATION", org_off.pk, "preference_disabled")
    mine = user_pref(user, enabled=True)
    assert _email_decision(organization, user) == (True, "USER", mine.pk, "preference")


# --- API ---------------------------------------------------------------------------------------


def test_get_preferences_shows_effective_settings_and_their_level(organization, user, auth_client, event_type):
    o = preference(level=PreferenceLevel.ORGANIZATION, organization=organization, channels={Channel.SMS: False})
    mine = user_pref(user, scope=PreferenceScope.EVENT_TYPE, event_type=EVENT, channels={Channel.EMAIL: False})
    response = auth_client.get("/api/v1/preferences/")
    assert response.status_code == 200
    body = response.json()
    entry = next(e for e in body["event_types"] if e["event_type"] == EVENT)
    assert entry["channels"]["EMAIL"] | {"digest_frequency": None} == {
        "enabled": False, "default": True, "level": "USER", "preference_id": mine.pk, "reason": "channel_disabled",
        "only_when_offline": False, "digest_frequency": None, "locked": False,
    }
    assert (entry["channels"]["SMS"]["enabled"], entry["channels"]["SMS"]["level"]) == (False, "ORGANIZATION")
    assert entry["channels"]["SMS"]["preference_id"] == o.pk
    # No row mentions IN_APP: the most specific matching row (the user's, enabled) lets it through.
    assert (entry["channels"]["IN_APP"]["enabled"], entry["channels"]["IN_APP"]["level"]) == (True, "USER")
    assert [p["id"] for p in body["preferences"]] == [mine.pk]
    assert entry["gate_level"] == "USER" and entry["gate_enabled"] is True
    # Per category: only rows for all events or the category count (the event-type row does not).
    pm = next(c for c in body["categories"] if c["category"] == "PROJECT_MANAGEMENT")
    assert (pm["channels"]["EMAIL"]["enabled"], pm["channels"]["EMAIL"]["level"]) == (True, "ORGANIZATION")
    assert (pm["channels"]["SMS"]["enabled"], pm["channels"]["SMS"]["preference_id"]) == (False, o.pk)


def test_put_preferences_upserts_the_users_own_rows_and_audits(organization, user, auth_client, event_type):
    body = {"preferences": [
        {"event_type": EVENT, "channels": {"EMAIL": {"enabled": False}, "PUSH": {"only_when_offline": True}}},
        {"scope": "CATEGORY", "category": "SECURITY", "min_criticality": "HIGH"},
    ]}
    response = auth_client.put("/api/v1/preferences/", body, format="json")
    assert response.status_code == 200, response.content
    rows = NotificationPreference.objects.filter(level=PreferenceLevel.USER, user=user)
    assert rows.count() == 2
    by_type = rows.get(scope=PreferenceScope.EVENT_TYPE)
    assert by_type.event_type == EVENT and by_type.organization_id is None
    assert dict(ChannelPreference.objects.filter(preference=by_type).values_list("channel", "enabled")) == {"EMAIL": False, "PUSH": True}
    assert rows.get(scope=PreferenceScope.CATEGORY).min_criticality == "HIGH"
    # A second PUT updates in place.
    again = auth_client.put("/api/v1/preferences/", [{"event_type": EVENT, "channels": [{"channel": "EMAIL", "enabled": True}]}], format="json")
    assert again.status_code == 200
    assert ChannelPreference.objects.get(preference=by_type, channel="EMAIL").enabled is True
    audits = NotificationAuditLog.objects.filter(action=AuditAction.PREFERENCE_CHANGED, user=user)
    assert audits.count() == 2 and audits.first().organization_id == organization.pk
    entry = next(e for e in again.json()["event_types"] if e["event_type"] == EVENT)
    assert entry["channels"]["EMAIL"]["enabled"] is True and entry["channels"]["EMAIL"]["level"] == "USER"


@pytest.mark.parametrize("item", [
    {"event_type": "no.such.type"},
    {"scope": "CATEGORY"},
    {"scope": "CATEGORY", "category": "GARDENING"},
    {"channels": {"PIGEON": {"enabled": True}}},
    {"channels": {"EMAIL": {"digest_frequency": "YEARLY"}}},
    {"min_criticality": "SEVERE"},
])
def test_invalid_preferences_are_400_and_nothing_changes(user, auth_client, event_type, item):
    response = auth_client.put("/api/v1/preferences/", {"preferences": [{"channels": {"SMS": False}}, item]}, format="json")
    assert response.status_code == 400
    assert not NotificationPreference.objects.exists()
    assert not NotificationAuditLog.objects.filter(action=AuditAction.PREFERENCE_CHANGED).exists()


def test_api_keys_have_no_personal_preferences(key_client):
    assert key_client.get("/api/v1/preferences/").status_code == 403


def test_admin_preferences_for_organization_team_and_project(organization, user, auth_client, other_user, event_type):
    team = TeamFactory(organization=organization)
    response = auth_client.put("/api/v1/admin/preferences/", {
        "level": "TEAM", "team_id": team.pk,
        "preferences": [{"scope": "CATEGORY", "category": "PROJECT_MANAGEMENT", "channels": {"SMS": False}}],
    }, format="json")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert (row["level"], row["team"], row["organization"], row["channels"]["SMS"]["enabled"]) == ("TEAM", team.pk, organization.pk, False)
    assert auth_client.put("/api/v1/admin/preferences/", {
        "level": "ORGANIZATION", "preferences": [{"channels": {"PUSH": False}}],
    }, format="json").status_code == 200
    listed = auth_client.get("/api/v1/admin/preferences/").json()["results"]
    assert {r["level"] for r in listed} == {"TEAM", "ORGANIZATION"}
    assert NotificationAuditLog.objects.filter(action=AuditAction.PREFERENCE_CHANGED, organization=organization).count() == 2

    foreign_team = TeamFactory(organization=other_user.memberships.get().organization)
    bad = auth_client.put("/api/v1/admin/preferences/", {"level": "TEAM", "team_id": foreign_team.pk, "preferences": []}, format="json")
    assert bad.status_code == 400
    plain = APIClient()
    plain.force_authenticate(member(organization, role=MembershipRole.MEMBER))
    assert plain.get("/api/v1/admin/preferences/").status_code == 403
    assert plain.put("/api/v1/admin/preferences/", {"level": "ORGANIZATION", "preferences": []}, format="json").status_code == 403
