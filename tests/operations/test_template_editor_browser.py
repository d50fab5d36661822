"""The template editor in Chromium: edit a text and the preview follows (SMS segments, email
HTML in a sandboxed frame), a test send reaches the operator's mailbox through the platform's
email provider, a save is a new version, and an older version comes back from the history."""
from __future__ import annotations

import pytest
from django.core import mail

from notifications.models import NotificationTemplate, TemplateVersion
from tests.notifications.test_delivery_support import event_type_with_template
from tests.operations.test_console_browser import _signed_in_page, browser  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_edit_preview_test_send_save_and_restore(browser, live_server, tmp_path):  # noqa: F811
    _event_type, template = event_type_with_template()
    page, refused, errors = _signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/admin/notifications/notificationtemplate/{template.pk}/change/")
    editor = page.locator("#template-editor")
    preview = page.locator("#preview-channels")
    preview.locator("[data-preview-channel='SMS']").wait_for()

    # The SMS preview follows the text as it is typed: one segment, then two.
    sms_body = editor.locator("textarea[name='SMS__en__body']")
    sms_body.fill("{{ actor.name }}: {{ task.title }} " + "x" * 150)
    segments = preview.locator("[data-preview-channel='SMS'] .tpl-segments")
    page.wait_for_function("document.querySelector(\"[data-preview-channel='SMS'] .tpl-segments\").dataset.segments === '2'")
    assert segments.inner_text().startswith("2 segments · GSM-7")
    assert preview.locator("[data-preview-channel='SMS'] .tpl-body").inner_text().startswith("Alex Martin: Prepare the quarterly report x")

    # Email HTML is drawn in a frame that runs nothing; the edit shows up inside it.
    editor.locator("details[data-channel='EMAIL'] textarea[name='EMAIL__en__body_html']").fill(
        "<h1>Hello {{ recipient.name }}</h1><p>{{ task.title }} is yours.</p>")
    frame = preview.locator("[data-preview-channel='EMAIL'] iframe")
    page.wait_for_function(
        "(document.querySelector(\"[data-preview-channel='EMAIL'] iframe\") || {}).srcdoc?.includes('is yours')")
    assert frame.get_attribute("sandbox") == ""
    assert page.frame_locator("[data-preview-channel='EMAIL'] iframe").locator("h1").inner_text() == "Hello operator"

    # The French tab: the other language's fields, and the preview in French.
    editor.locator("[data-locale-tab='fr']").click()
    assert editor.locator("input[name='EMAIL__fr__subject']").is_visible()
    assert not editor.locator("input[name='EMAIL__en__subject']").is_visible()
    page.wait_for_function(
        "(document.querySelector(\"[data-preview-channel='EMAIL'] .tpl-subject\") || {}).textContent?.startsWith('Nouvelle tâche')")
    editor.locator("[data-locale-tab='en']").click()

    # A test send of the unsaved email, to the operator, through the platform's email provider.
    editor.locator("input[name='EMAIL__en__subject']").fill("Edited: {{ task.title }}")
    editor.locator("button[data-test-send='EMAIL']").click()
    result = page.locator("#test-send-result")
    page.wait_for_function("document.getElementById('test-send-result').textContent.startsWith('Test EMAIL sent')")
    assert "ops@example.com" in result.inner_text()
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and message.subject == "[Test] Edited: Prepare the quarterly report"
    html = next(body for body, kind in message.alternatives if kind == "text/html")
    assert "<h1>Hello operator</h1>" in html

    # Save: version 2, with its diff in the history.
    editor.locator("button[type=submit]", has_text="Save as a new version").click()
    page.locator("[data-current-version]", has_text="2").wait_for()
    template.refresh_from_db()
    assert template.version == 2 and template.channels.get(channel="EMAIL").subject_en == "Edited: {{ task.title }}"
    newest = page.locator("#template-history details[data-version='2']")
    newest.locator("summary").click()
    assert newest.locator("tr.diff-add", has_text="EMAIL.en.subject: Edited: {{ task.title }}").count() == 1
    assert newest.locator("tr.diff-del", has_text="EMAIL.en.subject: New task: {{ task.title }}").count() == 1
    page.screenshot(path=str(tmp_path / "template-editor.png"), full_page=True)

    # Restore version 1: it comes back as version 3.
    first = page.locator("#template-history details[data-version='1']")
    first.locator("summary").click()
    first.locator("button[data-restore='1']").click()
    page.locator("[data-current-version]", has_text="3").wait_for()
    assert editor.locator("input[name='EMAIL__en__subject']").input_value() == "New task: {{ task.title }}"
    template = NotificationTemplate.objects.get(pk=template.pk)
    assert template.version == 3 and template.channels.get(channel="EMAIL").subject_en == "New task: {{ task.title }}"
    assert TemplateVersion.objects.get(template=template, version=3).note == "Restored version 1"
    assert refused == [] and errors == []
