"""Template administration API: scoping, validation at save, preview with segments, test-send."""
from __future__ import annotations

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.enums import AuditAction, Channel
from notifications.models import NotificationAuditLog, NotificationTemplate, TemplateChannel
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .test_delivery_support import EVENT_KEY, event_type_with_template

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/admin/templates/"


def payload(**overrides):
    body = {
        "event_type": EVENT_KEY,
        "name": "Our task template",
        "channels": [
            {"channel": "EMAIL", "content": {
                "en": {"subject": "{{ task.title }} for you", "body": "Hello {{ recipient.name }}",
                       "body_html": "<p>{{ task.title }}</p>"},
                "fr": {"subject": "{{ task.title }} pour vous"}}},
            {"channel": "SMS", "content": {"en": {"body": "{{ actor.name }}: {{ task.title }} ({{ project.name }})"}}},
        ],
    }
    body.update(overrides)
    return body


@pytest.fixture
def global_template(db):
    return event_type_with_template()[1]


def test_org_admin_creates_an_override_and_sees_globals(auth_client, organization, global_template):
    response = auth_client.post(URL, payload(), format="json")
    assert response.status_code == 201, response.data
    created = response.data
    assert created["organization_id"] == organization.pk and created["scope"] == "ORGANIZATION"
    assert created["key"] == EVENT_KEY
    email_block = next(c for c in created["channels"] if c["channel"] == "EMAIL")
    assert email_block["content"]["fr"]["subject"] == "{{ task.title }} pour vous"
    assert NotificationAuditLog.objects.filter(template_id=created["id"], action=AuditAction.TEMPLATE_CREATED).exists()

    listed = auth_client.get(URL + f"?event_type={EVENT_KEY}").data["results"]
    assert {(t["id"], t["scope"]) for t in listed} == {(global_template.pk, "GLOBAL"), (created["id"], "ORGANIZATION")}
    # The same key twice in one organization is refused.
    assert auth_client.post(URL, payload(), format="json").status_code == 400


def test_unknown_variable_is_refused_and_nothing_is_saved(auth_client, global_template):
    body = payload()
    body["channels"][1]["content"]["en"]["body"] = "{{ task.title }} {{ task.owner.password }} {% load static %}"
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "SMS.en.body" in response.data
    assert NotificationTemplate.objects.filter(organization__isnull=False).count() == 0

    body["channels"][1]["content"]["en"]["body"] = "{{ task.owner.password }}"
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400 and "task.owner.password" in response.data["SMS.en.body"][0]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"event_type": "no.such.event"}, "event_type"),
        ({"channels": [{"channel": "FAX", "content": {"en": {"body": "x"}}}]}, "channels"),
        ({"channels": [{"channel": "SMS", "content": {"de": {"body": "x"}}}]}, "channels"),
        ({"channels": [{"channel": "SMS", "content": {"fr": {"body": "x"}}}]}, "channels"),
        ({"channels": [{"channel": "VOICE", "content": {"en": {"body": "x"}}}]}, "channels"),
    ],
)
def test_bad_input_is_a_clear_400(auth_client, global_template, change, field):
    response = auth_client.post(URL, payload(**change), format="json")
    assert response.status_code == 400 and field in response.data, response.data


def test_globals_are_read_only_for_org_admins_and_other_orgs_are_invisible(auth_client, global_template):
    assert auth_client.get(f"{URL}{global_template.pk}/").status_code == 200
    assert auth_client.patch(f"{URL}{global_template.pk}/", {"name": "Mine now"}, format="json").status_code == 403
    assert auth_client.delete(f"{URL}{global_template.pk}/").status_code == 403
    foreign = NotificationTemplate.objects.create(key="other", event_type=EVENT_KEY, name="x",
                                                  organization=OrganizationFactory())
    for call in (auth_client.get, auth_client.delete):
        assert call(f"{URL}{foreign.pk}/").status_code == 404
    assert auth_client.post(f"{URL}{foreign.pk}/preview/", {}, format="json").status_code == 404


def test_members_and_api_keys_cannot_administer_templates(organization, key_client, global_template):
    member = UserFactory()
    MembershipFactory(user=member, organization=organization, role=MembershipRole.MEMBER)
    client = APIClient()
    client.force_authenticate(member)
    assert client.get(URL).status_code == 403
    assert key_client.get(URL).status_code == 403


def test_update_validates_bumps_version_and_audits(auth_client, global_template):
    created = auth_client.post(URL, payload(), format="json").data
    bad = auth_client.patch(f"{URL}{created['id']}/", {"channels": [
        {"channel": "SMS", "content": {"en": {"body": "{{ nope }}"}}}]}, format="json")
    assert bad.status_code == 400
    response = auth_client.patch(f"{URL}{created['id']}/", {"name": "Renamed", "channels": [
        {"channel": "SMS", "content": {"en": {"body": "New: {{ task.title }}"}}}]}, format="json")
    assert response.status_code == 200
    assert response.data["name"] == "Renamed" and response.data["version"] == 2
    assert [c["channel"] for c in response.data["channels"]] == ["SMS"]
    assert TemplateChannel.objects.filter(template_id=created["id"]).count() == 1
    assert NotificationAuditLog.objects.filter(template_id=created["id"], action=AuditAction.TEMPLATE_CHANGED).exists()
    assert auth_client.delete(f"{URL}{created['id']}/").status_code == 204
    assert NotificationAuditLog.objects.filter(action=AuditAction.TEMPLATE_DELETED, details__template_id=created["id"]).exists()


