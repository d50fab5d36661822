"""The in-app inbox: a user's own notifications that were delivered on the IN_APP channel.

Selectors read (always scoped to the recipient), services change the inbox state and tell
the user's open streams about the new unread count once the change is committed.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.query import id_array
from accounts.selectors import user_is_member
from common.exceptions import NotFound, PermissionDenied, ValidationError
from notifications.enums import DELIVERY_SUCCESS_STATUSES, AuditAction, AuditActorType, Channel, DeliveryStatus
from notifications.engine.live import live_send
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

STATUS_UNREAD = "unread"
STATUS_READ = "read"
STATUS_ARCHIVED = "archived"
INBOX_STATUSES = (STATUS_UNREAD, STATUS_READ, STATUS_ARCHIVED)


def _in_app_delivered() -> Exists:
    return Exists(
        NotificationDelivery.objects.filter(
            notification_id=OuterRef("pk"), channel=Channel.IN_APP, status__in=list(DELIVERY_SUCCESS_STATUSES)
        )
    )


def _not_expired() -> Q:
    # An IN_APP expires_at hides the item once passed (seed 004 §4.3).
    return Q(inbox_expires_at__isnull=True) | Q(inbox_expires_at__gt=timezone.now())


def notifications_for_user(*, user_id: int, status: str | None = None, group_key: str | None = None) -> QuerySet[Notification]:
    """The user's inbox, newest first. ``status``: unread, read, archived, or None (not archived);
    ``group_key``: only the items of that group. Expired items are never listed."""
    # Only the IN_APP part of the channel options is read (the others may hold inline attachments).
    qs = (Notification.objects.filter(recipient_id=user_id).filter(_in_app_delivered()).filter(_not_expired())
          .defer("channel_options").annotate(inapp_options=KeyTransform(Channel.IN_APP, "channel_options")))
    if group_key:
        qs = qs.filter(group_key=group_key)
    if status is None or status == "":
        qs = qs.filter(archived_at__isnull=True)
    elif status == STATUS_UNREAD:
        qs = qs.filter(archived_at__isnull=True, read_at__isnull=True)
    elif status == STATUS_READ:
        qs = qs.filter(archived_at__isnull=True, read_at__isnull=False)
    elif status == STATUS_ARCHIVED:
        qs = qs.filter(archived_at__isnull=False)
    else:
        raise ValidationError({"status": [f"Must be one of: {', '.join(INBOX_STATUSES)}."]})
    return qs.order_by("-created_at", "-id")


def notification_get_for_user(*, user_id: int, notification_id: int) -> Notification:
    """One of the user's inbox items; anybody else's (or an unknown id) is a 404."""
    try:
        return Notification.objects.filter(_in_app_delivered()).get(pk=int(notification_id), recipient_id=user_id)
    except (Notification.DoesNotExist, ValueError, TypeError):
        raise NotFound("Notification not found.") from None


def inbox_unread_count(*, user_id: int) -> int:
    return notifications_for_user(user_id=user_id, status=STATUS_UNREAD).count()


def inbox_unread_counts(*, user_ids: Iterable[int]) -> dict[int, int]:
    """Unread counts of many users in one query (users with none are absent)."""
    rows = (
        Notification.objects.filter(recipient_id__any=id_array(user_ids), archived_at__isnull=True, read_at__isnull=True)
        .filter(_in_app_delivered()).filter(_not_expired())
        .order_by()
        .values("recipient_id")
        .annotate(n=Count("pk"))
    )
    return {row["recipient_id"]: row["n"] for row in rows}


# --- services ------------------------------------------------------------------------------


def _audit(notification: Notification, *, user_id: int, action: str) -> None:
    NotificationAuditLog.objects.create(
        organization_id=notification.organization_id, notification=notification, user_id=user_id,
        action=action, actor_type=AuditActorType.USER, actor_id=str(user_id),
    )


def _publish_count_on_commit(user_id: int) -> None:
    """Once committed, every live connection of the user hears the new unread count."""
    transaction.on_commit(lambda: live_send(
        user_id=user_id, message={"type": "inbox.unread_count", "count": inbox_unread_count(user_id=user_id)}
    ))


def _opened(user_id: int, notification_ids: list[int]) -> int:
    """The recipient read these items in the inbox: their IN_APP deliveries become OPENED."""
    if not notification_ids:
        return 0
    now = timezone.now()
    return NotificationDelivery.objects.filter(
        notification_id__in=notification_ids, notification__recipient_id=user_id, channel=Channel.IN_APP,
        status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED],
    ).update(status=DeliveryStatus.OPENED, opened_at=now, delivered_at=Coalesce("delivered_at", Value(now)),
             updated_at=now)


def _locked(user_id: int, notification_id: int) -> Notification:
    notification = notification_get_for_user(user_id=user_id, notification_id=notification_id)
    return Notification.objects.select_for_update().get(pk=notification.pk)


@transaction.atomic
def notification_mark_read(*, user_id: int, notification_id: int) -> Notification:
    notification = _locked(user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
        _audit(notification, user_id=user_id, action=AuditAction.READ)
        _opened(user_id, [notification.pk])
        _publish_count_on_commit(user_id)
    return notification


@transaction.atomic
def notification_mark_unread(*, user_id: int, notification_id: int) -> Notification:
    notification = _locked(user_id, notification_id)
    if notification.read_at is not None:
        notification.read_at = None
        notification.save(update_fields=["read_at", "updated_at"])
        _publish_count_on_commit(user_id)
    return notification


@transaction.atomic
def notification_archive(*, user_id: int, notification_id: int) -> Notification:
    notification = _locked(user_id, notification_id)
    if notification.archived_at is None:
        notification.archived_at = timezone.now()
        notification.save(update_fields=["archived_at", "updated_at"])
        _audit(notification, user_id=user_id, action=AuditAction.ARCHIVED)
        _publish_count_on_commit(user_id)
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user_id: int) -> int:
    """Mark every unread inbox item read; returns how many changed."""
    now = timezone.now()
    ids = list(notifications_for_user(user_id=user_id, status=STATUS_UNREAD).values_list("pk", flat=True))
    if not ids:
        return 0
    changed = Notification.objects.filter(pk__in=ids, read_at__isnull=True).update(read_at=now, updated_at=now)
    _opened(user_id, ids)
    _publish_count_on_commit(user_id)
    return changed


def notification_acknowledge(*, user_id: int, notification_id: int) -> Notification:
    """Acknowledge one of the user's notifications (stops its escalation) and mark it read."""
    from notifications.engine.ack import AckSource
    from notifications.engine.ack import notification_acknowledge as acknowledge

    notification = notification_get_for_user(user_id=user_id, notification_id=notification_id)
    # Acknowledging stops the organization's escalation: only its members may (a removed member
    # still reads their old inbox, but answers no incident for it).
    if notification.organization_id and not user_is_member(user_id=user_id, organization_id=notification.organization_id):
        raise PermissionDenied("You are no longer a member of this notification's organization.")
    with transaction.atomic():
        acknowledge(notification_id=notification.pk, source=AckSource.INBOX, user_id=user_id)
        changed = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now(), updated_at=timezone.now()
        )
        if changed:
            _opened(user_id, [notification.pk])
            _publish_count_on_commit(user_id)
    notification.refresh_from_db()
    return notification


