"""Builders shared by the delivery, inbox, SSE and template tests (no tests here)."""
from __future__ import annotations

from typing import Any

from notifications.enums import Channel, DeliveryStatus, EventCategory, NotificationStatus
from notifications.models import EventType, Notification, NotificationDelivery, NotificationTemplate, TemplateChannel

EVENT_KEY = "test.task_assigned"
MAPPING = {"task.title": "data.taskTitle", "task.id": "resourceId", "project.name": "data.projectName"}


def event_type_with_template(*, key: str = EVENT_KEY, organization=None) -> tuple[EventType, NotificationTemplate]:
    event_type, _ = EventType.objects.update_or_create(
        key=key,
        defaults=dict(
            name="Task assigned (test)", category=EventCategory.PROJECT_MANAGEMENT,
            default_channels=[Channel.IN_APP, Channel.EMAIL],
            allowed_channels=[Channel.IN_APP, Channel.EMAIL, Channel.SMS, Channel.PUSH],
            variable_mapping=MAPPING,
        ),
    )
    template, _ = NotificationTemplate.objects.update_or_create(
        key=key, organization=organization,
        defaults=dict(event_type=key, name="Task assigned", variables=sorted(MAPPING)),
    )
    TemplateChannel.objects.update_or_create(
        template=template, channel=Channel.IN_APP,
        defaults=dict(title_en="{{ actor.name }} assigned you {{ task.title }}", body_en="In {{ project.name }}.",
                      title_fr="{{ actor.name }} vous a assigné {{ task.title }}", body_fr="",
                      action_url="/tasks/{{ task.id }}"),
    )
    TemplateChannel.objects.update_or_create(
        template=template, channel=Channel.EMAIL,
        defaults=dict(subject_en="New task: {{ task.title }}", title_en="New task",
                      body_en="Hi {{ recipient.name }}, {{ actor.name }} assigned you {{ task.title }}.",
                      body_html_en="<p>Hi {{ recipient.name }}, <b>{{ actor.name }}</b> assigned you {{ task.title }}.</p>",
                      subject_fr="Nouvelle tâche : {{ task.title }}"),
    )
    TemplateChannel.objects.update_or_create(
        template=template, channel=Channel.SMS,
        defaults=dict(body_en="{{ actor.name }} assigned you {{ task.title }}"),
    )
    return event_type, template


def notification_with_deliveries(
    *, organization, recipient=None, channels: tuple[str, ...] = (Channel.IN_APP,), event_type: str = EVENT_KEY,
    data: dict[str, Any] | None = None, delivery_status: str = DeliveryStatus.PENDING, **fields: Any,
) -> tuple[Notification, list[NotificationDelivery]]:
    notification = Notification.objects.create(
        organization=organization, recipient=recipient, event_type=event_type,
        category=EventCategory.PROJECT_MANAGEMENT, actor_name="Alice", resource_type="task", resource_id="T-1",
        data=data if data is not None else {"taskTitle": "Fix <login>", "projectName": "Apollo"},
        channels_requested=list(channels), status=NotificationStatus.PROCESSING, **fields,
    )
    deliveries = []
    for channel in channels:
        address = ""
        if channel == Channel.EMAIL:
            address = recipient.email if recipient else fields.get("recipient_email", "")
        elif channel in (Channel.SMS, Channel.WHATSAPP, Channel.VOICE):
            address = (recipient.phone if recipient else "") or "+14155550100"
        elif recipient is not None:
            address = str(recipient.pk)
        deliveries.append(NotificationDelivery(notification=notification, organization=organization, channel=channel,
                                               status=delivery_status, recipient_address=address))
    deliveries = NotificationDelivery.objects.bulk_create(deliveries)
    return notification, deliveries


def users_bulk(count: int, **fields: Any) -> list:
    """Users without password hashing (fast), for fan-out sized tests."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    start = User.objects.count()
    unusable = make_password(None)
    return User.objects.bulk_create([
        User(username=f"bulk{start + i}-{id(fields)}", email=f"bulk{start + i}-{id(fields)}@example.com",
             display_name=f"Bulk {i}", password=unusable, **fields)
        for i in range(count)
    ])


def inbox_item(*, organization, recipient, **fields: Any) -> Notification:
    """A notification already delivered in-app (what the inbox shows)."""
    notification, _ = notification_with_deliveries(
        organization=organization, recipient=recipient, channels=(Channel.IN_APP,),
        delivery_status=DeliveryStatus.DELIVERED, **fields,
    )
    return notification
