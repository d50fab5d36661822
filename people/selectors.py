"""The dashboard's reads: invitation history and delivery analytics of one person.

Every figure is an aggregate query (the seed's `user_invitation_summary` and
`user_notification_analytics` views), never a loop over rows; every query is bound to the
person, so nobody else's invitations can appear.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Project, User
from invitations.models import HistoryAction, InvitationHistory, StoryInvitation
from notifications.enums import DeliveryStatus
from notifications.models import NotificationDelivery

SUCCESS = [DeliveryStatus.DELIVERED, DeliveryStatus.OPENED, DeliveryStatus.CLICKED]
FAILURE = [DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.REJECTED, DeliveryStatus.COMPLAINED, DeliveryStatus.EXPIRED]
HISTORY_ACTIONS = ["sent", "received", "viewed", "accepted", "declined", "revoked", "expired"]


def user_history(*, user: User) -> QuerySet[InvitationHistory]:
    """The person's invitation history (seed `user_invitation_history`): what happened to the
    invitations they sent, and the invitations addressed to them (`received`) by email or by
    phone — each only while that address is confirmed and still theirs, or anyone typing in
    someone's address or number would read their mail."""
    mine = Q(invitation__inviter=user) & ~Q(action__in=[HistoryAction.RECEIVED, HistoryAction.STYLE_CHANGED, HistoryAction.LINK_REISSUED])
    addressed = Q(pk__in=[])
    if user.email and user.email_verified_at is not None:
        addressed |= Q(invitation__invitee_email__iexact=user.email)
    if user.phone and user.phone_verified_at is not None:
        addressed |= Q(invitation__invitee_phone=user.phone)
    mine |= Q(action=HistoryAction.RECEIVED, user=user) & addressed
    return InvitationHistory.objects.filter(mine)


def user_invitation_summary(*, user: User) -> dict[str, Any]:
    """One aggregate query over the person's history."""
    row = user_history(user=user).aggregate(
        invitations_sent=Count("pk", filter=Q(action=HistoryAction.SENT)),
        invitations_received=Count("pk", filter=Q(action=HistoryAction.RECEIVED)),
        invitations_accepted=Count("pk", filter=Q(action=HistoryAction.ACCEPTED)),
        invitations_declined=Count("pk", filter=Q(action=HistoryAction.DECLINED)),
        invitations_viewed=Count("pk", filter=Q(action=HistoryAction.VIEWED)),
        last_activity=Max("created_at"),
    )
    return row


def user_history_filtered(*, user: User, action: str = "", query: str = "") -> QuerySet[InvitationHistory]:
    qs = user_history(user=user)
    if action in HISTORY_ACTIONS:
        qs = qs.filter(action=action)
    query = query.strip()
    if query:
        qs = qs.filter(
            Q(invitation__invitee_email__icontains=query) | Q(invitation__invitee_phone__icontains=query)
            | Q(invitation__story__title__icontains=query)
        )
    return qs.select_related("invitation__story", "invitation__inviter").order_by("-created_at", "-id")


def _invitation_deliveries(*, user: User) -> QuerySet[NotificationDelivery]:
    notification_ids = StoryInvitation.objects.filter(inviter=user, notification__isnull=False).values("notification_id")
    # A skipped channel (no address for it, turned off) or a cancelled one was never sent.
    return NotificationDelivery.objects.filter(notification_id__in=notification_ids, escalation_level=0).exclude(
        status__in=[DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED]
    )


def _counts() -> tuple[Count, Count, Count]:
    """(total sent, successful, failed), named where they are used so the row keys are known."""
    return Count("pk"), Count("pk", filter=Q(status__in=SUCCESS)), Count("pk", filter=Q(status__in=FAILURE))


def user_delivery_analytics(*, user: User, days: int = 30, today: date | None = None) -> dict[str, Any]:
    """Seed `user_notification_analytics` per channel, and a daily series over `days` days.
    Two aggregate queries (one per chart), whatever the number of invitations."""
    deliveries = _invitation_deliveries(user=user)
    by_channel = []
    total_sent, successful, failed = _counts()
    for row in deliveries.values("channel").annotate(
        total_sent=total_sent, successful_deliveries=successful, failed_deliveries=failed,
    ).order_by("channel"):
        total = row["total_sent"]
        by_channel.append({
            "delivery_type": row["channel"].lower(),
            "total_sent": total,
            "successful_deliveries": row["successful_deliveries"],
            "failed_deliveries": row["failed_deliveries"],
            "success_rate": round(row["successful_deliveries"] * 100 / total, 2) if total else 0.0,
        })
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    daily = [
        {"date": row["day"].isoformat(), "delivery_type": row["channel"].lower(), "total_sent": row["total_sent"],
         "successful_deliveries": row["successful_deliveries"]}
        for row in deliveries.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at")).values("day", "channel")
        .annotate(total_sent=total_sent, successful_deliveries=successful, failed_deliveries=failed).order_by("day", "channel")
    ]
    return {"by_channel": by_channel, "daily": daily, "since": start.isoformat(), "until": today.isoformat()}


def organization_projects(*, organization) -> QuerySet[Project]:
    """The projects of the person's organization, whose preference rows the center can show."""
    return Project.objects.filter(organization=organization).order_by("name")
