"""The provider form of the staff console: the code picked from the registry, the provider's
declared credentials as password fields never rendered back, the credentials checked against
the provider (a loopback Twilio here) before anything is saved, the same service as the API
behind the save, and the health history as a sparkline."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.enums import AuditAction
from notifications.models import NotificationAuditLog
from providers.models import NotificationProvider
from providers.models import ProviderHealthMetric
from providers.secrets import secrets_decrypt
from tests.factories import UserFactory

from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TOKEN = "twilio-auth-token-never-shown-123"
ADD = "admin:providers_notificationprovider_add"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _twilio(peer, status: int = 200):
    return peer().on("GET", r"^/2010-04-01/Accounts/AC123\.json$",
                     Reply(status, {"sid": "AC123", "status": "active"} if status == 200 else {"code": 20003, "message": "Authenticate"}))


def _form(base_url: str, **extra) -> dict[str, str]:
    return {"code": "twilio_sms", "name": "Twilio", "priority": "0", "is_active": "on",
            "config": f'{{"base_url": "{base_url}"}}', "secret_env_refs": "{}",
            "config__account_sid": "AC123", "secret__auth_token": TOKEN, **extra}


def test_the_code_comes_from_the_registry_and_its_settings_from_the_provider(staff_client):
    page = staff_client.get(reverse(ADD)).content.decode()
    assert re.search(r'<optgroup label="SMS">.*<option value="twilio_sms">', page, re.S)
    assert 'name="secret__auth_token"' not in page  # no provider chosen yet
    page = staff_client.get(reverse(ADD), {"code": "twilio_sms"}).content.decode()
    assert re.search(r'<input type="password" name="secret__auth_token"[^>]*>', page)
    assert 'name="config__account_sid"' in page


def test_credentials_are_checked_before_anything_is_saved(staff_client, peer):
    refusing = _twilio(peer, status=401)
    response = staff_client.post(reverse(ADD) + "?code=twilio_sms", _form(refusing.url))
    html = response.content.decode()
    assert response.status_code == 200 and "The credentials check failed" in html
    assert TOKEN not in html  # the posted secret is not echoed back either
    assert refusing.calls() and not NotificationProvider.objects.exists()

    # The operator may still save it, knowingly.
    response = staff_client.post(reverse(ADD) + "?code=twilio_sms", _form(refusing.url, save_without_check="on"))
    assert response.status_code == 302
    assert NotificationProvider.objects.get().name == "Twilio"


def test_a_checked_provider_is_saved_by_the_service_and_its_secret_never_shown(staff_client, peer):
    twilio = _twilio(peer)
    response = staff_client.post(reverse(ADD) + "?code=twilio_sms", _form(twilio.url))
    assert response.status_code == 302, response.content.decode()[:3000]
    record = NotificationProvider.objects.get()
    assert twilio.calls()[0].header("Authorization").startswith("Basic ")  # the check used the typed token
    assert record.channel == "SMS" and record.config["account_sid"] == "AC123"
    assert secrets_decrypt(record.secrets) == {"auth_token": TOKEN} and TOKEN not in record.secrets
    created = NotificationAuditLog.objects.get(action=AuditAction.PROVIDER_CONFIGURED, provider=record)
    assert created.details["change"] == "created" and created.details["secret_keys"] == ["auth_token"]  # the service's audit

    change = reverse("admin:providers_notificationprovider_change", args=[record.pk])
    html = staff_client.get(change).content.decode()
    assert TOKEN not in html and record.secrets not in html and "•••• set" in html
    assert re.search(r'<input type="password" name="secret__auth_token"(?![^>]*value=)[^>]*>', html)

    # Saving with the password field empty keeps the stored token.
    staff_client.post(change, {**_form(twilio.url, name="Twilio 2"), "secret__auth_token": ""})
    record.refresh_from_db()
    assert record.name == "Twilio 2" and secrets_decrypt(record.secrets) == {"auth_token": TOKEN}


def test_the_change_page_draws_the_health_history(staff_client, make_provider):
    record = make_provider("log_sms")
    now = timezone.now()
    for i in range(6):
        ProviderHealthMetric.objects.create(provider=record, provider_code="log_sms", channel="SMS", is_healthy=i != 3,
                                            response_time_ms=20 + i, checked_at=now - timedelta(minutes=6 - i))
    html = staff_client.get(reverse("admin:providers_notificationprovider_change", args=[record.pk])).content.decode()
    svg = re.search(r'<svg class="provider-sparkline".*?</svg>', html, re.S).group(0)
    assert len(re.search(r'points="([^"]+)"', svg).group(1).split()) == 6
    assert svg.count("<circle") == 1
    assert "6 checks, 1 failed" in html


def test_deleting_a_record_in_the_admin_is_audited_like_the_api(staff_client, make_provider):
    record = make_provider("log_sms")
    answer = staff_client.post(reverse("admin:providers_notificationprovider_delete", args=[record.pk]), {"post": "yes"})
    assert answer.status_code == 302 and not NotificationProvider.objects.filter(pk=record.pk).exists()
    audit = NotificationAuditLog.objects.get(action=AuditAction.PROVIDER_CONFIGURED, details__change="deleted")
    assert audit.details["provider_id"] == record.pk and audit.details["secret_keys"] == []
    other = make_provider("log_push")
    staff_client.post(reverse("admin:providers_notificationprovider_changelist"),
                      {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"})
    assert not NotificationProvider.objects.filter(pk=other.pk).exists()
    assert NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_CONFIGURED, details__change="deleted").count() == 2
