"""Privilege: `is_staff` alone is not platform administration, environment references in
provider secrets only from an allowlist, /outbox/ only in development or for superusers, and a
member removed from an organization loses its powers there at once. Driven over HTTP against
the live server; each attack shows nothing changed."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import ApiKey, Membership, MembershipRole
from accounts.services import api_key_create
from invitations.models import StoryInvitation
from narrations.services import story_create
from notifications.engine.escalation import escalation_start_for, escalations_advance
from notifications.enums import Channel, Criticality, EscalationRecipientType
from notifications.models import EscalationChain, EscalationLevel, Notification, NotificationDelivery
from providers.models import NotificationProvider
from providers.secrets import resolve_credentials
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.notifications.intake_support import EVENT, intake_event_type, member
from tests.notifications.test_retry_support import make_delivery, make_notification

from .conftest import PASSWORD

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _session(live_server, user) -> requests.Session:
    """A browser-like session signed in through the login page (cookies and CSRF as sent)."""
    session = requests.Session()
    session.get(f"{live_server.url}/accounts/login/", timeout=10)
    answer = session.post(f"{live_server.url}/accounts/login/", timeout=10, allow_redirects=False, data={
        "username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert answer.status_code == 302, answer.text[:200]
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": live_server.url})
    return session


@pytest.fixture
def victim(db):
    """Another organization, with a member and a provider record of its own."""
    organization = OrganizationFactory()
    person = UserFactory()
    MembershipFactory(user=person, organization=organization, role=MembershipRole.OWNER)
    NotificationProvider.objects.create(organization=organization, code="log_email", channel=Channel.EMAIL, name="Theirs")
    NotificationProvider.objects.create(organization=None, code="log_sms", channel=Channel.SMS, name="Platform SMS")
    return organization, person


@pytest.fixture
def staff_member(organization):
    """A plain member of `organization` who also has the admin's staff flag (and nothing else)."""
    person = UserFactory(is_staff=True)
    MembershipFactory(user=person, organization=organization, role=MembershipRole.MEMBER)
    return person


# --- is_staff is not platform administration ----------------------------------------------------


def test_staff_flag_alone_has_no_platform_wide_api_powers(live_server, staff_member, victim):
    intake_event_type()
    their_org, their_person = victim
    session = _session(live_server, staff_member)
    before = (Notification.objects.count(), NotificationProvider.objects.count())
    base = f"{live_server.url}/api/v1"
    attempts = {
        "list every provider": session.get(f"{base}/admin/providers/"),
        "create a global provider": session.post(f"{base}/admin/providers/", json={"code": "log_push", "name": "x"}),
        "edit their provider": session.patch(
            f"{base}/admin/providers/{NotificationProvider.objects.get(organization=their_org).pk}/", json={"name": "mine"}),
        "send events to their people": session.post(f"{base}/events/", json={
            "type": EVENT, "organization_id": str(their_org.pk), "recipient_ids": [str(their_person.pk)]}),
        "read their audit log": session.get(f"{base}/admin/audit-log/?organization={their_org.pk}"),
        "read their deliveries": session.get(f"{base}/admin/deliveries/?organization={their_org.pk}"),
        "read their webhooks": session.get(f"{base}/admin/webhooks/?organization={their_org.pk}"),
        "write a global template": session.post(f"{base}/admin/templates/", json={
            "event_type": EVENT, "name": "x", "scope": "GLOBAL", "channels": [{"channel": "IN_APP", "content": {"en": {"title": "t"}}}]}),
        "act for their organization": session.get(f"{base}/admin/providers/", headers={"X-Organization": their_org.slug}),
        "write their escalation chains": session.post(f"{base}/admin/escalation-chains/", json={
            "name": "x", "organization_id": their_org.pk, "levels": [{"level": 0, "delay_minutes": 0, "channels": ["IN_APP"]}]}),
    }
    for what, answer in attempts.items():
        assert answer.status_code in (403, 404), (what, answer.status_code, answer.text[:200])
    assert (Notification.objects.count(), NotificationProvider.objects.count()) == before
    assert NotificationProvider.objects.get(organization=their_org).name == "Theirs"


