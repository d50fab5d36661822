"""REST API of subscribers and the REST twins of the bus commands, under /api/v1/admin/.

Callers: an organization's API key, or an owner/admin of the organization (platform staff
pick it with X-Organization). Everything acts inside that one organization; another
organization's subscriber, notification, delivery or dead letter is a 404.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ServicePrincipal
from accounts.models import Organization
from accounts.selectors import admin_scope
from common.exceptions import PermissionDenied, ValidationError
from notifications.engine import commands
from notifications.engine.cancel import notifications_cancel
from notifications.engine.audit import AuditActor
from notifications.engine.subscribers import (
    MAX_BULK,
    subscriber_delete,
    subscriber_get,
    subscriber_upsert,
    subscribers_clean,
    subscribers_upsert,
)
from notifications.enums import AuditActorType, PreferenceLevel
from notifications.models import NotificationPreference
from notifications.serializers_intake import PreferenceOutSerializer, PreferencesPutSerializer


def acting_organization(request: Request) -> tuple[Organization, AuditActor]:
    """The organization the caller administers, and who they are for the audit log."""
    scope = admin_scope(request, api_keys=True)
    if isinstance(request.user, ServicePrincipal):
        key = request.user.api_key
        return key.organization, AuditActor(type=AuditActorType.API_KEY, id=str(key.pk), label=key.name)
    if scope.acting is None:  # a platform administrator acts for one organization here (X-Organization)
        raise PermissionDenied("Organization owners and admins (or an API key) only.")
    user = request.user
    return scope.acting, AuditActor(type=AuditActorType.USER, id=str(user.pk), label=user.get_username())


class SubscriberSerializer(serializers.Serializer):
    """The documented body of PUT (validation is engine.subscribers.subscriber_clean)."""

    email = serializers.EmailField(required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text="E.164, e.g. +14155550100")
    display_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=150)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=10)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    data = serializers.DictField(required=False)  # type: ignore[assignment]  # a field, popped by the metaclass


class SubscriberOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    display_name = serializers.CharField()
    locale = serializers.CharField()
    timezone = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]  # a field, popped by the metaclass


class SubscriberView(APIView):
    """PUT (upsert: 201 created / 200 updated), GET, DELETE (anonymize + cancel pending)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: SubscriberOutSerializer})
    def get(self, request: Request, external_id: str) -> Response:
        organization, _ = acting_organization(request)
        return Response(subscriber_get(organization=organization, external_id=external_id).as_dict())

    @extend_schema(request=SubscriberSerializer, responses={200: SubscriberOutSerializer, 201: SubscriberOutSerializer})
    def put(self, request: Request, external_id: str) -> Response:
        organization, actor = acting_organization(request)
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        sub = subscriber_upsert(organization=organization, external_id=external_id, fields=request.data, actor=actor)
        return Response(sub.as_dict(), status=status.HTTP_201_CREATED if sub.status == "created" else status.HTTP_200_OK)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, external_id: str) -> Response:
        organization, actor = acting_organization(request)
        return Response(subscriber_delete(organization=organization, external_id=external_id, actor=actor))


class SubscriberBulkView(APIView):
    """POST {subscribers: [{external_id, email?, phone?, display_name?, locale?, timezone?, data?}]} (≤ 10,000)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        request=inline_serializer("SubscriberBulkIn", {"subscribers": serializers.ListField(child=serializers.DictField())}),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        organization, actor = acting_organization(request)
        if not isinstance(request.data, dict):
            raise ValidationError({"subscribers": ["Expected {\"subscribers\": [...]}."]})
        items = subscribers_clean(request.data.get("subscribers"), max_items=MAX_BULK)
        done = subscribers_upsert(organization=organization, items=items, actor=actor, source="api_bulk")
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for sub in done:
            counts[sub.status] += 1
        return Response({**counts, "subscribers": [{"id": s.id, "external_id": s.external_id, "status": s.status} for s in done]})


class SubscriberPreferencesView(APIView):
    """GET the subscriber's own preference rows; PUT them (the body of PUT /api/v1/preferences/)."""

    permission_classes = (IsAuthenticated,)

    def _rows(self, user_id: int) -> Any:
        rows = NotificationPreference.objects.filter(level=PreferenceLevel.USER, user_id=user_id).prefetch_related(
            "channel_preferences").order_by("scope", "category", "event_type", "pk")
        return PreferenceOutSerializer(rows, many=True).data

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, external_id: str) -> Response:
        organization, _ = acting_organization(request)
        user_id = commands.subscriber_user_id(organization=organization, external_id=external_id)
        return Response({"external_id": external_id, "preferences": self._rows(user_id)})

    @extend_schema(request=PreferencesPutSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request, external_id: str) -> Response:
        organization, actor = acting_organization(request)
        commands.subscriber_user_id(organization=organization, external_id=external_id)  # 404 before 400
        items = commands.preference_items(request.data)
        result = commands.subscriber_preferences_set(organization=organization, external_id=external_id, items=items, actor=actor)
        return Response({"external_id": external_id, "preferences": self._rows(result["user_id"])})


class NotificationCancelView(APIView):
    """POST {notification_ids | deduplication_key | correlation_id}: unsent deliveries become CANCELLED."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(request=commands.CancelSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        organization, actor = acting_organization(request)
        data = commands.validated(commands.CancelSerializer, request.data)
        return Response(notifications_cancel(organization=organization, actor=actor, **data))


class NotificationAcknowledgeView(APIView):
    """POST {by_external_id?}: acknowledge for the organization (stops the escalation)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        request=inline_serializer("AdminAcknowledgeIn", {"by_external_id": serializers.CharField(required=False)}),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, notification_id: int) -> Response:
        organization, actor = acting_organization(request)
        body = request.data if isinstance(request.data, dict) else {}
        data = commands.validated(commands.AcknowledgeSerializer, {**body, "notification_id": notification_id})
        return Response(commands.notification_acknowledge_in_organization(
            organization=organization, notification_id=data["notification_id"],
            by_external_id=data.get("by_external_id") or None, actor=actor,
        ))


class DeliveriesRetryView(APIView):
    """POST {delivery_ids}: each one retried now (all or nothing)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="admin_deliveries_retry_many", request=commands.DeliveryIdsSerializer,
                   responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        organization, actor = acting_organization(request)
        ids = commands.validated(commands.DeliveryIdsSerializer, request.data)["delivery_ids"]
        return Response(commands.deliveries_retry(organization=organization, delivery_ids=ids, actor=actor),
                        status=status.HTTP_202_ACCEPTED)
