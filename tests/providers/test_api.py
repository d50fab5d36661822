from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.enums import (
    AuditAction,
    Channel,
    DeliveryStatus,
    EventCategory,
    ProviderHealthStatus,
)
from notifications.models import (
    ChannelPreference,
    NotificationAuditLog,
    NotificationPreference,
)
from providers.models import NotificationProvider
from providers.models import ProviderCostDaily, ProviderHealthMetric, PushSubscription
from providers.secrets import secrets_decrypt
from providers.maintenance import provider_costs_aggregate
from providers.unsubscribe import unsubscribe_url_for
from tests.factories import MembershipFactory, UserFactory

from .factories import DeliveryFactory
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/admin/providers/"
SECRET = "SG.super-secret-api-key-value"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_org_admin_creates_a_provider_and_never_sees_the_secret_again(auth_client, organization):
    response = auth_client.post(URL, {"code": "sendgrid", "name": "Our SendGrid", "priority": 1,
                                      "config": {"api_url": "https://sg.example/v3/"}, "secrets": {"api_key": SECRET}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert SECRET not in response.content.decode()
    assert body["secrets"] == {"api_key": "********alue"} and body["channel"] == Channel.EMAIL
    assert body["organization_id"] == organization.pk and body["read_only"] is False
    assert body["status_webhook_url"].endswith(f"/webhooks/anymail/sendgrid/tracking/{body['id']}/")  # this record's own URL
    record = NotificationProvider.objects.get(pk=body["id"])
    assert SECRET not in record.secrets and secrets_decrypt(record.secrets) == {"api_key": SECRET}
    audit = NotificationAuditLog.objects.get(action=AuditAction.PROVIDER_CONFIGURED)
    assert audit.details["secret_keys"] == ["api_key"] and SECRET not in json.dumps(audit.details)

    listed = auth_client.get(URL).json()["results"]
    assert [p["id"] for p in listed] == [body["id"]] and SECRET not in json.dumps(listed)

    patched = auth_client.patch(f"{URL}{body['id']}/", {"priority": 5, "secrets": {"api_key": "SG.rotated-key-000000000"}}, format="json")
    assert patched.status_code == 200 and patched.json()["priority"] == 5
    assert secrets_decrypt(NotificationProvider.objects.get(pk=body["id"]).secrets) == {"api_key": "SG.rotated-key-000000000"}

    assert auth_client.delete(f"{URL}{body['id']}/").status_code == 204
    assert not NotificationProvider.objects.filter(pk=body["id"]).exists()


def test_bad_input_is_a_clear_400_and_saves_nothing(auth_client):
    cases = [
        {"code": "carrier-pigeon", "name": "x"},
        {"code": "sendgrid", "name": "x", "channel": "SMS"},
        {"code": "sendgrid", "name": "x", "config": {"api_key": "in the wrong place"}},
        {"code": "sendgrid", "name": "x", "rate_limit_per_minute": 0},
    ]
    for payload in cases:
        response = auth_client.post(URL, payload, format="json")
        assert response.status_code == 400, payload
    assert not NotificationProvider.objects.exists()


def test_global_records_are_read_only_for_org_admins_and_invisible_across_orgs(auth_client, make_provider, other_user):
    platform = make_provider("twilio_sms", secrets={"account_sid": "AC1", "auth_token": "global-token-0123456789"})
    theirs = make_provider("postmark", organization=other_user.memberships.get().organization, secrets={"server_token": "theirs"})
    listed = {p["id"]: p for p in auth_client.get(URL).json()["results"]}
    assert set(listed) == {platform.pk} and listed[platform.pk]["read_only"] is True
    assert listed[platform.pk]["secrets"]["auth_token"] == "********6789"
    assert auth_client.patch(f"{URL}{platform.pk}/", {"priority": 9}, format="json").status_code == 403
    assert auth_client.delete(f"{URL}{platform.pk}/").status_code == 403
    assert auth_client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert auth_client.post(URL, {"code": "smtp", "name": "x", "organization_id": theirs.organization_id, "config": {"host": "h"}},
                            format="json").status_code == 403


def test_members_and_api_keys_cannot_manage_providers(organization, key_client):
    member = UserFactory()
    MembershipFactory(user=member, organization=organization, role=MembershipRole.MEMBER)
    assert _client(member).get(URL).status_code == 403
    assert key_client.get(URL).status_code == 403


def test_staff_see_everything_and_create_global_records(other_user, make_provider):
    staff = UserFactory(is_staff=True, is_superuser=True)
    theirs = make_provider("postmark", organization=other_user.memberships.get().organization, secrets={"server_token": "t"})
    response = _client(staff).post(URL, {"code": "log_sms", "name": "Platform log"}, format="json")
    assert response.status_code == 201 and response.json()["scope"] == "global"
    assert {p["id"] for p in _client(staff).get(URL).json()["results"]} == {theirs.pk, response.json()["id"]}


def test_health_check_endpoint_updates_status_and_writes_a_metric(auth_client, organization, make_provider, peer):
    sendgrid = peer().on("GET", "/v3/scopes", Reply(200, {"scopes": ["mail.send"]}, {"X-RateLimit-Remaining": "599"}))
    record = make_provider("sendgrid", organization=organization, config={"api_url": f"{sendgrid.url}/v3/"}, secrets={"api_key": SECRET})
    DeliveryFactory(organization=organization, notification__organization=organization, provider_record=record, sent_at=timezone.now())
    DeliveryFactory(organization=organization, notification__organization=organization, provider_record=record, sent_at=timezone.now(),
                    status=DeliveryStatus.BOUNCED)

    response = auth_client.post(f"{URL}{record.pk}/health-check/")

    assert response.status_code == 200
    body = response.json()
    assert body["check"]["is_healthy"] is True and body["check"]["rate_limit_remaining"] == 599
    assert body["check"]["success_rate_24h"] == "50.00"
    assert body["provider"]["health_status"] == ProviderHealthStatus.HEALTHY and SECRET not in response.content.decode()
    assert sendgrid.calls()[0].header("Authorization") == f"Bearer {SECRET}"
    assert ProviderHealthMetric.objects.get().provider_id == record.pk

    sendgrid.on("GET", "/v3/scopes", Reply(401, {"errors": [{"message": "bad key"}]}))
    body = auth_client.post(f"{URL}{record.pk}/health-check/").json()
    assert body["check"]["is_healthy"] is False and body["provider"]["health_status"] == ProviderHealthStatus.UNHEALTHY


def test_daily_cost_analysis_aggregates_deliveries(organization, make_provider):
    record = make_provider("twilio_sms", organization=organization, secrets={"account_sid": "AC1", "auth_token": "t"})
    day = date(2026, 3, 2)
    sent_at = timezone.make_aware(timezone.datetime(2026, 3, 2, 12, 0))
    for status, cost in ((DeliveryStatus.DELIVERED, "0.0079"), (DeliveryStatus.DELIVERED, "0.0158"), (DeliveryStatus.FAILED, None)):
        DeliveryFactory(organization=organization, notification__organization=organization, channel=Channel.SMS, provider="twilio_sms",
                        provider_record=record, status=status, sent_at=sent_at, cost_amount=Decimal(cost) if cost else None,
                        cost_currency="USD" if cost else "")
    DeliveryFactory(provider="twilio_sms", provider_record=record, sent_at=sent_at + timedelta(days=1))  # another day

    assert provider_costs_aggregate(day=day) == 1
    assert provider_costs_aggregate(day=day) == 1  # idempotent
    row = ProviderCostDaily.objects.get(date=day)
    assert (row.total_messages, row.delivered_messages, row.failed_messages) == (3, 2, 1)
    assert row.total_cost == Decimal("0.0237") and row.currency == "USD"
    assert row.average_cost_per_message == Decimal("0.011850")
    assert row.delivery_success_rate == Decimal("66.67") and row.cost_per_successful_delivery == Decimal("0.011850")


def test_one_click_unsubscribe_turns_the_channel_off(user):
    url = unsubscribe_url_for(user_id=user.pk, channel=Channel.EMAIL, category=EventCategory.SECURITY).replace("https://troubadour.test", "")
    client = Client()
    assert client.get(url).status_code == 200
    assert not ChannelPreference.objects.exists()  # a GET (link scanners) changes nothing
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    pref = ChannelPreference.objects.get()
    assert (pref.channel, pref.enabled) == (Channel.EMAIL, False)
    assert (pref.preference.user_id, pref.preference.category) == (user.pk, EventCategory.SECURITY)
    client.post(url, {"List-Unsubscribe": "One-Click"})  # idempotent
    assert NotificationPreference.objects.count() == 1 and ChannelPreference.objects.count() == 1
    assert client.post(url[:-5] + "xxxx/").status_code == 400


def test_push_subscription_api(auth_client, user):
    payload = {"endpoint": "https://push.example/abc", "keys": {"p256dh": "BPk", "auth": "au"}}
    assert auth_client.post("/api/v1/push-subscriptions/", payload, format="json").status_code == 201
    assert auth_client.post("/api/v1/push-subscriptions/", payload, format="json").status_code == 201  # same device: updated
    assert PushSubscription.objects.filter(user=user).count() == 1
    assert auth_client.post("/api/v1/push-subscriptions/", {"endpoint": "https://push.example/x"}, format="json").status_code == 400
    assert auth_client.delete("/api/v1/push-subscriptions/", {"endpoint": "https://push.example/abc"}, format="json").status_code == 204
    assert not PushSubscription.objects.exists()


def test_no_answer_of_the_provider_api_ever_contains_a_secret(auth_client, organization, make_provider, peer):
    platform_secret = "platform-twilio-token-0123456789"
    make_provider("twilio_sms", secrets={"account_sid": "AC1", "auth_token": platform_secret})
    sendgrid = peer().on("GET", "/v3/scopes", Reply(401, {"errors": [{"message": f"bad key {SECRET}"}]}))
    answers = []
    created = auth_client.post(URL, {"code": "sendgrid", "name": "Ours", "config": {"api_url": f"{sendgrid.url}/v3/"},
                                     "secrets": {"api_key": SECRET}}, format="json")
    answers.append(created)
    pk = created.json()["id"]
    answers += [
        auth_client.get(URL),
        auth_client.get(f"{URL}?channel=EMAIL"),
        auth_client.get(f"{URL}{pk}/"),
        auth_client.patch(f"{URL}{pk}/", {"name": "Renamed", "secrets": {"api_key": SECRET + "-v2"}}, format="json"),
        auth_client.post(f"{URL}{pk}/health-check/"),  # the peer even echoes the key in its error
        auth_client.get(f"{URL}codes/"),
        # refused writes echo neither the secret nor the stored one
        auth_client.post(URL, {"code": "sendgrid", "name": "Dup", "secrets": {"api_key": SECRET}}, format="json"),
        auth_client.patch(f"{URL}{pk}/", {"rate_limit_per_minute": 0, "secrets": {"api_key": SECRET}}, format="json"),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200, 400, 400]
    for answer in answers:
        text = answer.content.decode()
        assert SECRET not in text and platform_secret not in text, text
    assert answers[3].json()["secrets"] == {"api_key": "********alue"}
    assert answers[4].json()["secrets"] == {"api_key": "********e-v2"}


def test_an_organization_record_pointing_elsewhere_never_receives_the_platform_credentials(
    auth_client, organization, make_provider, peer, monkeypatch,
):
    from providers.secrets import resolve_credentials

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "env-token-0123456789")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC-env")
    platform = make_provider("twilio_sms", secrets={"account_sid": "AC-platform", "auth_token": "platform-token-0123456789"})
    elsewhere = peer().on("GET", r".*", Reply(200, {"status": "active"}))
    created = auth_client.post(URL, {"code": "twilio_sms", "name": "Ours", "config": {"base_url": elsewhere.url}}, format="json")
    assert created.status_code == 201
    record = NotificationProvider.objects.get(pk=created.json()["id"])

    assert resolve_credentials(record) == {}  # neither the platform record's nor the environment's
    check = auth_client.post(f"{URL}{record.pk}/health-check/").json()["check"]
    assert check["is_healthy"] is False and "account_sid" in check["error_message"]
    assert elsewhere.calls() == []  # nothing was sent there at all

    # the host hidden among the secrets (providers read both) is caught as well
    smtp_platform = make_provider("smtp", config={"host": "smtp.platform.test"}, secrets={"password": "platform-smtp-password"})
    smtp_own = make_provider("smtp", organization=organization, secrets={"host": "127.0.0.1", "username": "me"})
    assert resolve_credentials(smtp_own) == {"host": "127.0.0.1", "username": "me"}
    # pointing at the platform's own endpoints still borrows its credentials
    same = make_provider("sendgrid", organization=organization, secrets={})
    make_provider("sendgrid", config={"api_url": "https://api.sendgrid.com/v3/"}, secrets={"api_key": "SG.platform-0000000000"})
    assert resolve_credentials(same)["api_key"] == "SG.platform-0000000000"
    assert resolve_credentials(platform)["auth_token"] == "platform-token-0123456789" and smtp_platform.pk


def test_organization_admins_cannot_reference_environment_variables_or_import_paths(auth_client, make_provider, settings):
    settings.PROVIDER_SECRET_ENV_ALLOWLIST = ["SENDGRID_API_KEY"]
    refs = auth_client.post(URL, {"code": "sendgrid", "name": "x", "secret_env_refs": {"api_key": "DATABASE_URL"}}, format="json")
    assert refs.status_code == 400 and "secret_env_refs" in refs.json()
    backend = auth_client.post(URL, {"code": "django_email", "name": "x", "config": {"backend": "subprocess.Popen"}}, format="json")
    assert backend.status_code == 400 and "config" in backend.json()
    assert not NotificationProvider.objects.exists()
    own = auth_client.post(URL, {"code": "django_email", "name": "x", "config": {"backend": "django.core.mail.backends.locmem.EmailBackend"}},
                           format="json")
    assert own.status_code == 201
    patched = auth_client.patch(f"{URL}{own.json()['id']}/", {"secret_env_refs": {"password": "SECRET_KEY"}}, format="json")
    assert patched.status_code == 400 and NotificationProvider.objects.get().secret_env_refs == {}
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert _client(staff).post(URL, {"code": "sendgrid", "name": "Platform", "secret_env_refs": {"api_key": "SENDGRID_API_KEY"}},
                               format="json").status_code == 201
