"""A worker killed after the provider accepted a message but before the batch was recorded:
the next run records the journaled message as sent instead of sending it again."""
import pytest

from notifications.engine.delivery import delivery_claim_batch, deliver_batch
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from providers.base import OutboundMessage
from providers.journal import journal_lookup, send_journaled
from providers.models import ProviderOutbox
from providers.registry import registry

from ..factories import UserFactory
from .test_delivery_support import event_type_with_template, notification_with_deliveries

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_journaled_sends_are_recorded_not_resent(organization):
    event_type_with_template()
    user = UserFactory(phone="+14155550123")
    _, first = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.SMS,))
    _, second = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.SMS,))
    ids = [first[0].pk, second[0].pk]

    # A first worker claims both rows and gets the first message out, then dies before recording.
    assert delivery_claim_batch(delivery_ids=ids) == ids
    provider = registry.get("log_sms")()
    message = OutboundMessage(channel=Channel.SMS, to=user.phone, text="hello", idempotency_key=str(first[0].pk))
    results = send_journaled(provider, [message])
    assert results[0].provider_message_id
    assert set(journal_lookup(keys=[str(pk) for pk in ids])) == {str(first[0].pk)}
    sent_before = ProviderOutbox.objects.count()
    # The sweeper hands the stuck claims back.
    NotificationDelivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING)

    report = deliver_batch(delivery_ids=ids)

    assert report.sent == 2
    # Only the message that never left was sent now.
    assert ProviderOutbox.objects.count() == sent_before + 1
    recovered = NotificationDelivery.objects.get(pk=first[0].pk)
    assert recovered.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    assert recovered.provider_message_id == results[0].provider_message_id
    assert recovered.provider_response == {"recovered_from_send_journal": True}
    assert NotificationDelivery.objects.get(pk=second[0].pk).status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def test_journal_keys_name_the_database_so_two_databases_sharing_one_redis_never_collide(organization):
    from django.core.cache import cache
    from django.db import connection

    from providers.base import SendResult
    from providers.journal import journal_record

    message = OutboundMessage(channel=Channel.SMS, to="+14155550123", text="hello", idempotency_key="4242")
    journal_record(provider_code="log_sms", messages=[message], results=[SendResult(provider_message_id="SM1")])
    name = connection.settings_dict["NAME"]
    assert cache.get(f"sendjournal:{name}:4242")["provider_message_id"] == "SM1"
    assert set(journal_lookup(keys=["4242"])) == {"4242"}

    # Another database's delivery 4242 is another message: its worker finds nothing journaled.
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = f"{original}_other"
    try:
        assert journal_lookup(keys=["4242"]) == {}
    finally:
        connection.settings_dict["NAME"] = original
    assert set(journal_lookup(keys=["4242"])) == {"4242"}
