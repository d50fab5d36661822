"""Per-recipient `data` and `resource` on bare recipients: one event, each recipient its own link."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.exceptions import ValidationError
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationDelivery
from notifications.services import event_emit
from providers.models import ProviderOutbox

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

EVENT = "story.invitation"  # shipped by the catalog; its link is data.inviteUrl


def _recipient(i: int, **extra) -> dict:
    return {
        "email": f"guest{i}@example.com",
        "data": {"inviteUrl": f"https://troubadour.example/i/token-{i}", "message": f"Only for guest {i}"},
        "resource": {"id": f"inv-{i}"},
        **extra,
    }


def test_each_recipient_gets_its_own_data_merged_over_the_event(phone_consent, organization, settings, mailoutbox, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        result = event_emit(
            organization=organization, type=EVENT, channels=[Channel.EMAIL, Channel.SMS],
            recipients=[_recipient(0), _recipient(1, phone="+14155550101"), {"email": "plain@example.com"}],
            resource={"type": "story_invitation", "name": "The Lighthouse"},
            data={"inviterName": "Ada", "storyTitle": "The Lighthouse", "message": "For everyone"},
        )
    rows = {n.recipient_email: n for n in Notification.objects.filter(event_id=result.event_id)}
    assert rows["guest0@example.com"].data == {
        "inviterName": "Ada", "storyTitle": "The Lighthouse", "message": "Only for guest 0",
        "inviteUrl": "https://troubadour.example/i/token-0",
    }
    assert rows["guest0@example.com"].body == "Only for guest 0"
    assert (rows["guest1@example.com"].resource_type, rows["guest1@example.com"].resource_id,
            rows["guest1@example.com"].resource_name) == ("story_invitation", "inv-1", "The Lighthouse")
    # A recipient without an override keeps the event's own data and resource.
    plain = rows["plain@example.com"]
    assert plain.data == {"inviterName": "Ada", "storyTitle": "The Lighthouse", "message": "For everyone"}
    assert (plain.resource_type, plain.resource_id) == ("story_invitation", "")

    # Rendering reads the recipient's own values: each email carries its own link only.
    mails = {m.to[0]: m.body for m in mailoutbox}
    assert "https://troubadour.example/i/token-0" in mails["guest0@example.com"]
    assert "token-1" not in mails["guest0@example.com"]
    assert "https://troubadour.example/i/token-1" in mails["guest1@example.com"]
    sms = ProviderOutbox.objects.get(channel=Channel.SMS)
    assert sms.to == "+14155550101" and "https://troubadour.example/i/token-1" in sms.text
    assert NotificationDelivery.objects.filter(notification__event_id=result.event_id, channel=Channel.EMAIL,
                                               status=DeliveryStatus.SENT).count() == 3


def test_a_non_object_override_is_refused_and_nothing_saved(organization):
    with pytest.raises(ValidationError) as exc:
        event_emit(
            organization=organization, type=EVENT,
            recipients=[_recipient(0), {"email": "b@example.com", "data": ["x"]}, {"email": "c@example.com", "resource": "r"}],
        )
    assert exc.value.detail["recipients"] == {"1": {"data": ["Expected an object."]}, "2": {"resource": ["Expected an object."]}}
    assert not Notification.objects.exists()


def test_overrides_keep_the_query_count_flat(organization, django_capture_on_commit_callbacks):
    def emit(n: int, offset: int) -> int:
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
            event_emit(organization=organization, type=EVENT, channels=[Channel.EMAIL],
                       recipients=[_recipient(offset + i) for i in range(n)], data={"storyTitle": "T"})
        return len(queries)

    assert emit(3, 0) + 1 == emit(300, 1000)  # over 100 recipients: one INSERT for the batch job
    assert Notification.objects.filter(resource_id="inv-1299").exists()
