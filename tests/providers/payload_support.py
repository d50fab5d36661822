"""Builders for the payload tests: an event type with a template for every channel, an event
triggered through the intake facade, and its deliveries sent by the delivery engine."""
from __future__ import annotations

from typing import Any

from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel, DeliveryStatus, EventCategory
from notifications.models import EventType, NotificationDelivery, NotificationTemplate, TemplateChannel
from notifications.services import event_emit

EVENT = "test.payload.deploy"
LATENCY = 0.05  # seconds each provider peer takes to answer, as a real API does
ALL = [Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WHATSAPP, Channel.VOICE]


def payload_event_type(*, extra: dict[str, dict[str, Any]] | None = None) -> NotificationTemplate:
    EventType.objects.update_or_create(key=EVENT, defaults=dict(
        name="Deploy finished (test)", category=EventCategory.SYSTEM_ADMIN, default_channels=[Channel.IN_APP],
        allowed_channels=ALL, variable_mapping={"deploy.name": "data.deployName", "deploy.id": "resourceId"},
    ))
    template, _ = NotificationTemplate.objects.update_or_create(
        key=EVENT, organization=None, defaults=dict(event_type=EVENT, name="Deploy", variables=["deploy.name", "deploy.id"]))
    bodies = {Channel.EMAIL: dict(subject_en="Deploy {{ deploy.name }}", body_html_en="<p>Deploy {{ deploy.name }} finished.</p>")}
    for channel in ALL:
        TemplateChannel.objects.update_or_create(template=template, channel=channel, defaults=dict(
            title_en="Deploy {{ deploy.name }}", body_en="Deploy {{ deploy.name }} finished.",
            extra=(extra or {}).get(channel, {}), **bodies.get(channel, {})))
    return template


def trigger(*, organization, user, channels: list[str], options: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None, send: bool = True):
    """Emit the event to `user` on `channels` and run the delivery engine on its deliveries."""
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=channels,
                        data={"deployName": "apollo-7", **(data or {})}, resource={"id": "D-7", "type": "deploy"},
                        channel_options=options or {})
    deliveries = NotificationDelivery.objects.filter(notification_id__in=[n[0] for n in result.notifications])
    if send:
        deliver_batch(delivery_ids=[d.pk for d in deliveries if d.status == DeliveryStatus.PENDING])
    return {d.channel: d for d in NotificationDelivery.objects.filter(pk__in=[d.pk for d in deliveries])}
