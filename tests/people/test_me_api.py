"""GET|PATCH /api/v1/me/: the signed-in person only, validated field by field, all or nothing."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications.engine.quiet_hours import quiet_hours_set

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_get_answers_the_callers_own_profile(auth_client, user, other_user):
    body = auth_client.get("/api/v1/me/").json()
    assert body == {"id": user.pk, "username": user.username, "email": user.email, "display_name": user.display_name,
                    "phone": "", "locale": "en", "timezone": "UTC"}
    assert other_user.username not in str(body)


def test_patch_normalizes_and_saves_and_moves_quiet_hours_along(auth_client, user):
    quiet_hours_set(user=user, organization_id=None, schedules=[{"start": "22:00", "end": "07:00"}])

    response = auth_client.patch("/api/v1/me/", {"display_name": " Ada ", "phone": "+1 415 555 0100",
                                                 "locale": "fr", "timezone": "Europe/Paris"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+14155550100" and response.json()["display_name"] == "Ada"
    user.refresh_from_db()
    assert (user.phone, user.locale, user.timezone) == ("+14155550100", "fr", "Europe/Paris")
    assert user.quiet_hours.get().timezone == "Europe/Paris"
    assert auth_client.patch("/api/v1/me/", {"phone": ""}, format="json").json()["phone"] == ""


@pytest.mark.parametrize(
    "body, field",
    [
        ({"phone": "4155550100"}, "phone"),
        ({"phone": "+1 555"}, "phone"),
        ({"locale": "de"}, "locale"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"display_name": "x" * 151}, "display_name"),
        ({"display_name": 42}, "display_name"),
        ({"email": "new@example.com"}, "non_field_errors"),
        ({"username": "root"}, "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(auth_client, user, body, field):
    before = auth_client.get("/api/v1/me/").json()
    response = auth_client.patch("/api/v1/me/", {"display_name": "Changed", **body} if field != "display_name" else body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert auth_client.get("/api/v1/me/").json() == before  # nothing half-saved (not even the valid display name)


def test_every_bad_field_is_reported_at_once(auth_client):
    response = auth_client.patch("/api/v1/me/", {"phone": "nope", "locale": "xx", "timezone": "Nowhere"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"phone", "locale", "timezone"}


def test_non_object_bodies_and_anonymous_and_api_keys_are_refused(auth_client, key_client):
    assert auth_client.patch("/api/v1/me/", [1, 2], format="json").status_code == 400
    assert APIClient().get("/api/v1/me/").status_code in (401, 403)
    assert key_client.get("/api/v1/me/").status_code == 403
    assert key_client.patch("/api/v1/me/", {"display_name": "bot"}, format="json").status_code == 403