def test_superusers_and_the_explicit_permission_keep_platform_powers(live_server, victim, staff_member):
    intake_event_type()
    their_org, their_person = victim
    granted = UserFactory(is_staff=True)
    granted.user_permissions.add(Permission.objects.get(codename="administer_platform", content_type__app_label="accounts"))
    superuser = UserFactory(is_staff=True, is_superuser=True)
    for person in (granted, superuser):
        session = _session(live_server, person)
        listed = session.get(f"{live_server.url}/api/v1/admin/providers/")
        assert listed.status_code == 200 and {r["name"] for r in listed.json()["results"]} >= {"Theirs", "Platform SMS"}
        sent = session.post(f"{live_server.url}/api/v1/events/", json={
            "type": EVENT, "organization_id": str(their_org.pk), "recipient_ids": [str(their_person.pk)]})
        assert sent.status_code == 202, sent.text


# --- environment references in provider secrets ---------------------------------------------------


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS", "HOME"])
def test_provider_secrets_reference_only_allowlisted_variables(live_server, settings, variable, monkeypatch):
    settings.PROVIDER_SECRET_ENV_ALLOWLIST = ["ACME_SENDGRID_KEY", "SECRET_KEY", "DATABASE_URL"]  # the platform's own stay refused
    monkeypatch.setenv("ACME_SENDGRID_KEY", "SG.from-the-allowlist-0000")
    session = _session(live_server, UserFactory(is_staff=True, is_superuser=True))
    refused = session.post(f"{live_server.url}/api/v1/admin/providers/", json={
        "code": "sendgrid", "name": "Platform", "secret_env_refs": {"api_key": variable}})
    assert refused.status_code == 400 and variable in str(refused.json()["secret_env_refs"]), refused.text
    assert not NotificationProvider.objects.exists()
    allowed = session.post(f"{live_server.url}/api/v1/admin/providers/", json={
        "code": "sendgrid", "name": "Platform", "secret_env_refs": {"api_key": "ACME_SENDGRID_KEY"}})
    assert allowed.status_code == 201, allowed.text
    record = NotificationProvider.objects.get()
    assert resolve_credentials(record)["api_key"] == "SG.from-the-allowlist-0000"
    patched = session.patch(f"{live_server.url}/api/v1/admin/providers/{record.pk}/", json={"secret_env_refs": {"api_key": variable}})
    assert patched.status_code == 400
    record.refresh_from_db()
    assert record.secret_env_refs == {"api_key": "ACME_SENDGRID_KEY"}


def test_a_stored_reference_to_a_platform_secret_resolves_nothing(db, settings, monkeypatch):
    settings.PROVIDER_SECRET_ENV_ALLOWLIST = []
    record = NotificationProvider.objects.create(code="sendgrid", channel=Channel.EMAIL, name="Old",
                                                 secret_env_refs={"api_key": "SECRET_KEY", "other": "DATABASE_URL"})
    monkeypatch.setenv("SECRET_KEY", "the-platform-signing-key")
    assert "the-platform-signing-key" not in str(resolve_credentials(record))


def test_admin_provider_form_refuses_a_platform_secret_reference(client, settings):
    settings.PROVIDER_SECRET_ENV_ALLOWLIST = []
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    answer = client.post("/admin/providers/notificationprovider/add/", {
        "code": "sendgrid", "channel": "EMAIL", "name": "Platform", "priority": "0", "config": "{}",
        "secret_env_refs": '{"api_key": "SECRET_KEY"}', "new_secrets": ""})
    assert answer.status_code == 200 and "secret_env_refs" in answer.context["adminform"].form.errors
    assert not NotificationProvider.objects.exists()


# --- /outbox/ ---------------------------------------------------------------------------------------