@transaction.atomic
def notification_action(*, user_id: int, notification_id: int, action_id: str) -> Notification:
    """The user chose one of the item's IN_APP actions (seed 004 §4.3): navigate and custom mark it
    read and its in-app delivery CLICKED, dismiss archives it; a custom action is the
    organization's callback — its outgoing webhooks get `notification.action` with the action's
    id and data. An action the item does not offer is a 404."""
    notification = _locked(user_id, notification_id)
    options = (notification.channel_options or {}).get(Channel.IN_APP) or {}
    action = next((a for a in options.get("actions") or [] if str(a.get("id")) == str(action_id)), None)
    if action is None:
        raise NotFound("This notification has no such action.")
    now = timezone.now()
    if action.get("action") == "dismiss":
        notification.archived_at = notification.archived_at or now
    notification.read_at = notification.read_at or now
    notification.save(update_fields=["read_at", "archived_at", "updated_at"])
    NotificationDelivery.objects.filter(
        notification_id=notification.pk, channel=Channel.IN_APP, status__in=list(DELIVERY_SUCCESS_STATUSES),
    ).update(status=DeliveryStatus.CLICKED, clicked_at=Coalesce("clicked_at", Value(now)),
             opened_at=Coalesce("opened_at", Value(now)), delivered_at=Coalesce("delivered_at", Value(now)), updated_at=now)
    NotificationAuditLog.objects.create(
        organization_id=notification.organization_id, notification=notification, user_id=user_id,
        action=AuditAction.DELIVERY_CLICKED, actor_type=AuditActorType.USER, actor_id=str(user_id),
        details={"action_id": str(action.get("id")), "action": action.get("action")},
    )
    if action.get("action") == "custom":
        from notifications.engine.webhooks_outgoing import ACTION_EVENT, webhooks_enqueue

        webhooks_enqueue(events=[(notification.pk, f"{ACTION_EVENT}:{action.get('id')}")],
                         organization_ids=[notification.organization_id])
    _publish_count_on_commit(user_id)
    return notification

