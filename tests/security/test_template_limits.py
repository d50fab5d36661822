"""Template rendering is bounded: loop iterations, output size and filter widths.

A template that shows it breaks the limits is refused when saved (API and admin); one that only
breaks them with the data it meets fails that one delivery, permanently and quickly, and the
rest of the batch goes out.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from django.core import mail
from rest_framework.authtoken.models import Token

from accounts.services import api_key_create
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery, NotificationTemplate, TemplateChannel

from ..factories import UserFactory
from ..notifications.intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SEVEN_LOOPS = "".join(f'{{% for v{i} in "abcdefghij" %}}' for i in range(7)) + "x" + "{% endfor %}" * 7
THREE_WIDE_LOOPS = ("{% for a in \"x\"|ljust:\"1000\" %}{% for b in \"x\"|ljust:\"1000\" %}{% for c in \"x\"|ljust:\"1000\" %}"
                    "y{% endfor %}{% endfor %}{% endfor %}")
HUGE_PAD = '{{ "x"|ljust:"100000000" }}'
DOUBLING = "{% with a=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" %}" + "".join(
    "{% with a=a|add:a %}" for _ in range(20)) + "{{ a }}" + "{% endwith %}" * 21


@pytest.fixture
def event_type(transactional_db):
    et = intake_event_type(default_channels=[Channel.EMAIL], allowed_channels=[Channel.EMAIL])
    et.variable_mapping = {"task.title": "data.taskTitle", "task.items": "data.items"}
    et.save(update_fields=["variable_mapping"])
    return et


@pytest.fixture
def admin_http(user):
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
    return http


@pytest.mark.parametrize(("body", "reason"), [
    (SEVEN_LOOPS, "nested 7 deep"),
    (THREE_WIDE_LOOPS, "loop iterations"),
    (HUGE_PAD, "widths up to"),
    (DOUBLING, "characters"),
])
def test_a_template_breaking_the_limits_is_refused_by_the_api(live_server, admin_http, event_type, body, reason):
    started = time.monotonic()
    answer = admin_http.post(f"{live_server.url}/api/v1/admin/templates/", json={
        "key": "greedy", "name": "Greedy", "event_type": event_type.key,
        "channels": [{"channel": "EMAIL", "content": {"en": {"subject": "Hi", "body": body}}}],
    }, timeout=30)
    assert answer.status_code == 400, answer.text
    assert reason in answer.text
    assert time.monotonic() - started < 5
    assert not NotificationTemplate.objects.filter(key="greedy").exists()


def test_a_template_breaking_the_limits_is_refused_by_the_admin(client, event_type):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    template = NotificationTemplate.objects.create(key="admin-greedy", name="Greedy", event_type=event_type.key)
    answer = client.post("/admin/notifications/templatechannel/add/", {
        "template": template.pk, "channel": Channel.EMAIL, "subject_en": "Hi", "body_en": SEVEN_LOOPS, "extra": "{}",
    })
    assert answer.status_code == 200
    assert "nested 7 deep" in answer.content.decode()
    assert not TemplateChannel.objects.filter(template=template).exists()


def test_a_template_that_explodes_on_its_data_fails_only_that_delivery(live_server, organization, event_type, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Saved before the limits existed (straight to the table): loops over the event's own list.
    template = NotificationTemplate.objects.create(key=event_type.template_key or EVENT, name="Task", event_type=event_type.key)
    TemplateChannel.objects.create(
        template=template, channel=Channel.EMAIL, subject="Task {{ task.title }}",
        body="{% for a in task.items %}{% for b in task.items %}{% for c in task.items %}{{ task.title }}"
             "{% endfor %}{% endfor %}{% endfor %}",
    )
    _, raw = api_key_create(organization=organization, name="limits")
    http = requests.Session()
    http.headers.update({"Authorization": f"Api-Key {raw}", "Content-Type": "application/json"})
    greedy, modest = member(organization), member(organization)

    started = time.monotonic()
    answer = http.post(f"{live_server.url}/api/v1/events/", timeout=60, data=json.dumps({
        "type": EVENT, "recipient_ids": [greedy.pk], "data": {"taskTitle": "x" * 50, "items": list(range(200))},
    }))
    assert answer.status_code == 202, answer.text
    elapsed = time.monotonic() - started
    answer = http.post(f"{live_server.url}/api/v1/events/", timeout=60, data=json.dumps({
        "type": EVENT, "recipient_ids": [modest.pk], "data": {"taskTitle": "small", "items": [1, 2]},
    }))
    assert answer.status_code == 202

    failed = NotificationDelivery.objects.get(notification__recipient=greedy, channel=Channel.EMAIL)
    assert failed.status == DeliveryStatus.FAILED and failed.next_retry_at is None and failed.attempts == 1
    assert "loop iterations" in failed.error
    sent = NotificationDelivery.objects.get(notification__recipient=modest, channel=Channel.EMAIL)
    assert sent.status == DeliveryStatus.SENT
    assert [m.to for m in mail.outbox] == [[modest.email]]
    assert mail.outbox[0].body == "small" * 8
    assert elapsed < 5  # 200**3 iterations would take minutes; the cap stops it at once
