"""List-Unsubscribe end to end: the delivery engine sends a real email to an SMTP server, the
one-click link in its header is POSTed the way mail clients do (RFC 8058), and the user's own
preference row turns that channel off for the notification's category."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from notifications.engine.delivery import deliver_batch
from notifications.engine.preferences import preferences_effective
from notifications.enums import AuditAction, Channel, DeliveryStatus, EventCategory, PreferenceLevel
from notifications.models import ChannelPreference, NotificationAuditLog
from tests.notifications.test_delivery_support import event_type_with_template, notification_with_deliveries

from .test_email import smtp_server  # noqa: F401 — the aiosmtpd fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_link_in_the_email_header_turns_the_users_email_off_for_that_category(smtp_server, make_provider, organization, user):  # noqa: F811
    make_provider("smtp", config={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "no-reply@troubadour.test"})
    event_type_with_template()
    notification, (delivery,) = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,))

    deliver_batch(delivery_ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    ((_, _, message),) = smtp_server.messages
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(https://troubadour\.test(/u/[^>]+/))>", str(message["List-Unsubscribe"]).strip())
    assert url, message["List-Unsubscribe"]
    path = url.group(2)

    # a link scanner's GET changes nothing; the mail client's one-click POST does, without any session
    assert Client().get(path).status_code == 200 and not ChannelPreference.objects.exists()
    response = Client(enforce_csrf_checks=True).post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200

    row = ChannelPreference.objects.select_related("preference").get()
    assert (row.channel, row.enabled) == (Channel.EMAIL, False)
    assert (row.preference.level, row.preference.user_id, row.preference.category) == (
        PreferenceLevel.USER, user.pk, EventCategory.PROJECT_MANAGEMENT)
    assert NotificationAuditLog.objects.filter(action=AuditAction.PREFERENCE_CHANGED, user_id=user.pk).count() == 1

    effective = {c["category"]: c["channels"] for c in preferences_effective(user_id=user.pk, organization_id=organization.pk,
                                                                              event_types=[])["categories"]}
    assert effective[EventCategory.PROJECT_MANAGEMENT][Channel.EMAIL]["enabled"] is False
    assert effective[EventCategory.PROJECT_MANAGEMENT][Channel.EMAIL]["level"] == PreferenceLevel.USER
    assert effective[EventCategory.SECURITY][Channel.EMAIL]["enabled"] is True  # other categories untouched
