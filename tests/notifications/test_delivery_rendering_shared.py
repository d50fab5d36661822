"""A batch renders each template block once per distinct set of values it reads: the
recipients of one event share one rendering, while what differs per recipient (their name)
still differs in every message."""
from __future__ import annotations

import pytest
from django.core import mail

from notifications.engine import rendering
from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel
from notifications.models import NotificationDelivery

from .test_delivery_support import event_type_with_template, notification_with_deliveries, users_bulk

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_one_rendering_per_distinct_values_read_and_each_recipient_keeps_their_name(organization, monkeypatch):
    event_type_with_template()
    calls = []
    real = rendering.content_render

    def counting(*, contents, context):
        calls.append(contents.get("body") or "")
        return real(contents=contents, context=context)

    monkeypatch.setattr(rendering, "content_render", counting)
    users = users_bulk(12)
    ids = []
    for i, user in enumerate(users):
        user.display_name = f"Reader {i}"
        user.phone = f"+1415555{2000 + i:04d}"
        user.save(update_fields=["display_name", "phone"])
        # Two projects: the SMS block reads task.title only, so the project does not split it.
        _, rows = notification_with_deliveries(
            organization=organization, recipient=user, channels=(Channel.EMAIL, Channel.SMS),
            data={"taskTitle": "Fix <login>" if i % 2 else "Ship it", "projectName": f"P{i % 3}"},
        )
        ids += [d.pk for d in rows]

    report = deliver_batch(delivery_ids=ids)

    assert report.sent == 24
    sms_renders = [c for c in calls if "{{ recipient.name }}" not in c]
    email_renders = [c for c in calls if "{{ recipient.name }}" in c]
    assert len(sms_renders) == 2  # two task titles
    assert len(email_renders) == 12  # the email reads the recipient's name: one per recipient
    bodies = {m.to[0]: m.body for m in mail.outbox}
    for i, user in enumerate(users):
        assert bodies[user.email].startswith(f"Hi {user.get_spoken_name()},")
    sms = {d.recipient_address: d.rendered["body"] for d in NotificationDelivery.objects.filter(pk__in=ids, channel=Channel.SMS)}
    assert sms[users[0].phone] == "Alice assigned you Ship it"
    assert sms[users[1].phone] == "Alice assigned you Fix <login>"