def test_staff_edit_globals(global_template):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.patch(f"{URL}{global_template.pk}/", {"description": "Reviewed"}, format="json")
    assert response.status_code == 200 and response.data["description"] == "Reviewed"


def test_preview_renders_sample_data_locale_and_segments(auth_client, global_template):
    response = auth_client.post(f"{URL}{global_template.pk}/preview/", {
        "locale": "fr", "variables": {"task.title": "Réparer <la connexion>", "project.name": "Apollo"},
    }, format="json")
    assert response.status_code == 200
    by_channel = {c["channel"]: c for c in response.data["channels"]}
    assert by_channel["EMAIL"]["subject"] == "Nouvelle tâche : Réparer <la connexion>"
    assert "Réparer &lt;la connexion&gt;" in by_channel["EMAIL"]["body_html"]
    assert by_channel["IN_APP"]["action_url"] == "/tasks/4711"  # sample data chosen by the variable's name
    sms = by_channel["SMS"]
    assert sms["body"] == "Alex Martin assigned you Réparer <la connexion>"
    assert sms["sms"] == {"encoding": "GSM-7", "units": len(sms["body"]), "segments": 1, "characters": len(sms["body"])}

    long_text = auth_client.post(f"{URL}{global_template.pk}/preview/", {
        "channel": "SMS", "variables": {"task.title": "ç" * 80}}, format="json").data["channels"]
    assert [c["sms"]["encoding"] for c in long_text] == ["UCS-2"] and long_text[0]["sms"]["segments"] == 2
    bad = auth_client.post(f"{URL}{global_template.pk}/preview/", {"channel": "VOICE"}, format="json")
    assert bad.status_code == 400


def test_test_send_goes_to_the_caller(auth_client, user, global_template):
    response = auth_client.post(f"{URL}{global_template.pk}/test-send/", {
        "channel": "EMAIL", "variables": {"task.title": "Check the preview"}}, format="json")
    assert response.status_code == 200, response.data
    assert response.data["to"] == user.email and response.data["provider"] == "django_email"
    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "[Test] New task: Check the preview"
    assert auth_client.post(f"{URL}{global_template.pk}/test-send/", {"channel": "SMS"}, format="json").status_code == 400
    assert len(mail.outbox) == 1


def test_every_change_is_a_version_with_its_diff_and_an_older_one_can_be_restored(auth_client, user, global_template):
    created = auth_client.post(URL, payload(), format="json").data
    url = f"{URL}{created['id']}/"
    auth_client.patch(url, {"channels": [{"channel": "SMS", "content": {"en": {"body": "Now: {{ task.title }}"}}}]}, format="json")
    history = auth_client.get(url + "versions/").data
    assert history["current_version"] == 2
    assert [(v["version"], v["note"]) for v in history["results"]] == [(2, "Changed: channels"), (1, "Created")]
    changes = history["results"][0]["changes"]
    assert ["+", "SMS.en.body: Now: {{ task.title }}"] in [list(c) for c in changes]
    assert ["-", "EMAIL.en.subject: {{ task.title }} for you"] in [list(c) for c in changes]
    assert history["results"][0]["created_by"] == user.get_username()

    restored = auth_client.post(url + "versions/1/restore/")
    assert restored.status_code == 200, restored.data
    assert restored.data["version"] == 3
    assert {c["channel"] for c in restored.data["channels"]} == {"EMAIL", "SMS"}
    email = next(c for c in restored.data["channels"] if c["channel"] == "EMAIL")
    assert email["content"]["fr"]["subject"] == "{{ task.title }} pour vous"
    audit = NotificationAuditLog.objects.filter(template_id=created["id"], action=AuditAction.TEMPLATE_CHANGED).latest("pk")
    assert audit.details["note"] == "Restored version 1" and audit.details["version"] == 3
    assert auth_client.post(url + "versions/9/restore/").status_code == 400
    # Global templates stay read-only for an organization admin; another organization sees nothing.
    assert auth_client.post(f"{URL}{global_template.pk}/versions/1/restore/").status_code == 403
    outsider = APIClient()
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=OrganizationFactory(), role=MembershipRole.ADMIN)
    outsider.force_authenticate(stranger)
    assert outsider.get(url + "versions/").status_code in (403, 404)
    assert outsider.post(url + "versions/1/restore/").status_code in (403, 404)
    assert NotificationTemplate.objects.get(pk=created["id"]).version == 3


def test_a_shipped_template_keeps_its_original_as_the_first_version(global_template):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_authenticate(staff)
    client.patch(f"{URL}{global_template.pk}/", {"description": "Reviewed"}, format="json")
    results = client.get(f"{URL}{global_template.pk}/versions/").data["results"]
    assert [(v["version"], v["note"]) for v in results] == [(2, "Changed: description"), (1, "Before the first recorded change")]


def test_a_templates_channel_options_are_checked_when_it_is_saved(auth_client, global_template):
    body = payload()
    body["channels"][1]["extra"] = {"max_segments": "two", "colour": "red"}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert set(response.data["channels"]["SMS"]["extra"]) == {"max_segments", "colour"}
    assert NotificationTemplate.objects.filter(organization__isnull=False).count() == 0

    body["channels"][1]["extra"] = {"max_segments": 2, "from": "ACME"}
    body["channels"][0]["extra"] = {"track_clicks": False, "cc": ["lead@example.com"]}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 201, response.data
    template = NotificationTemplate.objects.get(organization__isnull=False)
    assert TemplateChannel.objects.get(template=template, channel=Channel.SMS).extra == {"max_segments": 2, "from": "ACME"}
