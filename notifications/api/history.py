"""Organization administration: ``/api/v1/admin/audit-log/``, ``history/`` and ``webhooks/``.

Organization owners and admins see their own organization only; platform administrators see every
organization (or one, with ``?organization=``). Lists are cursor paginated, newest first.
"""
from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import admin_scope
from common.exceptions import NotFound, ValidationError
from common.query import query_datetime, query_id
from common.pagination import CursorPage
from common.schema import cursor_page
from notifications.enums import (
    AuditAction,
    AuditActorType,
    AuditOutcome,
    EventCategory,
    NotificationStatus,
)
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery


def _scope(request: Request) -> int | None:
    """The organization id the caller administers, or None for platform administrators seeing all."""
    return admin_scope(request).organization_id


def _filter_time(qs: QuerySet, request: Request, field: str) -> QuerySet:
    for param, lookup in (("since", "gte"), ("until", "lt")):
        raw = request.query_params.get(param)
        if raw:
            qs = qs.filter(**{f"{field}__{lookup}": query_datetime(raw, name=param)})
    return qs


def _filter_choice(qs: QuerySet, request: Request, param: str, field: str, choices: list[str]) -> QuerySet:
    raw = request.query_params.get(param)
    if raw:
        if raw not in choices:
            raise ValidationError({param: [f"Must be one of: {', '.join(choices)}."]})
        qs = qs.filter(**{field: raw})
    return qs


def _filter_id(qs: QuerySet, request: Request, param: str, field: str) -> QuerySet:
    raw = request.query_params.get(param)
    if raw:
        qs = qs.filter(**{field: query_id(raw, name=param)})
    return qs


class NewestFirst(CursorPage):
    ordering = ("-created_at", "-id")


def _paginated(request: Request, view: APIView, qs: QuerySet, serializer_class) -> Response:
    paginator = NewestFirst()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# --- audit log ------------------------------------------------------------------------------------------


class AuditLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationAuditLog
        fields = [
            "id", "created_at", "organization_id", "action", "outcome", "actor_type", "actor_id", "actor_label",
            "notification_id", "delivery_id", "template_id", "provider_id", "webhook_id", "user_id", "details",
            "error_message",
        ]


