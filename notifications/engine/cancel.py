"""Cancelling notifications that have not gone out yet.

A client cancels by notification ids, by deduplication key or by correlation id (REST
`POST /api/v1/admin/notifications/cancel/`, command `notification.cancel`); deleting a
subscriber cancels everything still pending for them. Pending, scheduled and held deliveries,
and those waiting in a digest not sent yet, become CANCELLED; rows a worker has already claimed (SENDING) are in flight and finish —
the claim and this update lock the same rows, so a delivery is either cancelled or sent,
never both. Cancelled notifications stop escalating.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from common.exceptions import ValidationError
from notifications.enums import AuditAction, BatchStatus, DeliveryStatus, NotificationStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

from .status import notifications_status_refresh
from .audit import AuditActor

MAX_IDS = 10_000
CANCELLABLE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.HELD)
# Waiting in a digest that has not gone out yet is pending too: the digest then leaves it out.
_CANCELLABLE = Q(status__in=CANCELLABLE_STATUSES) | Q(
    status=DeliveryStatus.DIGESTED, batch__status__in=[BatchStatus.OPEN, BatchStatus.READY]
)


def notifications_cancel(
    *,
    organization: Organization,
    actor: AuditActor,
    notification_ids: Sequence[int] | None = None,
    deduplication_key: str | None = None,
    correlation_id: str | None = None,
    recipient_user_id: int | None = None,
    reason: str = "cancelled",
) -> dict[str, Any]:
    """Cancel the unsent deliveries of the organization's notifications that match exactly one selector.

    Ids of other organizations (or unknown ones) match nothing and are reported as `not_found`.
    Idempotent: cancelling again finds nothing left to cancel.
    """
    selectors = {
        "notification_ids": notification_ids not in (None, []),
        "deduplication_key": bool(deduplication_key),
        "correlation_id": bool(correlation_id),
        "recipient": recipient_user_id is not None,
    }
    if sum(selectors.values()) != 1:
        raise ValidationError({"non_field_errors": ["Give exactly one of notification_ids, deduplication_key or correlation_id."]})
    qs = Notification.objects.filter(organization=organization)
    if notification_ids not in (None, []):
        ids = sorted({int(pk) for pk in notification_ids})
        if len(ids) > MAX_IDS:
            raise ValidationError({"notification_ids": [f"At most {MAX_IDS} ids."]})
        qs = qs.filter(pk__in=ids)
    elif deduplication_key:
        qs = qs.filter(deduplication_key=deduplication_key)
    elif correlation_id:
        qs = qs.filter(correlation_id=correlation_id)
    else:
        qs = qs.filter(recipient_id=recipient_user_id)
    now = timezone.now()
    with transaction.atomic():
        matched = list(qs.order_by("pk").values_list("pk", flat=True))
        deliveries = list(
            NotificationDelivery.objects.select_for_update(of=("self",))
            .filter(_CANCELLABLE, notification_id__in=matched)
            .order_by("pk")
            .values_list("pk", "notification_id")
        )
        touched = sorted({n for _, n in deliveries})
        if deliveries:
            NotificationDelivery.objects.filter(pk__in=[pk for pk, _ in deliveries]).update(
                status=DeliveryStatus.CANCELLED, next_retry_at=None, skip_reason=f"Cancelled ({reason}).", updated_at=now
            )
            statuses = notifications_status_refresh(notification_ids=touched, now=now)
            cancelled = [pk for pk, status in statuses.items() if status == NotificationStatus.CANCELLED]
            # A notification with nothing left to send must not escalate either.
            Notification.objects.filter(pk__in=touched).update(next_escalation_at=None)
            NotificationAuditLog.objects.bulk_create([
                NotificationAuditLog(
                    organization=organization, notification_id=pk, action=AuditAction.NOTIFICATION_CANCELLED,
                    actor_type=actor.type, actor_id=actor.id[:100], actor_label=actor.label[:200],
                    details={"reason": reason, "deliveries_cancelled": sum(1 for _, n in deliveries if n == pk),
                             "status": statuses.get(pk)},
                )
                for pk in touched
            ])
        else:
            cancelled = []
    answer: dict[str, Any] = {
        "notifications_matched": len(matched),
        "notifications_cancelled": sorted(cancelled),
        "deliveries_cancelled": len(deliveries),
    }
    if notification_ids not in (None, []):
        answer["not_found"] = sorted(set(ids) - set(matched))
    return answer
