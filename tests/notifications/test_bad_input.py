"""Malformed requests found by fuzzing the API against its OpenAPI schema: each answers 4xx, never 500."""
from __future__ import annotations

import pytest

from accounts.models import MembershipRole
from notifications.models import NotificationPreference
from tests.factories import MembershipFactory, UserFactory

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