class AuditLogView(APIView):
    """GET: ``?action=&outcome=&notification=&delivery=&actor=&actor_type=&template_id=&webhook_id=&user_id=&since=&until=``."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: cursor_page(AuditLogSerializer)})
    def get(self, request: Request) -> Response:
        organization_id = _scope(request)
        qs = NotificationAuditLog.objects.all()
        if organization_id is not None:
            qs = qs.filter(organization_id=organization_id)
        qs = _filter_choice(qs, request, "action", "action", AuditAction.values)
        qs = _filter_choice(qs, request, "outcome", "outcome", AuditOutcome.values)
        for param in ("notification_id", "delivery_id", "template_id", "provider_id", "webhook_id", "user_id"):
            qs = _filter_id(qs, request, param, param)
        # Short names of API.md's filters: ?notification=&delivery=&actor=
        raw_notification = request.query_params.get("notification")
        if raw_notification:
            # A fan-out's one notification.created row counts for each of its notifications.
            from notifications.engine.fanout import audit_for_notification_q

            qs = qs.filter(audit_for_notification_q(query_id(raw_notification, name="notification")))
        qs = _filter_id(qs, request, "delivery", "delivery_id")
        actor = request.query_params.get("actor")
        if actor:
            qs = qs.filter(Q(actor_id=actor) | Q(actor_label=actor))
        qs = _filter_choice(qs, request, "actor_type", "actor_type", AuditActorType.values)
        qs = _filter_time(qs, request, "created_at")
        return _paginated(request, self, qs, AuditLogSerializer)


# --- notification history ----------------------------------------------------------------------------


class HistorySerializer(serializers.ModelSerializer):
    recipient = serializers.SerializerMethodField()
    deliveries = serializers.SerializerMethodField()
    channels = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "event_id", "event_type", "category", "criticality", "status", "organization_id", "recipient",
            "title", "channels", "channels_requested", "channels_delivered", "deliveries", "correlation_id",
            "deduplication_key",
            "scheduled_for", "expires_at", "created_at", "completed_at", "read_at", "acknowledged_at",
        ]

    def get_recipient(self, obj: Notification) -> dict[str, Any]:
        return {"user_id": obj.recipient_id, "email": obj.recipient_email, "phone": obj.recipient_phone}

    def get_channels(self, obj: Notification) -> dict[str, str]:
        """Status per channel; the latest row of a channel (fallback, escalation level) wins."""
        return {d.channel: d.status for d in sorted(obj.deliveries.all(), key=lambda d: d.pk)}

    def get_deliveries(self, obj: Notification) -> list[dict[str, Any]]:
        return [
            {"id": d.pk, "channel": d.channel, "status": d.status, "provider": d.provider, "attempts": d.attempts,
             "sent_at": d.sent_at, "skip_reason": d.skip_reason, "error": d.error}
            for d in obj.deliveries.all()
        ]


def _deliveries_prefetch() -> Prefetch:
    return Prefetch("deliveries", queryset=NotificationDelivery.objects.order_by("pk").only(
        "id", "notification_id", "channel", "status", "provider", "attempts", "sent_at", "skip_reason", "error",
    ))


class HistoryView(APIView):
    """GET: the organization's notifications, ``?status=&event_type=&category=&recipient=&correlation_id=&since=&until=``.

    Deliveries come with one prefetch query: a page costs the same number of queries for 5 or 50 rows.
    """

    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="admin_history_list", responses={200: cursor_page(HistorySerializer)})
    def get(self, request: Request) -> Response:
        organization_id = _scope(request)
        qs = Notification.objects.prefetch_related(_deliveries_prefetch())
        if organization_id is not None:
            qs = qs.filter(organization_id=organization_id)
        qs = _filter_choice(qs, request, "status", "status", NotificationStatus.values)
        qs = _filter_choice(qs, request, "category", "category", EventCategory.values)
        qs = _filter_id(qs, request, "recipient_id", "recipient_id")
        qs = _filter_id(qs, request, "recipient", "recipient_id")
        for param in ("event_type", "correlation_id", "event_id"):
            raw = request.query_params.get(param)
            if raw:
                if param == "event_id":
                    import uuid

                    try:
                        raw = str(uuid.UUID(raw))
                    except ValueError:
                        raise ValidationError({"event_id": ["Expected a UUID."]}) from None
                qs = qs.filter(**{param: raw})
        qs = _filter_time(qs, request, "created_at")
        return _paginated(request, self, qs, HistorySerializer)


class HistoryDetailView(APIView):
    """GET ``history/{id}/``: one notification with every delivery and its audit trail, oldest first."""

    permission_classes = (IsAuthenticated,)
    MAX_AUDIT_ROWS = 500

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, notification_id: int) -> Response:
        organization_id = _scope(request)
        qs = Notification.objects.filter(pk=notification_id).prefetch_related(
            Prefetch("deliveries", queryset=NotificationDelivery.objects.order_by("pk"))
        )
        if organization_id is not None:
            qs = qs.filter(organization_id=organization_id)
        notification = qs.first()
        if notification is None:
            raise NotFound("Notification not found.")
        deliveries = [
            {"id": d.pk, "channel": d.channel, "status": d.status, "recipient_address": d.recipient_address,
             "provider": d.provider, "provider_message_id": d.provider_message_id, "attempts": d.attempts,
             "max_attempts": d.max_attempts, "next_retry_at": d.next_retry_at, "escalation_level": d.escalation_level,
             "fallback_from": d.fallback_from_id, "error": d.error, "error_history": d.error_history,
             "skip_reason": d.skip_reason, "sent_at": d.sent_at, "delivered_at": d.delivered_at,
             "opened_at": d.opened_at, "clicked_at": d.clicked_at, "failed_at": d.failed_at, "created_at": d.created_at}
            for d in notification.deliveries.all()
        ]
        from notifications.engine.fanout import audit_for_notification_q

        audit = NotificationAuditLog.objects.filter(audit_for_notification_q(notification.pk)).order_by("created_at", "id")
        body = dict(HistorySerializer(notification).data)
        body["deliveries"] = deliveries
        body["trace"] = notification.trace
        body["audit_trail"] = AuditLogSerializer(audit[: self.MAX_AUDIT_ROWS], many=True).data
        return Response(body)
