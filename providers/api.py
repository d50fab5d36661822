"""Provider administration API (/api/v1/admin/providers/) and the user's push subscriptions.

Organization admins manage their organization's records and see the global ones
read-only; platform administrators (superusers, or `accounts.administer_platform`) manage
everything. Secrets are write-only: answers show them masked, never in clear, and never log them.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ServicePrincipal
from accounts.models import Organization
from accounts.selectors import admin_scope, request_user, user_is_platform_admin
from common.api import DB_BIGINT_MAX, DB_INT_MAX, DB_INT_MIN
from common.exceptions import PermissionDenied, ValidationError
from common.channels import Channel

from . import maintenance, services, subscriptions
from .models import PushSubscriptionKind
from .registry import registry
from .secrets import mask_record_secrets
from .selectors import provider_get_visible, providers_visible_to


class IsProviderAdmin(BasePermission):
    message = "Only organization admins and platform administrators manage providers."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or isinstance(user, ServicePrincipal):
            return False
        try:
            admin_scope(request)
        except PermissionDenied:
            return False
        return True


def _caller_scope(request: Request) -> tuple[int | None, bool]:
    scope = admin_scope(request)
    return (scope.acting.pk if scope.acting else None), scope.platform_admin


def _can_edit(request: Request, record) -> bool:
    if user_is_platform_admin(request.user):
        return True
    organization_id, _ = _caller_scope(request)
    return record.organization_id is not None and record.organization_id == organization_id


def status_webhook_url(record) -> str | None:
    """Where this record's provider account posts delivery status (None: it does not)."""
    from django.conf import settings

    from .webhooks import ANYMAIL_TRACKING_VIEWS, TWILIO_CODES

    if record.code in ANYMAIL_TRACKING_VIEWS:
        return f"{settings.SITE_URL}/webhooks/anymail/{record.code}/tracking/{record.pk}/"
    if record.code in TWILIO_CODES:
        return f"{settings.SITE_URL}/webhooks/twilio/status/"
    if record.code == "meta_whatsapp":
        return f"{settings.SITE_URL}/webhooks/meta/whatsapp/"
    if record.code == "messagebird_sms":
        return f"{settings.SITE_URL}/webhooks/messagebird/sms/status/"
    if record.code == "onesignal":
        return f"{settings.SITE_URL}/webhooks/onesignal/{record.pk}/{{webhook_secret}}/"
    return None


class ProviderOutSerializer(serializers.Serializer):
    def to_representation(self, record) -> dict[str, Any]:
        request = self.context["request"]
        return {
            "id": record.pk,
            "organization_id": record.organization_id,
            "scope": "global" if record.organization_id is None else "organization",
            "code": record.code,
            "channel": record.channel,
            "name": record.name,
            "description": record.description,
            "priority": record.priority,
            "is_active": record.is_active,
            "is_default": record.is_default,
            "config": record.config,
            "secrets": mask_record_secrets(record),
            "secret_env_refs": record.secret_env_refs,
            "rate_limit_per_minute": record.rate_limit_per_minute,
            "daily_limit": record.daily_limit,
            "health_status": record.health_status,
            "health_message": record.health_message,
            "last_health_check_at": record.last_health_check_at,
            "read_only": not _can_edit(request, record),
            "status_webhook_url": status_webhook_url(record),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }


class _StringDict(serializers.DictField):
    child = serializers.CharField(allow_blank=True)


class ProviderInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    organization_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_BIGINT_MAX)
    priority = serializers.IntegerField(required=False, default=0, min_value=DB_INT_MIN, max_value=DB_INT_MAX)
    is_active = serializers.BooleanField(required=False, default=True)
    is_default = serializers.BooleanField(required=False, default=False)
    config = serializers.DictField(required=False, default=dict)
    secrets = serializers.DictField(required=False, default=dict, write_only=True)
    secret_env_refs = _StringDict(required=False, default=dict)
    rate_limit_per_minute = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_INT_MAX)
    daily_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_INT_MAX)

    def validate_code(self, value: str) -> str:
        if value not in registry:
            raise serializers.ValidationError(f"Unknown provider code. Known: {', '.join(registry.codes())}.")
        return value


