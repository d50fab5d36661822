"""Malformed requests found by fuzzing the API against its OpenAPI schema: each answers 4xx, never 500."""
from __future__ import annotations

import pytest

from notifications.models import ChannelConfiguration, NotificationPreference

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.parametrize("channels", ["", 7, [{"enabled": False}], ["EMAIL"]])
def test_preferences_put_with_malformed_channels_is_a_field_error(auth_client, channels):
    body = {"preferences": [{"scope": "ALL", "category": "BILLING", "enabled": False, "channels": channels}]}

    response = auth_client.put("/api/v1/preferences/", body, format="json")

    assert response.status_code == 400, response.content
    assert "list of {channel, …}" in str(response.json())
    assert not NotificationPreference.objects.exists()


def test_admin_preferences_with_malformed_channels_is_a_field_error(auth_client, organization):
    body = {"level": "ORGANIZATION", "preferences": [{"scope": "ALL", "category": "BILLING", "channels": ""}]}

    response = auth_client.put("/api/v1/admin/preferences/", body, format="json")

    assert response.status_code == 400, response.content
    assert not NotificationPreference.objects.exists()


@pytest.mark.parametrize("field", ["rate_limit_org_per_minute", "rate_limit_user_per_hour"])
def test_channel_configuration_with_an_out_of_range_limit_is_a_field_error(auth_client, organization, field):
    body = {"channel": "EMAIL", "enabled": True, field: 11478702501, "organization_id": organization.pk}

    response = auth_client.post("/api/v1/admin/channel-configurations/", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ChannelConfiguration.objects.filter(organization=organization).exists()


def test_organization_preferences_with_an_out_of_range_team_id_is_a_field_error(auth_client):
    body = {"level": "TEAM", "team_id": 10**30, "preferences": [{"scope": "ALL", "category": "BILLING", "enabled": False}]}

    response = auth_client.put("/api/v1/admin/preferences/", body, format="json")

    assert response.status_code == 400, response.content
    assert "team_id" in response.json()
    assert not NotificationPreference.objects.exists()


def test_channel_configuration_settings_with_a_nul_character_are_refused_and_change_nothing(auth_client, organization):
    created = auth_client.post("/api/v1/admin/channel-configurations/",
                               {"channel": "EMAIL", "settings": {"note": "ok"}}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/admin/channel-configurations/{created.json()['id']}/"

    # PostgreSQL jsonb cannot hold U+0000: this was a DataError (500) in channel_configuration_save.
    response = auth_client.patch(url, {"channel": "EMAIL", "settings": {"note\x00": "a\x00b"}}, format="json")

    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["detail"]
    assert ChannelConfiguration.objects.get(pk=created.json()["id"]).settings == {"note": "ok"}


@pytest.mark.parametrize("query", ["event_type=%00", "key=a%00b", "%00=1"])
def test_a_nul_character_in_the_query_string_is_a_400(auth_client, query):
    response = auth_client.get(f"/api/v1/admin/templates/?{query}")

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
