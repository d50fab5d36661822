"""Malformed requests found by fuzzing the provider API against its OpenAPI schema: 4xx, never 500."""
from __future__ import annotations

import pytest

from providers.models import NotificationProvider

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/admin/providers/"
TOO_BIG = 2**31  # one past PostgreSQL's integer


@pytest.mark.parametrize("field, value", [
    ("priority", -430502896765254), ("priority", TOO_BIG), ("rate_limit_per_minute", TOO_BIG),
    ("daily_limit", 10**20), ("organization_id", 10**30),
])
def test_create_with_an_out_of_range_number_is_a_field_error(auth_client, field, value):
    response = auth_client.post(URL, {"code": "log_email", "name": "Log", field: value}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not NotificationProvider.objects.exists()


def test_patch_with_an_out_of_range_priority_is_a_field_error_and_changes_nothing(auth_client, organization, make_provider):
    record = make_provider("log_email", organization=organization, priority=3)

    response = auth_client.patch(f"{URL}{record.pk}/", {"priority": TOO_BIG}, format="json")

    assert response.status_code == 400, response.content
    assert "priority" in response.json()
    record.refresh_from_db()
    assert record.priority == 3


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_the_health_check_url_answers_only_post(auth_client, organization, make_provider, method):
    # It inherits the detail view's lookup: a DELETE there used to delete the provider itself.
    record = make_provider("log_email", organization=organization, priority=3)

    response = getattr(auth_client, method)(f"{URL}{record.pk}/health-check/", {"priority": 9}, format="json")

    assert response.status_code == 405
    record.refresh_from_db()
    assert record.priority == 3


def test_create_with_a_description_keeps_it(auth_client):
    # The serializer accepted `description` but provider_create() did not: every such create was a 500.
    response = auth_client.post(URL, {"code": "log_email", "name": "Log", "description": "Fallback for tests"}, format="json")

    assert response.status_code == 201, response.content
    assert NotificationProvider.objects.get(pk=response.json()["id"]).description == "Fallback for tests"
