"""Digests: collecting into the open batch, sending due batches (notifications.engine.digest)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from notifications.engine.digest import DigestItem, digest_collect, digest_next_send_at, digests_send_due
from notifications.enums import (
    BatchFrequency,
    BatchStatus,
    Channel,
    Criticality,
    DeliveryStatus,
    EventCategory,
)
from notifications.models import Notification, NotificationBatch, NotificationDelivery

from .test_retry_support import make_notification

UTC = ZoneInfo("UTC")
NOW = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)  # a Tuesday


def _item(n: Notification, frequency: str = BatchFrequency.DAILY, channel: str = Channel.EMAIL) -> DigestItem:
    delivery = NotificationDelivery(notification=n, organization_id=n.organization_id, channel=channel,
                                    status=DeliveryStatus.PENDING, recipient_address=n.recipient_email)
    return DigestItem(delivery=delivery, user_id=n.recipient_id, frequency=frequency, criticality=n.criticality,
                      timezone="America/New_York")


def test_next_send_time_is_the_users_local_hour():
    ny = "America/New_York"
    assert digest_next_send_at(frequency=BatchFrequency.HOURLY, now=NOW, timezone_name=ny) == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    # 10:20 in New York (EDT, UTC-4): 08:00 has passed today → tomorrow 08:00 local = 12:00 UTC.
    assert digest_next_send_at(frequency=BatchFrequency.DAILY, now=NOW, timezone_name=ny, hour=8) == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    assert digest_next_send_at(frequency=BatchFrequency.DAILY, now=NOW, timezone_name=ny, hour=18) == datetime(2026, 3, 10, 22, 0, tzinfo=UTC)
    # Weekly on Monday 09:00 local.
    assert digest_next_send_at(frequency=BatchFrequency.WEEKLY, now=NOW, timezone_name=ny, hour=9, day_of_week=0) == datetime(2026, 3, 16, 13, 0, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db
def test_collect_then_send_one_digest_grouped_by_category(organization, user, django_capture_on_commit_callbacks):
    with time_machine.travel(NOW, tick=False) as clock:
        task = make_notification(organization=organization, recipient=user, title="Fix login")
        comment = make_notification(organization=organization, recipient=user, title="New comment",
                                    category=EventCategory.COLLABORATION, event_type="comment.created")
        other = make_notification(organization=organization, recipient=user, title="Deploy done")
        critical = make_notification(organization=organization, recipient=user, title="Prod down",
                                     criticality=Criticality.CRITICAL)
        items = [_item(task), _item(comment), _item(other), _item(critical)]
        collected = digest_collect(organization_id=organization.pk, items=items)
        assert len(collected) == 3  # CRITICAL never waits for a digest
        assert items[3].delivery.status == DeliveryStatus.PENDING and items[3].delivery.batch_id is None
        NotificationDelivery.objects.bulk_create([i.delivery for i in items])
        batch = NotificationBatch.objects.get()
        assert {i.delivery.batch_id for i in items[:3]} == {batch.pk}
        assert batch.scheduled_for == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)

        clock.move_to(batch.scheduled_for - timedelta(minutes=1))
        assert digests_send_due() == {"sent": 0, "cancelled": 0}
        clock.move_to(batch.scheduled_for + timedelta(minutes=2))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert digests_send_due() == {"sent": 1, "cancelled": 0}
        assert len(callbacks) == 1
        assert digests_send_due() == {"sent": 0, "cancelled": 0}  # sent once
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SENT and batch.notification_count == 3
    digest = Notification.objects.get(event_type="notification.digest")
    assert digest.title == "Your daily digest: 3 notifications"
    body = digest.body
    assert body.index("Collaboration (1)") < body.index("Project management (2)")
    assert "- Fix login" in body and "- Deploy done" in body and "Prod down" not in body
    assert "<h2" in digest.body_html
    delivery = digest.deliveries.get()
    assert (delivery.channel, delivery.status, delivery.batch_id) == (Channel.EMAIL, DeliveryStatus.PENDING, batch.pk)


@pytest.mark.postgres
@pytest.mark.django_db
def test_empty_batch_sends_nothing(organization, user):
    with time_machine.travel(NOW, tick=False) as clock:
        n = make_notification(organization=organization, recipient=user)
        item = _item(n, frequency=BatchFrequency.HOURLY)
        digest_collect(organization_id=organization.pk, items=[item])
        # The collected delivery never got saved (or was removed): the batch is empty.
        clock.move_to(NOW + timedelta(hours=1, minutes=1))
        assert digests_send_due() == {"sent": 0, "cancelled": 1}
    assert NotificationBatch.objects.get().status == BatchStatus.CANCELLED
    assert not Notification.objects.filter(event_type="notification.digest").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_in_the_same_second_share_one_batch(organization, user):
    """Eight concurrent intakes for the same user and channel open exactly one batch."""
    notifications = [make_notification(organization=organization, recipient=user, title=f"n{i}") for i in range(8)]
    barrier = threading.Barrier(len(notifications))
    errors: list[BaseException] = []

    def intake(n: Notification) -> None:
        try:
            barrier.wait()
            item = _item(n)
            digest_collect(organization_id=organization.pk, items=[item])
            NotificationDelivery.objects.bulk_create([item.delivery])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=intake, args=(n,)) for n in notifications]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    batch = NotificationBatch.objects.get(status=BatchStatus.OPEN)
    assert NotificationDelivery.objects.filter(batch=batch, status=DeliveryStatus.DIGESTED).count() == 8


@pytest.mark.postgres
@pytest.mark.django_db
def test_event_emit_collects_digest_channels_and_never_critical(organization, user, django_capture_on_commit_callbacks):
    from notifications.enums import DigestFrequency, NotificationStatus, PreferenceLevel
    from notifications.models import ChannelPreference, NotificationPreference
    from notifications.services import event_emit

    pref = NotificationPreference.objects.create(level=PreferenceLevel.USER, user=user, organization=organization)
    ChannelPreference.objects.create(preference=pref, channel=Channel.EMAIL, digest_frequency=DigestFrequency.HOURLY)
    with django_capture_on_commit_callbacks(execute=False):
        first = event_emit(organization=organization, type="task.assigned", recipient_ids=[str(user.pk)],
                           channels=[Channel.EMAIL], data={"taskTitle": "Fix login"})
        second = event_emit(organization=organization, type="task.assigned", recipient_ids=[str(user.pk)],
                            channels=[Channel.EMAIL], data={"taskTitle": "Write docs"})
        urgent = event_emit(organization=organization, type="task.assigned", recipient_ids=[str(user.pk)],
                            channels=[Channel.EMAIL], criticality=Criticality.CRITICAL, data={"taskTitle": "Prod"})
    batch = NotificationBatch.objects.get(status=BatchStatus.OPEN)
    for result in (first, second):
        n = Notification.objects.get(pk=result.notifications[0][0])
        assert n.status == NotificationStatus.DIGESTED
        assert n.deliveries.get().batch_id == batch.pk
    n = Notification.objects.get(pk=urgent.notifications[0][0])
    assert n.deliveries.get().status == DeliveryStatus.PENDING and n.deliveries.get().batch_id is None


@pytest.mark.postgres
@pytest.mark.django_db
def test_weekly_digest_at_the_hour_and_day_the_user_chose(organization, user, auth_client, django_capture_on_commit_callbacks):
    """The user picks weekly, Friday 18:00 in their own time zone, through the preferences API."""
    from notifications.enums import DigestFrequency, NotificationStatus
    from notifications.services import event_emit

    user.timezone = "America/New_York"
    user.save(update_fields=["timezone"])
    bad = auth_client.put("/api/v1/preferences/", [{"channels": {"EMAIL": {"digest_hour": 24}}}], format="json")
    assert bad.status_code == 400
    response = auth_client.put("/api/v1/preferences/", [{"channels": {"EMAIL": {
        "digest_frequency": DigestFrequency.WEEKLY, "digest_hour": 18, "digest_day_of_week": 4}}}], format="json")
    assert response.status_code == 200, response.content

    with time_machine.travel(NOW, tick=False) as clock:  # Tuesday 10:20 in New York
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            for title in ("Fix login", "Write docs"):
                event_emit(organization=organization, type="task.assigned", recipient_ids=[str(user.pk)],
                           channels=[Channel.EMAIL], data={"taskTitle": title})
        assert callbacks == []  # collected, not sent
        batch = NotificationBatch.objects.get(status=BatchStatus.OPEN)
        friday_6pm = datetime(2026, 3, 13, 18, 0, tzinfo=ZoneInfo("America/New_York"))
        assert batch.scheduled_for == friday_6pm
        clock.move_to(friday_6pm - timedelta(minutes=5))
        assert digests_send_due() == {"sent": 0, "cancelled": 0}
        clock.move_to(friday_6pm + timedelta(minutes=1))
        with django_capture_on_commit_callbacks(execute=False):
            assert digests_send_due() == {"sent": 1, "cancelled": 0}
    digest = Notification.objects.get(event_type="notification.digest")
    assert digest.title == "Your weekly digest: 2 notifications" and digest.status == NotificationStatus.PROCESSING
    assert digest.deliveries.get().channel == Channel.EMAIL
