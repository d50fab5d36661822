"""Escalation chains and acknowledgement from every source (engine.escalation, engine.ack)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from twilio.request_validator import RequestValidator

from accounts.models import MembershipRole, OnCallRotation, OnCallShift
from notifications.engine.ack import ack_link_url
from notifications.engine.escalation import escalation_resolve_for, escalation_start_for, escalations_advance
from notifications.enums import AuditAction, Channel, Criticality, EscalationCondition, EscalationRecipientType
from notifications.models import EscalationChain, EscalationLevel, Notification, NotificationAuditLog, NotificationDelivery
from tests.factories import MembershipFactory, UserFactory

from .test_retry_support import make_delivery, make_notification

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

START = timezone.now().replace(microsecond=0)


@pytest.fixture
def people(organization):
    responder = UserFactory(phone="+14155550101")
    oncall = UserFactory(phone="+14155550102")
    admin = UserFactory(phone="+14155550103")
    boss = UserFactory(phone="+14155550104")
    MembershipFactory(user=responder, organization=organization)
    MembershipFactory(user=oncall, organization=organization)
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    MembershipFactory(user=boss, organization=organization)
    rotation = OnCallRotation.objects.create(organization=organization, name="Primary", timezone="Europe/Paris")
    OnCallShift.objects.create(rotation=rotation, user=boss, starts_at=START - timedelta(days=2), ends_at=START - timedelta(days=1))
    OnCallShift.objects.create(rotation=rotation, user=oncall, starts_at=START - timedelta(hours=1), ends_at=START + timedelta(days=1))
    return {"responder": responder, "oncall": oncall, "admin": admin, "boss": boss}


@pytest.fixture
def chain(organization, people):
    chain = EscalationChain.objects.create(organization=organization, name="Incidents",
                                           trigger_criticality=Criticality.CRITICAL, trigger_event_types=["incident.created"])
    EscalationLevel.objects.create(chain=chain, level=0, delay_minutes=0, channels=[Channel.IN_APP])
    EscalationLevel.objects.create(chain=chain, level=1, delay_minutes=5, channels=[Channel.SMS],
                                   recipient_type=EscalationRecipientType.ON_CALL)
    EscalationLevel.objects.create(chain=chain, level=2, delay_minutes=10, channels=[Channel.EMAIL],
                                   recipient_type=EscalationRecipientType.ROLE, recipient_role=MembershipRole.ADMIN)
    EscalationLevel.objects.create(chain=chain, level=3, delay_minutes=10, channels=[Channel.VOICE],
                                   recipient_type=EscalationRecipientType.USER, recipient_user=people["boss"],
                                   condition=EscalationCondition.NOT_RESOLVED)
    return chain


def _incident(organization, recipient, **fields):
    n = make_notification(organization=organization, recipient=recipient, event_type="incident.created",
                          criticality=Criticality.CRITICAL, resource_type="incident", resource_id="INC-7",
                          title="Database down", **fields)
    make_delivery(n, Channel.EMAIL, status="SENT")
    return n


def test_unacknowledged_incident_climbs_every_level_on_time(
    organization, people, chain, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        not_matching = make_notification(organization=organization, recipient=people["responder"],
                                         event_type="incident.created", criticality=Criticality.HIGH)
        assert escalation_start_for(notification_ids=[n.pk, not_matching.pk]) == 1
        n.refresh_from_db()
        assert n.escalation_chain == chain and n.escalation_level == 0
        assert n.next_escalation_at == START + timedelta(minutes=5)
        # Level 0 adds its in-app channel to the original notification.
        assert set(n.deliveries.values_list("channel", flat=True)) == {Channel.EMAIL, Channel.IN_APP}

        clock.move_to(START + timedelta(minutes=4))
        assert escalations_advance().escalated == 0

        clock.move_to(START + timedelta(minutes=5, seconds=30))
        with django_assert_max_num_queries(17):  # +1: the enqueue reads the new deliveries' channel and organization (batch size, fair queue)
            report = escalations_advance()
        assert report.escalated == 1 and report.deliveries == 1
        page = Notification.objects.get(recipient=people["oncall"], metadata__escalation_root_id=n.pk)
        sms = page.deliveries.get()
        assert (sms.channel, sms.recipient_address, sms.escalation_level) == (Channel.SMS, people["oncall"].phone, 1)
        assert page.title == "Database down"

        clock.move_to(START + timedelta(minutes=16))
        escalations_advance()
        admin_copy = Notification.objects.get(recipient=people["admin"], metadata__escalation_root_id=n.pk)
        assert admin_copy.deliveries.get().channel == Channel.EMAIL

        clock.move_to(START + timedelta(minutes=27))
        escalations_advance()
        boss_copy = Notification.objects.get(recipient=people["boss"], metadata__escalation_root_id=n.pk)
        assert boss_copy.deliveries.get().channel == Channel.VOICE

        clock.move_to(START + timedelta(hours=2))
        assert escalations_advance().escalated == 0  # the chain is over
    n.refresh_from_db()
    assert n.escalation_level == 3 and n.next_escalation_at is None
    levels = list(NotificationAuditLog.objects.filter(notification=n, action=AuditAction.ESCALATED)
                  .order_by("pk").values_list("details__level", flat=True))
    assert levels == [0, 1, 2, 3]


def test_acknowledging_through_the_signed_link_stops_the_chain(
    organization, people, chain, django_capture_on_commit_callbacks
):
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        clock.move_to(START + timedelta(minutes=6))
        escalations_advance()
        page = Notification.objects.get(recipient=people["oncall"], metadata__escalation_root_id=n.pk)

        url = ack_link_url(notification_id=page.pk).removeprefix("http://127.0.0.1:8000")
        client = APIClient(enforce_csrf_checks=False)
        assert client.get(url).status_code == 200
        n.refresh_from_db()
        assert n.acknowledged_at is None  # a GET (mail scanner, preview) changes nothing
        response = client.post(url)
        assert response.status_code == 200 and b"Acknowledged" in response.content

        clock.move_to(START + timedelta(minutes=30))
        assert escalations_advance().escalated == 0
    n.refresh_from_db()
    page.refresh_from_db()
    assert n.acknowledged_at is not None and page.acknowledged_at is not None and n.next_escalation_at is None
    audit = NotificationAuditLog.objects.get(notification=n, action=AuditAction.ACKNOWLEDGED)
    assert audit.details["source"] == "link" and audit.details["acknowledged_via_notification_id"] == page.pk
    assert not Notification.objects.filter(recipient=people["admin"], metadata__escalation_root_id=n.pk).exists()


def test_forged_or_unknown_ack_link_is_refused(client):
    assert client.get("/n/not-a-signature/ack/").status_code == 404
    assert client.post("/n/not-a-signature/ack/").status_code == 404


def test_inbox_acknowledge_stops_the_chain(organization, people, chain, django_capture_on_commit_callbacks):
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        n.deliveries.filter(channel=Channel.IN_APP).update(status="DELIVERED")  # level 0's in-app copy arrived
        api = APIClient()
        api.force_authenticate(people["responder"])
        assert api.post(f"/api/v1/notifications/{n.pk}/acknowledge/").status_code == 200
        clock.move_to(START + timedelta(minutes=10))
        assert escalations_advance().escalated == 0
    assert not Notification.objects.filter(metadata__escalation_root_id=n.pk).exists()


def test_sms_reply_ack_with_a_valid_twilio_signature(
    organization, people, chain, monkeypatch, settings, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "sms-inbound-secret")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")  # the callback must name the platform's account
    settings.SITE_URL = "https://troubadour.test"
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        clock.move_to(START + timedelta(minutes=6))
        escalations_advance()  # pages the on-call person by SMS
        # sent through the platform's Twilio account (its environment configuration)
        NotificationDelivery.objects.filter(notification__metadata__escalation_root_id=n.pk, channel=Channel.SMS).update(
            status="SENT", provider="twilio_sms", provider_message_id="SM" + "5" * 32)
        url = "https://troubadour.test" + reverse("twilio-sms-inbound")
        params = {"From": people["oncall"].phone, "Body": " ack ", "AccountSid": "AC123", "MessageSid": "SM1"}
        client = APIClient()
        forged = client.post(url, params, format="multipart", HTTP_X_TWILIO_SIGNATURE="forged")
        assert forged.status_code == 403
        n.refresh_from_db()
        assert n.acknowledged_at is None

        signature = RequestValidator("sms-inbound-secret").compute_signature(url, params)
        response = client.post(url, params, format="multipart", HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code == 200 and b"Acknowledged" in response.content
    n.refresh_from_db()
    assert n.acknowledged_at is not None
    assert NotificationAuditLog.objects.get(notification=n, action=AuditAction.ACKNOWLEDGED).details["source"] == "sms"


def test_resolved_incident_stops_not_resolved_levels(organization, people, chain, django_capture_on_commit_callbacks):
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        clock.move_to(START + timedelta(minutes=6))
        escalations_advance()
        clock.move_to(START + timedelta(minutes=17))
        escalations_advance()  # level 2 (admins): NOT_ACKNOWLEDGED
        # The source is resolved: level 3 (NOT_RESOLVED) must not page the boss.
        make_notification(organization=organization, recipient=people["responder"], event_type="incident.resolved",
                          resource_type="incident", resource_id="INC-7")
        clock.move_to(START + timedelta(minutes=40))
        report = escalations_advance()
    assert report.escalated == 0 and report.stopped == 1
    assert not Notification.objects.filter(recipient=people["boss"], metadata__escalation_root_id=n.pk).exists()
    n.refresh_from_db()
    assert n.trace["escalation"][-1]["stopped"] == "source resolved"


def test_resolve_hook_stops_the_chain_at_once(organization, people, chain, django_capture_on_commit_callbacks):
    chain.levels.filter(level=1).update(condition=EscalationCondition.NOT_RESOLVED)
    with django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
    assert escalation_resolve_for(organization_id=organization.pk, resource_type="incident", resource_id="INC-7") == 1
    n.refresh_from_db()
    assert n.next_escalation_at is None


def test_oncall_lookup_picks_the_current_shift(organization, people):
    from accounts.oncall import oncall_users_at

    rotation = OnCallRotation.objects.get(organization=organization)
    assert oncall_users_at(rotation_ids=[rotation.pk], at=START) == {rotation.pk: people["oncall"].pk}
    assert oncall_users_at(rotation_ids=[rotation.pk], at=START - timedelta(days=1, hours=12)) == {rotation.pk: people["boss"].pk}
    assert oncall_users_at(rotation_ids=[rotation.pk], at=START + timedelta(days=3)) == {}


def test_global_chain_applies_when_the_organization_has_none(organization, people, django_capture_on_commit_callbacks):
    chain = EscalationChain.objects.create(organization=None, name="Platform critical")
    EscalationLevel.objects.create(chain=chain, level=1, delay_minutes=1, channels=[Channel.SMS],
                                   recipient_type=EscalationRecipientType.ORIGINAL)
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        assert escalation_start_for(notification_ids=[n.pk]) == 1
        clock.move_to(START + timedelta(minutes=2))
        assert escalations_advance().deliveries == 1
    sms = NotificationDelivery.objects.get(notification=n, channel=Channel.SMS)
    assert sms.escalation_level == 1 and sms.recipient_address == people["responder"].phone


def test_event_emit_starts_the_chain_and_incident_resolved_stops_it(
    organization, people, chain, django_capture_on_commit_callbacks
):
    from notifications.services import event_emit

    chain.levels.filter(level=1).update(condition=EscalationCondition.NOT_RESOLVED)
    resource = {"type": "incident", "id": "INC-9", "name": "Database down"}
    with django_capture_on_commit_callbacks(execute=False):
        result = event_emit(organization=organization, type="incident.created", recipient_ids=[str(people["responder"].pk)],
                            criticality=Criticality.CRITICAL, resource=resource, data={"incidentTitle": "Database down"})
        n = Notification.objects.get(pk=result.notifications[0][0])
        assert n.escalation_chain == chain and n.next_escalation_at is not None
        event_emit(organization=organization, type="incident.resolved", recipient_ids=[str(people["responder"].pk)],
                   resource=resource)
    n.refresh_from_db()
    assert n.next_escalation_at is None


def test_templates_can_link_to_the_one_click_acknowledgement(organization, people):
    from notifications.engine.delivery import notification_context
    from notifications.engine.rendering import allowed_variables_for, template_validate

    n = _incident(organization, people["responder"])
    url = notification_context(n, variable_mapping={})["ack_url"]
    assert url.startswith("http") and url.endswith("/ack/")
    assert APIClient().get(url.removeprefix("http://127.0.0.1:8000")).status_code == 200
    template_validate(channel_contents={"EMAIL": {"body": "Acknowledge: {{ ack_url }}"}},
                      allowed_variables=allowed_variables_for({}))


def test_escalation_messages_carry_the_acknowledgement_on_every_channel(
    organization, people, chain, settings, django_capture_on_commit_callbacks, mailoutbox
):
    """Default or custom template alike: the page email ends with the one-click link, the push
    carries it in its data, the call asks for the digit; and the link stops the chain."""
    from notifications.engine.delivery import deliver_batch
    from providers.models import ProviderOutbox

    settings.SITE_URL = "http://127.0.0.1:8000"
    chain.levels.filter(level=1).update(channels=[Channel.EMAIL, Channel.PUSH, Channel.VOICE])
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        plain = make_notification(organization=organization, recipient=people["responder"], title="Not escalating")
        escalation_start_for(notification_ids=[n.pk])
        clock.move_to(START + timedelta(minutes=6))
        escalations_advance()
        page = Notification.objects.get(recipient=people["oncall"], metadata__escalation_root_id=n.pk)
        plain_email = make_delivery(plain, Channel.EMAIL)
        deliver_batch(delivery_ids=[*page.deliveries.values_list("pk", flat=True), plain_email.pk])

    by_subject = {m.to[0]: m for m in mailoutbox}
    page_mail, plain_mail = by_subject[people["oncall"].email], by_subject[people["responder"].email]
    assert "/n/" not in plain_mail.body  # only escalating notifications get the prompt
    link = page_mail.body.rsplit("Acknowledge: ", 1)[1].strip()
    push = ProviderOutbox.objects.get(channel=Channel.PUSH, idempotency_key=str(page.deliveries.get(channel=Channel.PUSH).pk))
    assert push.payload["data"]["ack_url"].startswith("http://127.0.0.1:8000/n/")
    voice = ProviderOutbox.objects.get(channel=Channel.VOICE)
    assert voice.payload["voice"]["require_acknowledgment"] is True

    with time_machine.travel(START + timedelta(minutes=7), tick=False) as clock:
        assert APIClient().post(link.removeprefix("http://127.0.0.1:8000")).status_code == 200
        clock.move_to(START + timedelta(minutes=30))
        assert escalations_advance().escalated == 0
    n.refresh_from_db()
    assert n.acknowledged_at is not None and n.next_escalation_at is None


def test_voice_digit_on_an_escalation_call_stops_the_chain(
    organization, people, chain, monkeypatch, settings, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "voice-gather-secret")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")  # the callback must name the platform's account
    settings.SITE_URL = "https://troubadour.test"
    chain.levels.filter(level=1).update(channels=[Channel.VOICE])
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        clock.move_to(START + timedelta(minutes=6))
        escalations_advance()  # calls the on-call person
        call = NotificationDelivery.objects.get(notification__metadata__escalation_root_id=n.pk, channel=Channel.VOICE)
        NotificationDelivery.objects.filter(pk=call.pk).update(status="SENT", provider="twilio_voice",
                                                               provider_message_id="CA" + "7" * 32)
        url = "https://troubadour.test/webhooks/twilio/voice/gather/"
        params = {"AccountSid": "AC123", "CallSid": "CA" + "7" * 32, "Digits": "1"}
        signature = RequestValidator("voice-gather-secret").compute_signature(url, params)
        response = APIClient().post(url, params, format="multipart", HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code == 200 and b"Acknowledged" in response.content
        clock.move_to(START + timedelta(minutes=30))
        assert escalations_advance().escalated == 0
    n.refresh_from_db()
    assert n.acknowledged_at is not None and n.next_escalation_at is None
    assert NotificationAuditLog.objects.get(notification=n, action=AuditAction.ACKNOWLEDGED).details["source"] == "voice"
    assert not Notification.objects.filter(recipient=people["admin"], metadata__escalation_root_id=n.pk).exists()


def _admin_api(organization) -> APIClient:
    admin = UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    api = APIClient()
    api.force_authenticate(admin)
    return api


def test_escalation_chains_api_creates_a_chain_that_escalates(organization, people, django_capture_on_commit_callbacks):
    api = _admin_api(organization)
    body = {"name": "Database pages", "trigger_criticality": "HIGH", "trigger_event_types": ["incident.created"],
            "levels": [{"level": 1, "delay_minutes": 3, "channels": ["SMS"], "recipient_type": "ON_CALL"},
                       {"level": 2, "delay_minutes": 10, "channels": ["EMAIL"], "recipient_type": "USER",
                        "recipient_user_id": people["boss"].pk, "condition": "NOT_RESOLVED"}]}
    response = api.post("/api/v1/admin/escalation-chains/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["organization_id"] == organization.pk and [lvl["level"] for lvl in created["levels"]] == [1, 2]
    assert api.post("/api/v1/admin/escalation-chains/", body, format="json").status_code == 409  # same name
    audit = NotificationAuditLog.objects.get(action=AuditAction.CHANNEL_CONFIGURATION_CHANGED)
    assert audit.details["escalation_chain_id"] == created["id"] and audit.details["change"] == "created"

    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        assert escalation_start_for(notification_ids=[n.pk]) == 1
        clock.move_to(START + timedelta(minutes=4))
        assert escalations_advance().escalated == 1
    assert Notification.objects.get(recipient=people["oncall"], metadata__escalation_root_id=n.pk).deliveries.get().channel == "SMS"

    patched = api.patch(f"/api/v1/admin/escalation-chains/{created['id']}/", {"is_active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["is_active"] is False and len(patched.json()["levels"]) == 2
    assert api.delete(f"/api/v1/admin/escalation-chains/{created['id']}/").status_code == 204
    assert not EscalationChain.objects.filter(pk=created["id"]).exists()


@pytest.mark.parametrize("level, field", [
    ({"level": 1, "delay_minutes": 5, "channels": ["FAX"]}, "channels"),
    ({"level": 1, "delay_minutes": 5, "channels": ["SMS"], "recipient_type": "ROLE"}, "recipient_role"),
    ({"level": 1, "delay_minutes": 5, "channels": ["SMS"], "recipient_type": "USER"}, "recipient_user_id"),
    ({"level": 1, "delay_minutes": -1, "channels": ["SMS"]}, "delay_minutes"),
])
def test_escalation_chains_api_refuses_bad_levels_and_saves_nothing(organization, level, field):
    api = _admin_api(organization)
    response = api.post("/api/v1/admin/escalation-chains/", {"name": "Bad", "levels": [level]}, format="json")
    assert response.status_code == 400 and field in str(response.json())
    assert not EscalationChain.objects.exists()


def test_escalation_chains_api_is_scoped_to_the_organization(organization, people, other_user):
    from accounts.models import Membership

    api = _admin_api(organization)
    outsider_level = [{"level": 1, "delay_minutes": 5, "channels": ["SMS"], "recipient_type": "USER",
                       "recipient_user_id": other_user.pk}]
    refused = api.post("/api/v1/admin/escalation-chains/", {"name": "Leak", "levels": outsider_level}, format="json")
    assert refused.status_code == 400 and not EscalationChain.objects.exists()

    theirs_org = Membership.objects.get(user=other_user).organization
    theirs = EscalationChain.objects.create(organization=theirs_org, name="Theirs")
    platform = EscalationChain.objects.create(organization=None, name="Platform")
    listed = api.get("/api/v1/admin/escalation-chains/").json()
    assert [row["id"] for row in listed["results"]] == [platform.pk]
    assert api.get(f"/api/v1/admin/escalation-chains/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/v1/admin/escalation-chains/{theirs.pk}/", {"is_active": False}, format="json").status_code == 404
    assert api.delete(f"/api/v1/admin/escalation-chains/{platform.pk}/").status_code == 403
    member = APIClient()
    member.force_authenticate(people["responder"])
    assert member.get("/api/v1/admin/escalation-chains/").status_code == 403


def test_always_level_escalates_even_after_the_source_is_resolved(organization, people, chain,
                                                                  django_capture_on_commit_callbacks):
    chain.levels.filter(level=1).update(condition=EscalationCondition.ALWAYS)
    chain.levels.filter(level=2).update(condition=EscalationCondition.NOT_RESOLVED)
    with time_machine.travel(START, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        n = _incident(organization, people["responder"])
        escalation_start_for(notification_ids=[n.pk])
        make_notification(organization=organization, recipient=people["responder"], event_type="incident.resolved",
                          resource_type="incident", resource_id="INC-7")
        clock.move_to(START + timedelta(minutes=6))
        assert escalations_advance().escalated == 1  # ALWAYS: the on-call person is paged regardless
        clock.move_to(START + timedelta(minutes=17))
        report = escalations_advance()  # NOT_RESOLVED: stops here
    assert (report.escalated, report.stopped) == (0, 1)
    assert Notification.objects.filter(recipient=people["oncall"], metadata__escalation_root_id=n.pk).exists()
    assert not Notification.objects.filter(recipient=people["admin"], metadata__escalation_root_id=n.pk).exists()
