"""bulk_insert: the COPY path of the fan-out writes exactly what bulk_create would."""
from __future__ import annotations

import uuid

import pytest

from notifications.engine.bulk import bulk_insert
from notifications.enums import Channel, Criticality, DeliveryStatus, EventCategory, NotificationStatus
from notifications.models import Notification, NotificationDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _notifications(organization, user, count: int) -> list[Notification]:
    return [
        Notification(
            organization=organization, recipient=user if i % 2 == 0 else None,
            recipient_email="" if i % 2 == 0 else f"guest{i}@example.com",
            event_type="task.assigned", category=EventCategory.PROJECT_MANAGEMENT, criticality=Criticality.HIGH,
            title=f"Tab\there, newline\nthere, backslash \\ #{i}", body="Ünïcode ✓ and 'quotes' \"too\"",
            data={"taskTitle": f"T-{i}", "nested": {"list": [1, None, "x\ty"]}},
            channels_requested=[Channel.IN_APP, Channel.EMAIL], status=NotificationStatus.PENDING,
            trace={"IN_APP": {"used": True}},
        )
        for i in range(count)
    ]


def test_rows_ids_and_related_ids_are_written_like_bulk_create(organization, user):
    notifications = _notifications(organization, user, 3)
    bulk_insert(Notification, notifications)
    assert all(n.pk for n in notifications) and len({n.pk for n in notifications}) == 3
    assert [n.pk for n in notifications] == sorted(n.pk for n in notifications)
    assert not notifications[0]._state.adding

    # Deliveries point at notifications through the instance, as bulk_create allows.
    deliveries = [
        NotificationDelivery(notification=n, organization=organization, channel=Channel.EMAIL,
                             status=DeliveryStatus.PENDING, recipient_address="a@example.com")
        for n in notifications
    ]
    bulk_insert(NotificationDelivery, deliveries)

    stored = Notification.objects.order_by("pk")
    assert [n.pk for n in stored] == [n.pk for n in notifications]
    first = stored[0]
    assert first.title == "Tab\there, newline\nthere, backslash \\ #0"
    assert first.body == "Ünïcode ✓ and 'quotes' \"too\""
    assert first.data == {"taskTitle": "T-0", "nested": {"list": [1, None, "x\ty"]}}
    assert first.channels_requested == ["IN_APP", "EMAIL"] and first.trace == {"IN_APP": {"used": True}}
    # TextChoices are stored by value; defaults (uuid, auto timestamps) are filled in.
    assert first.criticality == "HIGH" and first.status == "PENDING"
    assert isinstance(first.event_id, uuid.UUID) and first.created_at is not None and first.updated_at is not None
    assert stored[1].recipient_id is None and stored[1].recipient_email == "guest1@example.com"
    assert first.recipient_id == user.pk
    assert sorted(NotificationDelivery.objects.values_list("notification_id", flat=True)) == [n.pk for n in notifications]
    # Later ORM inserts keep using the sequence: no id collision with the rows written by COPY.
    later = Notification.objects.create(organization=organization, recipient=user, event_type="x", category="SECURITY")
    assert later.pk > notifications[-1].pk


def test_a_thousand_rows_cost_the_same_round_trips_as_ten(organization, user, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # ids from the sequence, then one COPY
        bulk_insert(Notification, _notifications(organization, user, 10))
    with django_assert_max_num_queries(2):
        bulk_insert(Notification, _notifications(organization, user, 1000))
    assert Notification.objects.count() == 1010
