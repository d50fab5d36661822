"""The staff console for provider records: secrets never rendered, and "validate credentials"
runs the provider's health check."""
from __future__ import annotations

import pytest
from django.test import Client

from notifications.enums import ProviderHealthStatus
from providers.models import NotificationProvider
from providers.models import ProviderHealthMetric
from tests.factories import UserFactory

from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SECRET = "SG.admin-page-secret-value-42"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_never_renders_a_secret_and_validates_credentials_with_a_health_check(staff_client, make_provider, peer):
    sendgrid = peer().on("GET", "/v3/scopes", Reply(200, {"scopes": ["mail.send"]}))
    record = make_provider("sendgrid", config={"api_url": f"{sendgrid.url}/v3/"}, secrets={"api_key": SECRET})

    for url in ("/admin/providers/notificationprovider/", f"/admin/providers/notificationprovider/{record.pk}/change/"):
        page = staff_client.get(url)
        assert page.status_code == 200 and SECRET not in page.content.decode() and record.secrets not in page.content.decode()

    response = staff_client.post("/admin/providers/notificationprovider/", {
        "action": "validate_credentials", "_selected_action": [record.pk]}, follow=True)
    assert response.status_code == 200 and "credentials work" in response.content.decode()
    assert sendgrid.calls()[0].header("Authorization") == f"Bearer {SECRET}"
    assert ProviderHealthMetric.objects.get().is_healthy
    assert NotificationProvider.objects.get().health_status == ProviderHealthStatus.HEALTHY
