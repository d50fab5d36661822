"""Links that end in an href (inbox items, emails, push click actions): only http(s) or a path.

`javascript:`/`data:`/`vbscript:` links are refused where they enter — the REST intake, the AMQP
intake, the templates API and the admin — with a 400 naming the field and nothing saved; and a
row that holds one anyway (stored before the checks, or assembled by a template at render time)
is never rendered as a link: not by the inbox JS in a real Chromium, not in an email, not in a
push payload.
"""
from __future__ import annotations

import json

import pytest
import requests
from django.core import mail

from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationTemplate, TemplateChannel
from providers.models import ProviderOutbox
from tests.conftest import wait_until
from tests.notifications.intake_support import EVENT, intake_event_type, member
from tests.notifications.test_consumer import ConsumerThread, _dead_letters, _publish, bus  # noqa: F401 (fixture)
from tests.notifications.test_delivery_support import event_type_with_template, inbox_item, notification_with_deliveries

from .conftest import WatchedPage, login

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SCRIPT_LINKS = [
    "javascript:alert(document.cookie)",
    "  JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/phish",
]


@pytest.fixture
def intake(transactional_db, organization):
    intake_event_type()
    return member(organization)


def _post_event(live_server, api_key: str, body: dict) -> requests.Response:
    return requests.post(f"{live_server.url}/api/v1/events/", json=body, timeout=10,
                         headers={"Authorization": f"Api-Key {api_key}"})


@pytest.mark.parametrize("link", SCRIPT_LINKS)
def test_rest_intake_refuses_script_links_naming_the_field(live_server, api_key, intake, link):
    for body, path in (
        ({"data": {"action_url": link}}, ("data", "action_url")),
        ({"data": {"actionUrl": link}}, ("data", "actionUrl")),
        ({"data": {"inviteUrl": link}}, ("data", "inviteUrl")),
    ):
        answer = _post_event(live_server, api_key, {"type": EVENT, "recipient_ids": [str(intake.pk)], **body})
        assert answer.status_code == 400, answer.text
        detail = answer.json()
        assert path[1] in detail[path[0]], detail
    assert not Notification.objects.exists()


def test_python_intake_refuses_a_script_link_in_one_recipients_own_data(intake, organization):
    from common.exceptions import ValidationError
    from notifications.services import event_emit

    with pytest.raises(ValidationError) as refused:
        event_emit(organization=organization, type=EVENT, recipients=[
            {"email": "ok@example.com"}, {"email": "ada@example.com", "data": {"inviteUrl": "javascript:alert(1)"}}])
    assert "inviteUrl" in refused.value.detail["recipients"]["1"]["data"]
    with pytest.raises(ValidationError) as refused:
        event_emit(organization=organization, type=EVENT, recipient_ids=[intake.pk], action_url="data:text/html,x")
    assert "action_url" in refused.value.detail
    assert not Notification.objects.exists()


def test_rest_intake_keeps_http_links_and_paths(live_server, api_key, intake):
    for link in ("https://tasks.example/T-1", "http://intranet.example/x", "/tasks/T-1", "?tab=2"):
        answer = _post_event(live_server, api_key, {"type": EVENT, "recipient_ids": [str(intake.pk)], "data": {"action_url": link}})
        assert answer.status_code == 202, answer.text
        assert Notification.objects.get(pk=answer.json()["notifications"][0]["id"]).action_url == link


@pytest.mark.rabbitmq
def test_amqp_intake_dead_letters_a_script_link_with_its_field(bus, organization, intake):  # noqa: F811
    with ConsumerThread():
        _publish({"organization_id": organization.pk, "recipient_ids": [intake.pk],
                  "data": {"actionUrl": "javascript:alert(1)", "taskTitle": "x"}})
        [letter] = _dead_letters(1, timeout=30)
    envelope = json.loads(letter.body)
    assert envelope["reason"] == "validationerror" and "actionUrl" in json.dumps(envelope["error"])
    assert not Notification.objects.exists()


