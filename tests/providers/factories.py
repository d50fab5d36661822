import factory

from notifications.enums import Channel, DeliveryStatus, EventCategory
from notifications.models import Notification, NotificationDelivery
from tests.factories import OrganizationFactory, UserFactory


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    organization = factory.SubFactory(OrganizationFactory)
    recipient = factory.SubFactory(UserFactory)
    event_type = "task.assigned"
    category = EventCategory.PROJECT_MANAGEMENT
    title = "Task assigned"
    body = "You have a new task."


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationDelivery

    notification = factory.SubFactory(NotificationFactory)
    organization = factory.LazyAttribute(lambda o: o.notification.organization)
    channel = Channel.EMAIL
    status = DeliveryStatus.SENT
    recipient_address = factory.LazyAttribute(lambda o: o.notification.recipient.email)
    provider = "sendgrid"
    provider_message_id = factory.Sequence(lambda n: f"msg-{n}")
