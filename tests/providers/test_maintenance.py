"""The provider layer's beat work: delivery status polling, health checks of every provider
and the daily cost table — each run through the task beat schedules."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.beat import BEAT_SCHEDULE
from notifications.enums import Channel, DeliveryStatus, ProviderHealthStatus
from providers.models import NotificationProvider
from notifications import tasks as notification_tasks
from providers import tasks
from providers.models import ProviderCostDaily, ProviderHealthMetric

from .factories import DeliveryFactory
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SID = "AC0123456789abcdef0123456789abcdef"


def test_beat_schedules_polling_health_checks_and_cost_aggregation():
    entries = {e.task: e for e in BEAT_SCHEDULE}
    for name in ("providers.health_check_all", "providers.poll_delivery_status", "providers.aggregate_costs"):
        assert name in entries and entries[name].expires > 0
    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start
    for name in entries:
        if name.startswith("providers."):
            assert name in app.tasks  # the scheduled name resolves to a registered task


def _twilio_message(sid: str, status: str, price: str | None = "-0.00790") -> dict:
    return {"sid": sid, "account_sid": SID, "status": status, "price": price, "price_unit": "USD", "error_code": None,
            "date_updated": "Thu, 01 Jan 2026 00:05:00 +0000", "num_segments": "1"}


def test_polling_asks_the_provider_about_deliveries_no_webhook_reported(peer, make_provider, organization, django_assert_max_num_queries):
    twilio = peer()
    record = make_provider("twilio_sms", organization=organization, config={"base_url": twilio.url, "from_number": "+14155550111"},
                           secrets={"account_sid": SID, "auth_token": "tw-token"})
    sids = {"delivered": "SM" + "d" * 32, "undelivered": "SM" + "u" * 32, "sent": "SM" + "s" * 32}
    for status, sid in sids.items():
        twilio.on("GET", rf"/2010-04-01/Accounts/{SID}/Messages/{sid}\.json", Reply(200, _twilio_message(sid, status, None if status == "sent" else "-0.00790")))
    now = timezone.now()
    rows = {status: DeliveryFactory(organization=organization, notification__organization=organization, channel=Channel.SMS,
                                    provider="twilio_sms", provider_record=record, provider_message_id=sid, sent_at=now,
                                    recipient_address="+14155550100")
            for status, sid in sids.items()}
    old = DeliveryFactory(channel=Channel.SMS, provider="twilio_sms", provider_record=record, sent_at=now - timedelta(days=5))
    webhook_known = DeliveryFactory(channel=Channel.SMS, provider="twilio_sms", provider_record=record, sent_at=now,
                                    status=DeliveryStatus.DELIVERED)

    with django_assert_max_num_queries(12):  # whatever the number of rows: read, credentials, one status apply
        changed = notification_tasks.poll_delivery_status_task()

    assert changed == 2
    for row in (*rows.values(), old, webhook_known):
        row.refresh_from_db()
    assert rows["delivered"].status == DeliveryStatus.DELIVERED and rows["delivered"].cost_amount == Decimal("0.0079")
    assert rows["undelivered"].status == DeliveryStatus.FAILED
    assert rows["sent"].status == DeliveryStatus.SENT  # still on its way: asked again next run
    assert len(twilio.calls("GET")) == 3  # neither the 5-day-old row nor the one a webhook settled
    assert old.status == DeliveryStatus.SENT and webhook_known.status == DeliveryStatus.DELIVERED


def test_health_check_run_fills_the_metrics_table_for_every_active_provider(peer, make_provider, organization):
    up = peer().on("GET", "/v3/scopes", Reply(200, {"scopes": []}, {"X-RateLimit-Remaining": "42"}))
    healthy = make_provider("sendgrid", organization=organization, config={"api_url": f"{up.url}/v3/"}, secrets={"api_key": "SG.k"})
    broken = make_provider("postmark", organization=organization, config={"api_url": "http://127.0.0.1:1/"}, secrets={"server_token": "t"})
    limited = make_provider("log_sms", rate_limit_per_minute=100)
    make_provider("log_push", is_active=False)

    assert tasks.health_check_all_task() == 3

    metrics = {m.provider_id: m for m in ProviderHealthMetric.objects.all()}
    assert set(metrics) == {healthy.pk, broken.pk, limited.pk}
    assert metrics[healthy.pk].is_healthy and metrics[healthy.pk].response_time_ms is not None
    assert metrics[healthy.pk].rate_limit_remaining == 42  # what the provider reported
    assert metrics[limited.pk].rate_limit_remaining == 100  # our own shared counter
    assert not metrics[broken.pk].is_healthy and "connection" in metrics[broken.pk].error_message
    statuses = dict(NotificationProvider.objects.values_list("pk", "health_status"))
    assert statuses[healthy.pk] == ProviderHealthStatus.HEALTHY and statuses[broken.pk] == ProviderHealthStatus.UNHEALTHY


def test_cost_task_rolls_up_yesterday_and_today(make_provider, organization):
    record = make_provider("twilio_sms", organization=organization, secrets={"account_sid": SID, "auth_token": "t"})
    now = timezone.now()
    for sent_at, cost in ((now, "0.0100"), (now - timedelta(days=1), "0.0200"), (now - timedelta(days=1), "0.0400")):
        DeliveryFactory(organization=organization, notification__organization=organization, channel=Channel.SMS, provider="twilio_sms",
                        provider_record=record, status=DeliveryStatus.DELIVERED, sent_at=sent_at, cost_amount=Decimal(cost),
                        cost_currency="USD")

    assert tasks.aggregate_costs_task() == 2
    totals = dict(ProviderCostDaily.objects.values_list("date", "total_cost"))
    today = timezone.localdate()
    assert totals == {today: Decimal("0.0100"), today - timedelta(days=1): Decimal("0.0600")}