def test_templates_api_refuses_a_script_action_url(live_server, superuser, intake):
    session = requests.Session()
    session.get(f"{live_server.url}/accounts/login/")
    session.post(f"{live_server.url}/accounts/login/", data={"username": superuser.username, "password": "pass-word-123",
                                                            "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": live_server.url}
    before = NotificationTemplate.objects.count()
    for link in ("javascript:{{ task.title }}", "data:text/html,{{ task.title }}", "javascript:alert(1)"):
        answer = session.post(f"{live_server.url}/api/v1/admin/templates/", headers=headers, json={
            "event_type": EVENT, "name": "Evil", "channels": [
                {"channel": "IN_APP", "content": {"en": {"title": "t"}}, "action_url": link}],
        })
        assert answer.status_code == 400, answer.text
        assert "action_url" in str(answer.json()["channels"]), answer.text
    assert NotificationTemplate.objects.count() == before
    fine = session.post(f"{live_server.url}/api/v1/admin/templates/", headers=headers, json={
        "event_type": EVENT, "name": "Fine", "channels": [
            {"channel": "IN_APP", "content": {"en": {"title": "t"}}, "action_url": "https://tasks.example/{{ task.title }}"}],
    })
    assert fine.status_code == 201, fine.text


def test_admin_template_editor_refuses_a_script_action_url(client, superuser, intake):
    # The console's template editor saves through the same service as the API: a script link
    # is refused with the error on the page and nothing is written.
    template = NotificationTemplate.objects.create(key="evil.admin", event_type=EVENT, name="Evil")
    client.force_login(superuser)
    url = f"/admin/notifications/notificationtemplate/{template.pk}/change/"
    assert client.get(url).status_code == 200
    for link in ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "javascript:{{ task.title }}"):
        answer = client.post(url, {"name": "Evil", "default_criticality": "MEDIUM", "is_active": "on",
                                   "IN_APP__en__title": "t", "IN_APP__action_url": link, "IN_APP__extra": "{}"})
        assert answer.status_code == 400, link
        assert "action_url" in " ".join(answer.context["errors"]), answer.context["errors"]
    assert not TemplateChannel.objects.filter(template=template).exists()
    template.refresh_from_db()
    fine = client.post(url, {"name": "Evil", "default_criticality": "MEDIUM", "is_active": "on",
                             "IN_APP__en__title": "t", "IN_APP__action_url": "https://tasks.example/{{ task.title }}",
                             "IN_APP__extra": "{}"})
    assert fine.status_code == 302
    assert TemplateChannel.objects.get(template=template).action_url == "https://tasks.example/{{ task.title }}"


def test_a_stored_script_link_never_reaches_an_email_or_a_push(transactional_db, organization, user):
    """Rows written before intake checked links, and template variables filled with a script link."""
    event_type, template = event_type_with_template()
    TemplateChannel.objects.filter(template=template, channel=Channel.EMAIL).update(
        body_html_en='<p><a href="{{ action_url }}">Open</a> <a href="{{ task.title }}">{{ task.title }}</a>'
                     ' <a href="https://tasks.example/ok">ok</a></p>')
    TemplateChannel.objects.update_or_create(template=template, channel=Channel.PUSH, defaults={"title_en": "t", "body_en": "b"})
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.EMAIL, Channel.PUSH, Channel.IN_APP),
        data={"taskTitle": "javascript:alert(2)", "projectName": "Apollo"}, action_url="javascript:alert(1)",
    )
    TemplateChannel.objects.filter(template=template, channel=Channel.IN_APP).update(action_url="{{ task.title }}")
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    [email] = mail.outbox
    html = email.alternatives[0][0] if email.alternatives else ""
    # The script link is gone from every href (the text of a variable stays text).
    assert "href=\"javascript" not in html.lower() and '<a href="#">javascript:alert(2)</a>' in html, html
    assert 'href="https://tasks.example/ok"' in html and "alert(1)" not in html, html
    push = ProviderOutbox.objects.filter(channel=Channel.PUSH).values_list("payload", flat=True)
    assert push and all("javascript" not in json.dumps(p).lower() for p in push), list(push)
    notification.refresh_from_db()
    assert notification.action_url == ""
    assert all(d.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED) for d in notification.deliveries.all())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_inbox_never_renders_a_stored_script_link(browser, live_server, user, organization):
    event_type_with_template()
    evil = inbox_item(organization=organization, recipient=user, title="Click me", action_url="javascript:window.__pwned=1")
    data_row = inbox_item(organization=organization, recipient=user, title="Data link", action_url="data:text/html,<script>1</script>")
    fine = inbox_item(organization=organization, recipient=user, title="Real link", action_url="/inbox/?from=item")
    page = browser.new_page()
    page.set_default_timeout(20_000)
    watched = WatchedPage(page)
    login(page, live_server.url, user, "/inbox/")
    page.locator(f'#inbox-list li[data-id="{fine.pk}"]').wait_for()
    # Neither the API nor the page hands the browser a script link.
    listed = page.evaluate("fetch('/api/v1/notifications/', {credentials: 'same-origin'}).then(r => r.json())")
    assert {item["id"]: item["action_url"] for item in listed["results"]}[evil.pk] == ""
    assert page.locator('#inbox-list a[href^="javascript"], #inbox-list a[href^="data"]').count() == 0
    for row in (evil, data_row):
        title = page.locator(f'#inbox-list li[data-id="{row.pk}"] .inbox-title')
        assert title.evaluate("el => el.tagName") == "STRONG"
        title.click()
    assert page.evaluate("window.__pwned") is None
    assert page.url == f"{live_server.url}/inbox/"
    link = page.locator(f'#inbox-list li[data-id="{fine.pk}"] a.inbox-title')
    assert link.get_attribute("href") == f"{live_server.url}/inbox/?from=item"
    assert watched.violations() == []
