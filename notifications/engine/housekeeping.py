"""Housekeeping (beat, daily): data the platform no longer needs is removed in small batches.

- idempotency records past their replay window (24 h; an unfinished one after a day too);
- audit rows older than `AUDIT_LOG_RETENTION_DAYS`;
- the rendered content of finished deliveries older than `RENDERED_CONTENT_RETENTION_DAYS`
  (the delivery row, its status and timestamps stay; only the subject/body copy goes);
- bus command records older than BUS_COMMAND_RETENTION (they only guard against redelivery);
- expired web sessions.

Each step deletes or updates at most `BATCH` rows per statement, so no long lock is held and a
run interrupted half-way simply continues next time.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.enums import DeliveryStatus
from notifications.models import BusCommand, IdempotencyRecord, NotificationAuditLog, NotificationDelivery

BATCH = 2000
# A command is redelivered within minutes (a consumer crash between commit and ack); a week is ample.
BUS_COMMAND_RETENTION = timedelta(days=7)
# Deliveries that may still be sent (or re-sent) need their content.
_UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.HELD)


def _delete_in_batches(queryset: QuerySet) -> int:
    total = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return total
        deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def idempotency_records_purge(*, now: datetime) -> int:
    expired = Q(expires_at__lt=now) | Q(expires_at__isnull=True, created_at__lt=now - timedelta(days=1))
    return _delete_in_batches(IdempotencyRecord.objects.filter(expired))


def bus_commands_purge(*, now: datetime) -> int:
    return _delete_in_batches(BusCommand.objects.filter(created_at__lt=now - BUS_COMMAND_RETENTION))


def audit_log_purge(*, now: datetime, days: int) -> int:
    return _delete_in_batches(NotificationAuditLog.objects.filter(created_at__lt=now - timedelta(days=days)))


def rendered_content_purge(*, now: datetime, days: int) -> int:
    old = (NotificationDelivery.objects.filter(created_at__lt=now - timedelta(days=days))
           .exclude(status__in=_UNFINISHED).exclude(rendered={}))
    total = 0
    while True:
        ids = list(old.order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return total
        total += NotificationDelivery.objects.filter(pk__in=ids).update(rendered={})


def sessions_purge() -> None:
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()


def housekeeping_run(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    report = {
        "idempotency_records": idempotency_records_purge(now=now),
        "audit_rows": audit_log_purge(now=now, days=settings.AUDIT_LOG_RETENTION_DAYS),
        "rendered_contents": rendered_content_purge(now=now, days=settings.RENDERED_CONTENT_RETENTION_DAYS),
        "bus_commands": bus_commands_purge(now=now),
    }
    sessions_purge()
    return report
