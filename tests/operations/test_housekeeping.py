"""Housekeeping on beat: expired idempotency records, old audit rows, old rendered copies and
expired sessions go; everything recent, and the content of unfinished deliveries, stays."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from config.beat import BEAT_SCHEDULE
from config.celery import app
from notifications.engine import housekeeping
from notifications.engine.housekeeping import housekeeping_run
from notifications.enums import AuditAction, DeliveryStatus, IdempotencyStatus
from notifications.models import BusCommand, IdempotencyRecord, NotificationAuditLog, NotificationDelivery
from tests.providers.factories import DeliveryFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _age(model, pk: int, **delta) -> None:
    model.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(**delta))


def test_housekeeping_purges_what_is_past_its_retention_and_keeps_the_rest(organization, settings, monkeypatch):
    settings.AUDIT_LOG_RETENTION_DAYS = 90
    settings.RENDERED_CONTENT_RETENTION_DAYS = 30
    monkeypatch.setattr(housekeeping, "BATCH", 2)  # several rounds of the batched statements
    now = timezone.now()
    replayable = IdempotencyRecord.objects.create(organization=organization, key="fresh", request_hash="a",
                                                  status=IdempotencyStatus.COMPLETED, expires_at=now + timedelta(hours=3))
    for i in range(3):
        IdempotencyRecord.objects.create(organization=organization, key=f"old-{i}", request_hash="b",
                                         status=IdempotencyStatus.COMPLETED, expires_at=now - timedelta(minutes=1))
    stuck = IdempotencyRecord.objects.create(organization=organization, key="stuck", request_hash="c")
    _age(IdempotencyRecord, stuck.pk, days=2)

    audits = [NotificationAuditLog.objects.create(organization=organization, action=AuditAction.NOTIFICATION_CREATED)
              for _ in range(5)]
    for row in audits[:3]:
        _age(NotificationAuditLog, row.pk, days=91)

    content = {"subject": "Hello", "body": "secret-ish body"}
    old_sent = [DeliveryFactory(notification__organization=organization, rendered=content) for _ in range(3)]
    old_held = DeliveryFactory(notification__organization=organization, rendered=content, status=DeliveryStatus.HELD)
    recent = DeliveryFactory(notification__organization=organization, rendered=content)
    for delivery in [*old_sent, old_held]:
        _age(NotificationDelivery, delivery.pk, days=31)

    commands = [BusCommand.objects.create(organization=organization, command_id=f"c-{i}", name="subscriber.upsert")
                for i in range(3)]
    _age(BusCommand, commands[0].pk, days=8)

    expired = SessionStore()
    expired["x"] = 1
    expired.set_expiry(-10)
    expired.create()
    alive = SessionStore()
    alive["x"] = 1
    alive.create()

    report = housekeeping_run()

    assert report == {"idempotency_records": 4, "audit_rows": 3, "rendered_contents": 3, "bus_commands": 1}
    assert set(BusCommand.objects.values_list("command_id", flat=True)) == {"c-1", "c-2"}
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [replayable.pk]
    assert set(NotificationAuditLog.objects.values_list("pk", flat=True)) >= {audits[3].pk, audits[4].pk}
    assert not NotificationAuditLog.objects.filter(pk__in=[a.pk for a in audits[:3]]).exists()
    for delivery in old_sent:
        delivery.refresh_from_db()
        assert delivery.rendered == {} and delivery.status == DeliveryStatus.SENT  # the row and its history stay
    old_held.refresh_from_db()
    recent.refresh_from_db()
    assert old_held.rendered == content and recent.rendered == content  # still needed / still recent
    assert set(Session.objects.values_list("session_key", flat=True)) == {alive.session_key}

    assert housekeeping_run() == {"idempotency_records": 0, "audit_rows": 0, "rendered_contents": 0,
                                  "bus_commands": 0}  # idempotent


def test_housekeeping_is_scheduled_daily_on_the_maintenance_queue():
    [entry] = [e for e in BEAT_SCHEDULE if e.task == "notifications.housekeeping"]
    assert entry.queue == "maintenance" and entry.expires < 24 * 3600
    assert app.amqp.router.route({}, entry.task)["queue"].name == "maintenance"
    app.loader.import_default_modules()
    assert entry.task in app.tasks
