"""Data for the console tests: deliveries on several channels and providers, with latencies,
failures, a held one and a dead letter; two providers with health history, one circuit open;
two weeks of costs. (No tests here.)"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from notifications.enums import Channel, DeliveryStatus, NotificationStatus
from notifications.models import DeadLetter, NotificationDelivery
from providers.models import ProviderCostDaily, ProviderHealthMetric
from tests.providers.factories import DeliveryFactory, NotificationFactory


def console_world(organization) -> dict:
    from providers.resilience import CircuitBreaker, CircuitPolicy
    from providers.selectors import binding_for_record
    from providers.services import provider_create

    now = timezone.now()
    rows = []
    # EMAIL: 8 sent (latency 1..8 s), 2 failed; SMS: 3 sent via the backup, 1 held; 2 PUSH sent 3 days ago.
    for i in range(8):
        rows.append(DeliveryFactory(notification__organization=organization, channel=Channel.EMAIL, provider="log_email",
                                    status=DeliveryStatus.SENT))
    for _ in range(2):
        rows.append(DeliveryFactory(notification__organization=organization, channel=Channel.EMAIL, provider="log_email",
                                    status=DeliveryStatus.FAILED))
    for _ in range(3):
        rows.append(DeliveryFactory(notification__organization=organization, channel=Channel.SMS, provider="log_sms",
                                    status=DeliveryStatus.SENT))
    held = DeliveryFactory(notification__organization=organization, channel=Channel.SMS, provider="", status=DeliveryStatus.HELD)
    old_push = [DeliveryFactory(notification__organization=organization, channel=Channel.PUSH, provider="log_push",
                                status=DeliveryStatus.SENT) for _ in range(2)]
    for i, row in enumerate(rows):
        created = now - timedelta(hours=2, seconds=i)
        sent = created + timedelta(seconds=i % 8 + 1) if row.status == DeliveryStatus.SENT else None
        NotificationDelivery.objects.filter(pk=row.pk).update(created_at=created, sent_at=sent)
    for row in old_push:
        NotificationDelivery.objects.filter(pk=row.pk).update(created_at=now - timedelta(days=3),
                                                              sent_at=now - timedelta(days=3) + timedelta(seconds=2))
    DeadLetter.objects.create(organization=organization, delivery=rows[8], channel=Channel.EMAIL, reason="exhausted")
    NotificationFactory(organization=organization, status=NotificationStatus.SCHEDULED, scheduled_for=now + timedelta(hours=5))

    primary = provider_create(organization_id=organization.pk, code="log_sms", name="SMS primary", priority=0, config={}, secrets={})
    backup = provider_create(organization_id=None, code="log_sms", name="SMS backup", priority=1, config={}, secrets={})
    binding = binding_for_record(primary)
    breaker = CircuitBreaker(binding.key, CircuitPolicy.for_config(binding.config))
    for _ in range(20):
        breaker.record_failure()
    for i in range(12):
        ProviderHealthMetric.objects.create(provider=primary, provider_code="log_sms", channel=Channel.SMS,
                                            checked_at=now - timedelta(minutes=5 * (12 - i)), is_healthy=i < 8,
                                            response_time_ms=40 + 10 * i)
        ProviderHealthMetric.objects.create(provider=backup, provider_code="log_sms", channel=Channel.SMS,
                                            checked_at=now - timedelta(minutes=5 * (12 - i)), is_healthy=True,
                                            response_time_ms=30 + (i % 3) * 5)
    today = timezone.localdate(now)
    for d in range(14):
        ProviderCostDaily.objects.create(provider=backup, provider_code="log_sms", channel=Channel.SMS, currency="EUR",
                                         date=today - timedelta(days=d), total_messages=10 + d,
                                         total_cost=Decimal("0.0750") * (10 + d))
    return {"primary": primary, "backup": backup, "held": held, "now": now}
