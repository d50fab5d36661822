"""Webhook administration with bad input: platform staff naming an organization that does not
exist get a 400 (not a 500), and the Django admin applies the API's validation service."""
from __future__ import annotations

import pytest
from django.test import Client

from notifications.models import NotificationAuditLog, Webhook
from tests.factories import OrganizationFactory, UserFactory

from .conftest import token_session

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def platform_admin(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.mark.django_db(transaction=True)
def test_staff_creating_a_webhook_for_a_missing_organization_get_a_400(live_server, platform_admin, field_keys):
    client = token_session(platform_admin)
    answer = client.post(live_server.url + "/api/v1/admin/webhooks/?organization=987654321",
                         json={"name": "x", "direction": "OUTGOING", "url": "https://hooks.example.com/in"}, timeout=10)
    assert answer.status_code == 400, answer.text
    assert "organization_id" in answer.json()
    assert not Webhook.objects.exists() and not NotificationAuditLog.objects.exists()
    organization = OrganizationFactory()
    made = client.post(live_server.url + f"/api/v1/admin/webhooks/?organization={organization.pk}",
                       json={"name": "x", "direction": "OUTGOING", "url": "https://hooks.example.com/in"}, timeout=10)
    assert made.status_code == 201 and Webhook.objects.get().organization_id == organization.pk


def _form(organization, **fields) -> dict:
    data = {
        "organization": organization.pk, "name": "Ops", "description": "", "direction": "OUTGOING",
        "url": "https://hooks.example.com/in", "is_active": "on", "auth_type": "HMAC_SHA256",
        "new_secret": "whsec_admin-chosen-secret", "event_types": "[]", "event_categories": "[]", "settings": "{}",
        "retry_enabled": "on", "max_retries": "3",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
@pytest.mark.parametrize("fields, field", [
    ({"direction": "INCOMING", "url": "", "auth_type": "NONE", "new_secret": ""}, "auth_type"),
    ({"url": "https://hooks.example.com:0/in"}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
    ({"url": "http://[64:ff9b::a9fe:a9fe]/"}, "url"),
    ({"new_secret": ""}, "new_secret"),
    ({"event_types": '["no.such.event"]'}, "event_types"),
])
def test_the_admin_form_refuses_what_the_api_refuses(platform_admin, field_keys, settings, fields, field):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    organization = OrganizationFactory()
    client = Client()
    client.force_login(platform_admin)
    answer = client.post("/admin/notifications/webhook/add/", _form(organization, **fields))
    assert answer.status_code == 200  # the form again, with the error
    errors = answer.context["adminform"].form.errors
    assert field in errors or (field in ("auth_type",) and errors), errors
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_the_admin_saves_through_the_service(platform_admin, field_keys):
    organization = OrganizationFactory()
    client = Client()
    client.force_login(platform_admin)
    answer = client.post("/admin/notifications/webhook/add/", _form(organization))
    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
    hook = Webhook.objects.get()
    assert hook.organization_id == organization.pk and hook.created_by_id == platform_admin.pk
    assert hook.secret and "whsec_admin-chosen-secret" not in hook.secret  # encrypted by the service
    audit = NotificationAuditLog.objects.get(webhook=hook)
    assert audit.details["created"] is True and "whsec_admin" not in str(audit.details)
    changed = client.post(f"/admin/notifications/webhook/{hook.pk}/change/",
                          _form(organization, name="Ops 2", new_secret="", url="https://hooks.example.com:99999/x"))
    assert changed.status_code == 200 and "url" in changed.context["adminform"].form.errors
    changed = client.post(f"/admin/notifications/webhook/{hook.pk}/change/", _form(organization, name="Ops 2", new_secret=""))
    assert changed.status_code == 302
    hook.refresh_from_db()
    assert hook.name == "Ops 2" and hook.secret  # the stored secret is kept


@pytest.mark.django_db
def test_the_admin_deletes_through_the_service_with_its_audit_row(platform_admin, field_keys):
    organization = OrganizationFactory()
    client = Client()
    client.force_login(platform_admin)
    assert client.post("/admin/notifications/webhook/add/", _form(organization)).status_code == 302
    hook = Webhook.objects.get()
    answer = client.post(f"/admin/notifications/webhook/{hook.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302 and not Webhook.objects.exists()
    deleted = NotificationAuditLog.objects.get(details__deleted=hook.pk)
    assert deleted.organization_id == organization.pk and deleted.actor_id == str(platform_admin.pk)