class ProviderPatchSerializer(ProviderInSerializer):
    # None removes an inherited field (DRF); the stubs only allow another field there.
    code = None  # type: ignore[assignment]  # a record's provider cannot change; create another one
    organization_id = None  # type: ignore[assignment]
    channel = None  # type: ignore[assignment]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


def _refuse_env_refs_unless_platform_admin(request: Request, data: dict[str, Any]) -> None:
    # An environment variable reference reads the server's environment: that is the
    # platform's to decide, or any organization could borrow (or exfiltrate) its keys.
    if data.get("secret_env_refs") and not user_is_platform_admin(request.user):
        raise ValidationError({"secret_env_refs": ["Only platform administrators may reference environment variables; put the credentials in secrets."]})


class ProviderListView(APIView):
    permission_classes = [IsAuthenticated, IsProviderAdmin]

    @extend_schema(
        operation_id="admin_providers_list",
        parameters=[OpenApiParameter("channel", str, enum=list(Channel.values))],
        responses={200: inline_serializer(name="ProviderList", fields={"results": ProviderOutSerializer(many=True)})},
    )
    def get(self, request: Request) -> Response:
        organization_id, platform_admin = _caller_scope(request)
        qs = providers_visible_to(organization_id=organization_id, platform_admin=platform_admin).order_by("channel", "priority", "pk")
        channel = request.query_params.get("channel")
        if channel:
            if channel not in Channel.values:
                raise ValidationError({"channel": [f"Unknown channel {channel!r}."]})
            qs = qs.filter(channel=channel)
        return Response({"results": ProviderOutSerializer(list(qs), many=True, context={"request": request}).data})

    @extend_schema(request=ProviderInSerializer, responses={201: ProviderOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = ProviderInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        _refuse_env_refs_unless_platform_admin(request, data)
        organization_id, platform_admin = _caller_scope(request)
        if platform_admin:
            target = data.pop("organization_id", None)
            if target is not None and not Organization.objects.filter(pk=target).exists():
                raise ValidationError({"organization_id": ["Unknown organization."]})
        else:
            target = data.pop("organization_id", organization_id)
            if target != organization_id:
                raise PermissionDenied("Organization admins manage their own organization's providers only.")
        record = services.provider_create(organization_id=target, actor_id=request.user.pk, check_credentials=True, **data)
        return Response(ProviderOutSerializer(record, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProviderDetailView(APIView):
    permission_classes = [IsAuthenticated, IsProviderAdmin]

    def _get(self, request: Request, provider_id: int, *, edit: bool):
        organization_id, platform_admin = _caller_scope(request)
        record = provider_get_visible(provider_id=provider_id, organization_id=organization_id, platform_admin=platform_admin)
        if edit and not _can_edit(request, record):
            raise PermissionDenied("Global providers are read-only for organization admins.")
        return record

    @extend_schema(responses={200: ProviderOutSerializer})
    def get(self, request: Request, provider_id: int) -> Response:
        return Response(ProviderOutSerializer(self._get(request, provider_id, edit=False), context={"request": request}).data)

    @extend_schema(request=ProviderPatchSerializer, responses={200: ProviderOutSerializer})
    def patch(self, request: Request, provider_id: int) -> Response:
        record = self._get(request, provider_id, edit=True)
        serializer = ProviderPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        _refuse_env_refs_unless_platform_admin(request, data)
        record = services.provider_update(provider_id=record.pk, actor_id=request.user.pk, secrets=data.pop("secrets", None),
                                           check_credentials=True, **data)
        return Response(ProviderOutSerializer(record, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, provider_id: int) -> Response:
        record = self._get(request, provider_id, edit=True)
        services.provider_delete(provider_id=record.pk, actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProviderHealthCheckView(ProviderDetailView):
    # Inherits the detail view's lookup; only POST belongs here (a GET, PATCH or DELETE on
    # .../health-check/ must not read, edit or delete the provider).
    http_method_names = ["post", "options"]

    @extend_schema(
        request=None,
        responses={200: inline_serializer(name="ProviderHealthCheck", fields={
            "provider": ProviderOutSerializer(), "check": serializers.DictField(),
        })},
    )
    def post(self, request: Request, provider_id: int) -> Response:
        record = self._get(request, provider_id, edit=True)
        metric = maintenance.provider_health_check(provider_id=record.pk)
        record.refresh_from_db()
        return Response({
            "provider": ProviderOutSerializer(record, context={"request": request}).data,
            "check": {
                "is_healthy": metric.is_healthy,
                "checked_at": metric.checked_at,
                "response_time_ms": metric.response_time_ms,
                "error_message": metric.error_message,
                "success_rate_24h": str(metric.success_rate_24h) if metric.success_rate_24h is not None else None,
                "rate_limit_remaining": metric.rate_limit_remaining,
            },
        })


class ProviderCodesView(APIView):
    """What can be configured: each registered provider with its parameters."""

    permission_classes = [IsAuthenticated, IsProviderAdmin]

    @extend_schema(responses={200: inline_serializer(name="ProviderCodeList", fields={"results": inline_serializer(
        name="ProviderCode", many=True, fields={
            "code": serializers.CharField(), "channel": serializers.CharField(), "name": serializers.CharField(),
            "sensitive_params": serializers.ListField(child=serializers.CharField()),
            "required_params": serializers.ListField(child=serializers.CharField()),
        })})})
    def get(self, request: Request) -> Response:
        return Response({"results": [
            {"code": cls.code, "channel": cls.channel, "name": cls.name, "sensitive_params": list(cls.sensitive_params),
             "required_params": list(cls.required_params)}
            for cls in registry.all()
        ]})


class PushSubscriptionInSerializer(serializers.Serializer):
    endpoint = serializers.CharField(max_length=2000)
    keys = serializers.DictField(child=serializers.CharField(max_length=255), required=False, default=dict)
    kind = serializers.ChoiceField(choices=PushSubscriptionKind.choices, required=False, default=PushSubscriptionKind.WEBPUSH)
    device_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class PushSubscriptionView(APIView):
    """POST a browser's PushSubscription JSON (or an FCM token with kind=FCM); DELETE by endpoint."""

    permission_classes = [IsAuthenticated]

    def _user_id(self, request: Request) -> int:
        if isinstance(request.user, ServicePrincipal):
            raise PermissionDenied("Push subscriptions belong to a signed-in user.")
        return request_user(request).pk

    @extend_schema(request=PushSubscriptionInSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        user_id = self._user_id(request)
        serializer = PushSubscriptionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = subscriptions.push_subscription_save(
            user_id=user_id, endpoint=data["endpoint"], p256dh=data["keys"].get("p256dh", ""), auth=data["keys"].get("auth", ""),
            kind=data["kind"], device_id=data["device_id"], user_agent=request.headers.get("User-Agent", ""),
        )
        return Response({"id": subscription.pk, "kind": subscription.kind, "device_id": subscription.device_id,
                         "created_at": subscription.created_at}, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=inline_serializer(name="PushSubscriptionDelete", fields={"endpoint": serializers.CharField()}),
        responses={204: None},
    )
    def delete(self, request: Request) -> Response:
        user_id = self._user_id(request)
        endpoint = request.data.get("endpoint") if hasattr(request.data, "get") else None
        if not endpoint:
            raise ValidationError({"endpoint": ["This field is required."]})
        subscriptions.push_subscription_delete(user_id=user_id, endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)
