"""Provider outages end to end: an organization's SMS provider starts answering 401; the engine's
deliveries go out through the next provider, the refusing one is marked unhealthy with its
circuit open, the organization's owners get ONE `system.outage` notification through the
platform itself, and each delivery's trace says which provider was chosen and why. Plus the
dead-letter rate alert and the channel configuration's selection settings."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from accounts.models import MembershipRole
from common.exceptions import ProviderTransientError
from notifications.engine.delivery import deliver_batch
from notifications.engine.operator_alerts import dead_letter_rate_check, provider_alert_raise
from notifications.enums import Channel, DeliveryStatus
from notifications.models import ChannelConfiguration, DeadLetter, Notification, NotificationDelivery
from providers.enums import ProviderHealthStatus
from providers.hooks import ProviderAlertKind
from providers.models import NotificationProvider
from providers.resilience import CircuitBreaker, CircuitPolicy, CircuitState
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.providers.peers import HttpPeer, Reply

from .test_delivery_support import event_type_with_template, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_PATH = rf"/2010-04-01/Accounts/{SID}/Messages\.json"
PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"


@pytest.fixture
def peers():
    started = [HttpPeer().start(), HttpPeer().start()]
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def outage(settings, peers, organization):
    from cryptography.fernet import Fernet

    from providers.services import provider_create

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.SITE_URL = "https://troubadour.test"
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    twilio, plivo = peers
    twilio.on("POST", TWILIO_PATH, Reply(401, {"code": 20003, "message": "Authenticate", "status": 401}))
    plivo.on("POST", rf"/v1/Account/{PLIVO_ID}/Message/", lambda req: Reply(202, {"api_id": "a", "message_uuid": [f"pl-{len(plivo.requests)}"]}))
    refusing = provider_create(organization_id=organization.pk, code="twilio_sms", name="Our Twilio", priority=0,
                               config={"base_url": twilio.url, "from_number": "+14155550111", "cost_per_message": "0.0079"},
                               secrets={"account_sid": SID, "auth_token": "revoked-token-0000"})
    backup = provider_create(organization_id=organization.pk, code="plivo_sms", name="Our Plivo", priority=1,
                             config={"base_url": plivo.url, "from_number": "+14155550122", "cost_per_message": "0.0090"},
                             secrets={"auth_id": PLIVO_ID, "auth_token": "plivo-token-0000"})
    owner = UserFactory(phone="+14155550100")
    MembershipFactory(user=owner, organization=organization, role=MembershipRole.OWNER)
    event_type_with_template()
    return refusing, backup, owner


def test_a_401_fails_over_opens_the_circuit_and_alerts_the_owners_once(outage, organization, peers):
    refusing, backup, owner = outage
    twilio, plivo = peers
    rows = [notification_with_deliveries(organization=organization, recipient=owner, channels=(Channel.SMS,))[1][0] for _ in range(3)]

    deliver_batch(delivery_ids=[rows[0].pk])
    deliver_batch(delivery_ids=[r.pk for r in rows[1:]])

    for row in NotificationDelivery.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.status == DeliveryStatus.SENT and row.provider == "plivo_sms"
        assert row.provider_record_id == backup.pk  # the 24 h success rate and status polling find it
    first = NotificationDelivery.objects.get(pk=rows[0].pk)
    assert first.provider_response["selection"] == (
        "chose plivo_sms: first healthy provider by priority; passed over twilio_sms (credentials refused)")
    later = NotificationDelivery.objects.get(pk=rows[1].pk)
    assert later.provider_response["selection"] == (
        "chose plivo_sms: first healthy provider by priority; passed over twilio_sms (unhealthy)")
    assert len(twilio.calls("POST")) == 1 and len(plivo.calls("POST")) == 3  # the refusing account was asked once

    refusing.refresh_from_db()
    assert refusing.health_status == ProviderHealthStatus.UNHEALTHY and "Credentials refused" in refusing.health_message
    assert CircuitBreaker(f"db{refusing.pk}", CircuitPolicy.for_config(refusing.config)).state() == CircuitState.OPEN

    (alert,) = Notification.objects.filter(event_type="system.outage")
    assert alert.organization_id == organization.pk and alert.recipient_id == owner.pk
    assert alert.data["component"] == f"sms provider twilio_sms (#{refusing.pk})"
    assert "refuses its credentials (401/403)" in alert.data["impact"] and "revoked-token" not in alert.data["impact"]

    trace = _client(owner).get(f"/api/v1/notifications/{first.notification_id}/trace/").json()
    assert trace["deliveries"][0]["selection"] == first.provider_response["selection"]


def test_new_credentials_that_work_end_the_outage_and_bad_ones_are_refused_when_saved(outage, organization, peers):
    refusing, _, owner = outage
    twilio, _ = peers
    twilio.on("GET", rf"/2010-04-01/Accounts/{SID}\.json", Reply(401, {"code": 20003, "message": "Authenticate", "status": 401}))
    client = _client(owner)
    response = client.patch(f"/api/v1/admin/providers/{refusing.pk}/", {"secrets": {"auth_token": "still-wrong-000"}}, format="json")
    assert response.status_code == 400 and "refused these credentials" in str(response.json())
    assert "still-wrong-000" not in response.content.decode()
    twilio.on("GET", rf"/2010-04-01/Accounts/{SID}\.json", Reply(200, {"sid": SID, "status": "active", "friendly_name": "Acme"}))
    NotificationProvider.objects.filter(pk=refusing.pk).update(health_status=ProviderHealthStatus.UNHEALTHY)
    assert client.patch(f"/api/v1/admin/providers/{refusing.pk}/", {"secrets": {"auth_token": "new-token-0000"}},
                        format="json").status_code == 200
    refusing.refresh_from_db()
    assert refusing.health_status == ProviderHealthStatus.HEALTHY
    # An organization may not send its new provider's credentials to a host of its choosing.
    created = client.post("/api/v1/admin/providers/", {"code": "messagebird_sms", "name": "x", "config": {"originator": "Acme",
                          "base_url": peers[1].url}, "secrets": {"access_key": "bad-key-000"}}, format="json")
    assert created.status_code == 400 and "messagebird.com" in str(created.json())


def test_operator_alerts_are_deduplicated_per_provider(organization, settings):
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=MembershipRole.ADMIN)
    kwargs = dict(provider_id=991, provider_code="plivo_sms", channel=Channel.SMS, organization_id=organization.pk, detail="HTTP 503")
    assert provider_alert_raise(kind=ProviderAlertKind.CIRCUIT_OPEN, **kwargs) is True
    assert provider_alert_raise(kind=ProviderAlertKind.UNHEALTHY, **kwargs) is False  # same outage, same provider
    assert provider_alert_raise(kind=ProviderAlertKind.CIRCUIT_OPEN, **{**kwargs, "provider_id": 992}) is True
    assert Notification.objects.filter(event_type="system.outage", recipient=owner).count() == 2
    cache.clear()  # the window passed
    assert provider_alert_raise(kind=ProviderAlertKind.UNHEALTHY, **kwargs) is True


def test_the_dead_letter_rate_alerts_the_platform_operators(settings):
    operators = OrganizationFactory(slug="ops")
    staff = UserFactory()
    MembershipFactory(user=staff, organization=operators, role=MembershipRole.OWNER)
    settings.OPERATOR_ALERTS_ORGANIZATION = "ops"
    tenant = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=tenant)
    now = timezone.now()
    _, sent = notification_with_deliveries(organization=tenant, recipient=user, channels=(Channel.EMAIL,) * 1)
    NotificationDelivery.objects.filter(pk=sent[0].pk).update(status=DeliveryStatus.SENT, sent_at=now)
    for _ in range(3):
        _, (row,) = notification_with_deliveries(organization=tenant, recipient=user, channels=(Channel.SMS,))
        NotificationDelivery.objects.filter(pk=row.pk).update(status=DeliveryStatus.FAILED, failed_at=now)
        DeadLetter.objects.create(organization=tenant, delivery=row, channel=Channel.SMS, reason="4 attempts failed")

    quiet = dead_letter_rate_check(threshold_percent=80, minimum=1)
    assert quiet == {"dead_letters": 3, "finished": 4, "rate": 75.0, "alerted": False}
    loud = dead_letter_rate_check(threshold_percent=50, minimum=1)
    assert loud["alerted"] is True and dead_letter_rate_check(threshold_percent=50, minimum=1)["alerted"] is False
    (alert,) = Notification.objects.filter(event_type="system.outage")
    assert alert.organization_id == operators.pk and alert.recipient_id == staff.pk
    assert "3 deliveries (75.0% of 4) went to the dead-letter queue" in alert.data["impact"]
    old = timezone.now() - timedelta(hours=2)
    DeadLetter.objects.update(created_at=old)
    assert dead_letter_rate_check(threshold_percent=50, minimum=1)["dead_letters"] == 0


def test_channel_configuration_selection_settings_are_checked_and_scoped(organization, user, outage):
    refusing, backup, _ = outage
    client = _client(user)
    url = "/api/v1/admin/channel-configurations/"
    bad = client.post(url, {"channel": "SMS", "settings": {"provider_strategy": "cheapest"}}, format="json")
    assert bad.status_code == 400 and "provider_strategy" in str(bad.json())
    foreign = NotificationProvider.objects.create(organization=OrganizationFactory(), code="log_sms", channel=Channel.SMS, name="theirs")
    assert client.post(url, {"channel": "SMS", "default_provider_id": foreign.pk}, format="json").status_code == 400
    assert not ChannelConfiguration.objects.filter(organization=organization).exists()
    made = client.post(url, {"channel": "SMS", "default_provider_id": backup.pk,
                             "settings": {"provider_strategy": "lowest_cost", "region": "GB"}}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["default_provider_id"] == backup.pk


def _client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_failing_health_check_and_an_opening_circuit_alert_once_each_outage(organization, settings):
    from providers.maintenance import provider_health_check
    from providers.services import provider_create, provider_send_with_failover
    from providers.base import OutboundMessage

    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=MembershipRole.OWNER)
    down = provider_create(organization_id=organization.pk, code="log_sms", name="Down", priority=0,
                           config={"simulate_outage": True, "circuit_failure_threshold": 2})
    provider_health_check(provider_id=down.pk)
    provider_health_check(provider_id=down.pk)  # still down: no second alert
    (alert,) = Notification.objects.filter(event_type="system.outage")
    assert "its health check fails" in alert.data["impact"] and alert.data["alert"] == ProviderAlertKind.UNHEALTHY

    # A later outage of the same provider, past the dedup window (the cache key expired, the
    # event's deduplication key names the next hour).
    cache.clear()
    NotificationProvider.objects.filter(pk=down.pk).update(health_status=ProviderHealthStatus.HEALTHY)
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        for _ in range(2):
            with pytest.raises(ProviderTransientError):
                provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS,
                                            message=OutboundMessage(channel=Channel.SMS, to="+14155550100", text="x"))
    latest = Notification.objects.filter(event_type="system.outage").order_by("-pk").first()
    assert Notification.objects.filter(event_type="system.outage").count() == 2
    assert latest.data["alert"] == ProviderAlertKind.CIRCUIT_OPEN and "2 transient failures within 120 s" in latest.data["impact"]


def test_the_admin_checks_the_selection_settings_and_default_provider_too(organization):
    from django.core.exceptions import ValidationError as ModelValidationError

    with pytest.raises(ModelValidationError) as err:
        ChannelConfiguration(organization=organization, channel=Channel.SMS, settings={"provider_strategy": "cheapest"}).full_clean()
    assert "provider_strategy" in str(err.value)
    theirs = NotificationProvider.objects.create(organization=OrganizationFactory(), code="log_sms", channel=Channel.SMS, name="theirs")
    with pytest.raises(ModelValidationError):
        ChannelConfiguration(organization=organization, channel=Channel.SMS, default_provider=theirs).full_clean()
    ours = NotificationProvider.objects.create(organization=organization, code="log_sms", channel=Channel.SMS, name="ours")
    ChannelConfiguration(organization=organization, channel=Channel.SMS, default_provider=ours,
                         settings={"provider_strategy": "region", "region": "GB"}).full_clean()