def test_outbox_only_in_development_or_for_superusers(live_server, settings, staff_member):
    settings.DEBUG = False
    assert requests.get(f"{live_server.url}/outbox/", allow_redirects=False).status_code == 404
    assert _session(live_server, staff_member).get(f"{live_server.url}/outbox/", allow_redirects=False).status_code == 404
    superuser = _session(live_server, UserFactory(is_staff=True, is_superuser=True))
    assert superuser.get(f"{live_server.url}/outbox/", allow_redirects=False).status_code == 200
    settings.DEBUG = True
    assert _session(live_server, staff_member).get(f"{live_server.url}/outbox/", allow_redirects=False).status_code == 200
    plain = UserFactory()
    assert _session(live_server, plain).get(f"{live_server.url}/outbox/", allow_redirects=False).status_code == 404


# --- a removed member loses its powers at once ---------------------------------------------------


def test_removed_member_can_no_longer_invite_under_the_organization(live_server, user, organization, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"
    story = story_create(owner=user, title="Ours", content="Once upon a time.", organization=organization)
    session = _session(live_server, user)
    body = {"invitations": [{"email": "ada@example.com", "conversation_style": "jovial"}]}
    assert session.post(f"{live_server.url}/api/v1/stories/{story.pk}/invitations/", json=body).status_code == 201
    Membership.objects.filter(user=user, organization=organization).delete()
    body = {"invitations": [{"email": "bob@example.com", "conversation_style": "jovial"}]}
    answer = session.post(f"{live_server.url}/api/v1/stories/{story.pk}/invitations/", json=body)
    assert answer.status_code == 403, answer.text
    assert list(StoryInvitation.objects.values_list("invitee_email", flat=True)) == ["ada@example.com"]


def test_api_key_of_a_removed_member_stops_at_once(live_server, organization):
    intake_event_type()
    creator, colleague = member(organization), member(organization)
    Membership.objects.filter(user=creator).update(role=MembershipRole.ADMIN)
    _, raw = api_key_create(organization=organization, name="ci", created_by=creator)
    _, legacy_raw = api_key_create(organization=organization, name="older", created_by=creator)
    headers = {"Authorization": f"Api-Key {raw}"}
    event = {"type": EVENT, "recipient_ids": [str(colleague.pk)]}
    assert requests.post(f"{live_server.url}/api/v1/events/", json=event, headers=headers).status_code == 202
    # Removed through the Django admin, as an operator would.
    operator = _session(live_server, UserFactory(is_staff=True, is_superuser=True))
    membership = Membership.objects.get(user=creator, organization=organization)
    removed = operator.post(f"{live_server.url}/admin/accounts/membership/{membership.pk}/delete/", data={
        "post": "yes", "csrfmiddlewaretoken": operator.cookies["csrftoken"]}, allow_redirects=False)
    assert removed.status_code == 302 and not Membership.objects.filter(pk=membership.pk).exists()
    count = Notification.objects.count()
    refused = requests.post(f"{live_server.url}/api/v1/events/", json=event, headers=headers)
    assert refused.status_code in (401, 403), refused.text
    assert ApiKey.objects.get(key_hash__isnull=False, name="ci").revoked_at is not None
    # A key left unrevoked (removed before revocation existed) is refused all the same.
    ApiKey.objects.filter(name="older").update(revoked_at=None)
    stale = requests.post(f"{live_server.url}/api/v1/events/", json=event, headers={"Authorization": f"Api-Key {legacy_raw}"})
    assert stale.status_code in (401, 403) and "no longer a member" in stale.text
    assert Notification.objects.count() == count
    # Coming back does not revive the revoked key.
    MembershipFactory(user=creator, organization=organization)
    assert requests.post(f"{live_server.url}/api/v1/events/", json=event, headers=headers).status_code in (401, 403)


def test_removed_admin_session_no_longer_acts_for_the_organization(live_server, user, organization):
    NotificationProvider.objects.create(organization=organization, code="log_email", channel=Channel.EMAIL, name="Ours")
    session = _session(live_server, user)
    assert session.get(f"{live_server.url}/api/v1/admin/providers/", headers={"X-Organization": organization.slug}).status_code == 200
    Membership.objects.filter(user=user).delete()
    for headers in ({"X-Organization": organization.slug}, {}):
        assert session.get(f"{live_server.url}/api/v1/admin/providers/", headers=headers).status_code == 403
        assert session.patch(f"{live_server.url}/api/v1/admin/providers/{NotificationProvider.objects.get().pk}/",
                             json={"name": "still mine"}, headers=headers).status_code in (403, 404)
    assert NotificationProvider.objects.get().name == "Ours"


def test_removed_member_cannot_acknowledge_the_organizations_incident(live_server, organization):
    responder = member(organization)
    incident = make_notification(organization=organization, recipient=responder, event_type="incident.created",
                                 criticality=Criticality.CRITICAL, title="Database down")
    make_delivery(incident, Channel.IN_APP, status="DELIVERED")
    session = _session(live_server, responder)
    Membership.objects.filter(user=responder).delete()
    answer = session.post(f"{live_server.url}/api/v1/notifications/{incident.pk}/acknowledge/")
    assert answer.status_code == 403, answer.text
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_escalation_skips_people_removed_since_the_chain_named_them(organization):
    responder, boss, deputy = member(organization), member(organization), member(organization)
    chain = EscalationChain.objects.create(organization=organization, name="Incidents", trigger_criticality=Criticality.CRITICAL,
                                           trigger_event_types=["incident.created"])
    EscalationLevel.objects.create(chain=chain, level=0, delay_minutes=0, channels=[Channel.IN_APP])
    EscalationLevel.objects.create(chain=chain, level=1, delay_minutes=5, channels=[Channel.EMAIL],
                                   recipient_type=EscalationRecipientType.USER, recipient_user=boss)
    EscalationLevel.objects.create(chain=chain, level=2, delay_minutes=5, channels=[Channel.EMAIL],
                                   recipient_type=EscalationRecipientType.USER, recipient_user=deputy)
    EscalationLevel.objects.create(chain=chain, level=3, delay_minutes=5, channels=[Channel.EMAIL],
                                   recipient_type=EscalationRecipientType.ORIGINAL)
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        incident = make_notification(organization=organization, recipient=responder, event_type="incident.created",
                                     criticality=Criticality.CRITICAL, title="Database down")
        make_delivery(incident, Channel.EMAIL, status="SENT")
        assert escalation_start_for(notification_ids=[incident.pk]) == 1
        Membership.objects.filter(user__in=[boss, responder]).delete()  # both leave before level 1 fires
        for minutes in (5, 10, 15):
            clock.move_to(start + timedelta(minutes=minutes, seconds=1))
            escalations_advance()
    reached = set(NotificationDelivery.objects.filter(notification__recipient__in=[boss, deputy, responder])
                  .values_list("notification__recipient_id", "escalation_level"))
    assert (deputy.pk, 2) in reached
    assert not any(uid == boss.pk for uid, _ in reached), reached
    assert (responder.pk, 3) not in reached
    incident.refresh_from_db()
    notes = incident.trace["escalation"]
    skipped = {(note["level"], s["user_id"], s["reason"]) for note in notes for s in note.get("skipped", [])}
    assert skipped == {(1, boss.pk, "no longer a member of the organization"),
                       (3, responder.pk, "no longer a member of the organization")}, notes


def test_removed_members_ack_link_sms_or_voice_no_longer_stops_the_escalation(live_server, settings, organization):
    from common.exceptions import PermissionDenied
    from notifications.engine.ack import AckSource, ack_link_url, notification_acknowledge

    settings.SITE_URL = live_server.url
    responder = member(organization)
    incident = make_notification(organization=organization, recipient=responder, event_type="incident.created",
                                 criticality=Criticality.CRITICAL, title="Database down")
    link = ack_link_url(notification_id=incident.pk)
    Membership.objects.filter(user=responder).delete()
    page = requests.Session()
    form = page.get(link)
    assert form.status_code == 200
    answer = page.post(link, data={"csrfmiddlewaretoken": page.cookies["csrftoken"]}, headers={"Referer": link})
    assert answer.status_code == 403 and "no longer a member" in answer.text
    for source in (AckSource.SMS, AckSource.VOICE, AckSource.INBOX):
        with pytest.raises(PermissionDenied):
            notification_acknowledge(notification_id=incident.pk, source=source)
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    # An organization admin still can, for the organization.
    notification_acknowledge(notification_id=incident.pk, source=AckSource.ADMIN, user_id=member(organization, role="admin").pk)
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
