"""The console's template editor, through the Django test client: saving goes through the
template service (validated, versioned, audited), the preview renders unsaved content with the
event type's sample data, a test send reaches the operator, and an older version comes back."""
from __future__ import annotations

import pytest
from django.core import mail

from notifications.enums import AuditAction
from notifications.models import NotificationAuditLog, TemplateChannel, TemplateVersion
from tests.factories import UserFactory
from tests.notifications.test_delivery_support import event_type_with_template

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def staff_client(client):
    operator = UserFactory(is_staff=True, is_superuser=True, email="ops@example.com", phone="+15555550123")
    client.force_login(operator)
    client.operator = operator
    return client


@pytest.fixture
def template(db):
    return event_type_with_template()[1]


def _form(template, **changes) -> dict[str, str]:
    data = {"name": template.name, "description": "", "default_criticality": "MEDIUM", "is_active": "on", "sample": "",
            "preview_locale": "en"}
    for block in TemplateChannel.objects.filter(template=template):
        for lang in ("en", "fr"):
            for name in ("subject", "title", "body", "body_html", "action_label"):
                data[f"{block.channel}__{lang}__{name}"] = getattr(block, f"{name}_{lang}") or ""
        data[f"{block.channel}__action_url"] = block.action_url
    data.update(changes)
    return data


def _url(template, tail: str = "change/") -> str:
    return f"/admin/notifications/notificationtemplate/{template.pk}/{tail}"


def test_the_change_page_is_the_editor_with_tabs_blocks_and_sample_data(staff_client, template):
    page = staff_client.get(_url(template)).content.decode()
    assert 'data-locale-tab="en"' in page and 'data-locale-tab="fr"' in page
    for channel in ("EMAIL", "SMS", "IN_APP"):
        assert f'data-channel="{channel}"' in page
    assert 'name="EMAIL__fr__subject" value="Nouvelle tâche : {{ task.title }}"' in page
    assert "admin_console/template_editor.js" in page and "<script>" not in page  # no inline script
    assert "&quot;task.title&quot;: &quot;Prepare the quarterly report&quot;" in page  # sample data of the event type


def test_saving_goes_through_the_service_and_a_bad_variable_saves_nothing(staff_client, template):
    bad = staff_client.post(_url(template), _form(template, SMS__en__body="{{ task.secret }}"))
    assert bad.status_code == 400 and "Unknown variable" in bad.content.decode()
    assert TemplateVersion.objects.count() == 0 and template.channels.get(channel="SMS").body_en != "{{ task.secret }}"

    saved = staff_client.post(_url(template), _form(template, SMS__en__body="Now: {{ task.title }}", IN_APP__en__title="",
                                                   IN_APP__fr__title="", IN_APP__en__body="", IN_APP__action_url=""))
    assert saved.status_code == 302
    template.refresh_from_db()
    assert template.version == 2
    assert template.channels.get(channel="SMS").body_en == "Now: {{ task.title }}"
    assert not template.channels.filter(channel="IN_APP").exists()  # emptied: the channel is removed
    assert list(TemplateVersion.objects.filter(template=template).values_list("version", flat=True)) == [2, 1]
    audit = NotificationAuditLog.objects.get(template=template, action=AuditAction.TEMPLATE_CHANGED)
    assert audit.details["source"] == "admin" and audit.user_id == staff_client.operator.pk


def test_preview_renders_the_unsaved_form_with_segments_and_html(staff_client, template):
    response = staff_client.post(_url(template, "editor/preview/"), _form(
        template, SMS__en__body="{{ task.title }} " + "x" * 150, preview_locale="fr", sample='{"task.title": "Fix <login>"}'))
    assert response.status_code == 200, response.content
    by_channel = {c["channel"]: c for c in response.json()["channels"]}
    assert by_channel["SMS"]["sms"]["segments"] == 2 and by_channel["SMS"]["body"].startswith("Fix <login> x")
    assert by_channel["EMAIL"]["subject"] == "Nouvelle tâche : Fix <login>" and by_channel["EMAIL"]["locale"] == "fr"
    assert "Fix &lt;login&gt;" in by_channel["EMAIL"]["body_html"]  # English HTML is the fallback, escaped
    refused = staff_client.post(_url(template, "editor/preview/"), _form(template, EMAIL__en__subject="{% load static %}"))
    assert refused.status_code == 400 and refused.json()["errors"]
    assert staff_client.post(_url(template, "editor/preview/"), _form(template, sample="[1]")).status_code == 400


def test_test_send_delivers_the_unsaved_content_to_the_operator(staff_client, template):
    response = staff_client.post(_url(template, "editor/test-send/"),
                                 _form(template, EMAIL__en__subject="Check {{ task.title }}", test_channel="EMAIL"))
    assert response.status_code == 200, response.content
    assert response.json()["to"] == "ops@example.com"
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and message.subject == "[Test] Check Prepare the quarterly report"
    assert staff_client.post(_url(template, "editor/test-send/"), _form(template, test_channel="IN_APP")).status_code == 400
    assert len(mail.outbox) == 1


def test_restore_brings_an_older_version_back_as_a_new_one(staff_client, template):
    staff_client.post(_url(template), _form(template, EMAIL__en__subject="Changed {{ task.title }}"))
    page = staff_client.get(_url(template)).content.decode()
    assert "EMAIL.en.subject: Changed {{ task.title }}" in page and "Restore version 1" in page
    assert staff_client.get(_url(template, "versions/1/restore/")).status_code == 302  # a GET changes nothing
    template.refresh_from_db()
    assert template.version == 2
    response = staff_client.post(_url(template, "versions/1/restore/"))
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.version == 3 and template.channels.get(channel="EMAIL").subject_en == "New task: {{ task.title }}"
    assert TemplateVersion.objects.get(template=template, version=3).note == "Restored version 1"


def test_staff_without_change_permission_cannot_use_the_editor(client, template):
    viewer = UserFactory(is_staff=True)
    client.force_login(viewer)
    for tail in ("change/", "editor/preview/", "editor/test-send/", "versions/1/restore/"):
        assert client.post(_url(template, tail), _form(template, test_channel="EMAIL")).status_code == 403, tail
    assert len(mail.outbox) == 0
