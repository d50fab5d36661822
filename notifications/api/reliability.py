"""Operator API for reliability: dead letters and deliveries under ``/api/v1/admin/``.

Organization owners and admins see and act on their own organization only; platform
staff see every organization (or one, with ``?organization=<id>``). Replays, discards and
manual retries are audited by the services they call.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import MembershipRole, Organization
from accounts.selectors import admin_scope, user_is_platform_admin
from common.channels import CHANNEL_DEFINITIONS
from common.api import DB_BIGINT_MAX, DB_INT_MAX
from common.exceptions import NotFound, PermissionDenied, ValidationError
from common.pagination import cursor_paginated
from common.query import query_datetime, query_id
from notifications.engine.escalation import escalation_chain_delete, escalation_chain_save
from notifications.engine.retry import (
    channel_configuration_delete,
    channel_configuration_save,
    dead_letters_discard,
    dead_letters_replay,
    delivery_retry_now,
)
from notifications.enums import (
    Channel,
    Criticality,
    DeadLetterStatus,
    DeliveryStatus,
    EscalationCondition,
    EscalationRecipientType,
    RateLimitAction,
)
from notifications.models import ChannelConfiguration, DeadLetter, EscalationChain, EventType, NotificationDelivery

MAX_BULK = 500


def _scope(request: Request) -> int | None:
    """The organization id the caller may act on; None for platform administrators (all organizations)."""
    return admin_scope(request).organization_id


def _user_id(request: Request) -> int | None:
    return getattr(request.user, "pk", None)


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    value = value.upper()
    if value not in choices:
        raise ValidationError({name: [f"Unknown value {value!r}; expected one of {', '.join(choices)}."]})
    return value


def _datetime(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if not value:
        return None
    return query_datetime(value, name=name)


def _paginated(qs: QuerySet, request: Request, serialize, *, ordering: tuple[str, ...] = ("-created_at", "-id")) -> Response:
    return cursor_paginated(request, qs, serialize, ordering=ordering)


# --- dead letters --------------------------------------------------------------------------------------


def _dead_letter(dl: DeadLetter, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": dl.pk,
        "organization_id": dl.organization_id,
        "delivery_id": dl.delivery_id,
        "notification_id": (dl.payload or {}).get("notification_id"),
        "channel": dl.channel,
        "status": dl.status,
        "reason": dl.reason,
        "attempts": len(dl.error_history or []),
        "created_at": dl.created_at,
        "replayed_at": dl.replayed_at,
        "discarded_at": dl.discarded_at,
        "resolved_by": dl.resolved_by_id,
    }
    if full:
        out.update(payload=dl.payload, error_history=dl.error_history, provider_responses=dl.provider_responses)
    return out


def _dead_letters(request: Request) -> QuerySet[DeadLetter]:
    organization_id = _scope(request)
    qs = DeadLetter.objects.order_by("-created_at", "-pk")
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs


class DeadLetterListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        qs = _dead_letters(request)
        if status_filter := _choice(request, "status", DeadLetterStatus.values):
            qs = qs.filter(status=status_filter)
        if channel := _choice(request, "channel", Channel.values):
            qs = qs.filter(channel=channel)
        return _paginated(qs, request, _dead_letter)


class DeadLetterDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, dead_letter_id: int) -> Response:
        dl = _dead_letters(request).filter(pk=dead_letter_id).first()
        if dl is None:
            raise NotFound("Dead letter not found.")
        return Response(_dead_letter(dl, full=True))


class _IdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX), min_length=1, max_length=MAX_BULK)


def _ids(request: Request) -> list[int]:
    serializer = _IdsSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["ids"]


class DeadLetterReplayView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, dead_letter_id: int) -> Response:
        queued = dead_letters_replay(dead_letter_ids=[dead_letter_id], organization_id=_scope(request), user_id=_user_id(request))
        return Response({"replayed": [dead_letter_id], "delivery_ids": queued}, status=status.HTTP_202_ACCEPTED)


class DeadLetterBulkReplayView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        ids = _ids(request)
        queued = dead_letters_replay(dead_letter_ids=ids, organization_id=_scope(request), user_id=_user_id(request))
        return Response({"replayed": sorted(set(ids)), "delivery_ids": queued}, status=status.HTTP_202_ACCEPTED)


class DeadLetterDiscardView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, dead_letter_id: int) -> Response:
        dead_letters_discard(dead_letter_ids=[dead_letter_id], organization_id=_scope(request), user_id=_user_id(request))
        return Response({"discarded": [dead_letter_id]})


class DeadLetterBulkDiscardView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        ids = _ids(request)
        dead_letters_discard(dead_letter_ids=ids, organization_id=_scope(request), user_id=_user_id(request))
        return Response({"discarded": sorted(set(ids))})


# --- deliveries ------------------------------------------------------------------------------------------


def _delivery(d: NotificationDelivery) -> dict[str, Any]:
    return {
        "id": d.pk,
        "organization_id": d.organization_id,
        "notification_id": d.notification_id,
        "channel": d.channel,
        "status": d.status,
        "recipient_address": d.recipient_address,
        "provider": d.provider,
        "provider_message_id": d.provider_message_id,
        "attempts": d.attempts,
        "max_attempts": d.max_attempts,
        "next_retry_at": d.next_retry_at,
        "escalation_level": d.escalation_level,
        "fallback_from": d.fallback_from_id,
        "batch_id": d.batch_id,
        "error": d.error,
        "error_history": d.error_history,
        "skip_reason": d.skip_reason,
        "sent_at": d.sent_at,
        "delivered_at": d.delivered_at,
        "failed_at": d.failed_at,
        "created_at": d.created_at,
    }


def _deliveries(request: Request) -> QuerySet[NotificationDelivery]:
    organization_id = _scope(request)
    qs = NotificationDelivery.objects.order_by("-created_at", "-pk")
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    return qs


class DeliveryListView(APIView):
    """Filters: status, channel, provider, notification, created_after, created_before, retry_due."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        qs = _deliveries(request)
        if status_filter := _choice(request, "status", DeliveryStatus.values):
            qs = qs.filter(status=status_filter)
        if channel := _choice(request, "channel", Channel.values):
            qs = qs.filter(channel=channel)
        if provider := request.query_params.get("provider"):
            qs = qs.filter(provider=provider)
        if notification := request.query_params.get("notification"):
            qs = qs.filter(notification_id=query_id(notification, name="notification"))
        if after := _datetime(request, "created_after"):
            qs = qs.filter(created_at__gte=after)
        if before := _datetime(request, "created_before"):
            qs = qs.filter(created_at__lt=before)
        if request.query_params.get("retry_due") in ("1", "true"):
            qs = qs.filter(status=DeliveryStatus.PENDING, next_retry_at__isnull=False)
        return _paginated(qs, request, _delivery)


class DeliveryDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, delivery_id: int) -> Response:
        d = _deliveries(request).filter(pk=delivery_id).first()
        if d is None:
            raise NotFound("Delivery not found.")
        return Response(_delivery(d))


class DeliveryRetryView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, delivery_id: int) -> Response:
        delivery = delivery_retry_now(delivery_id=delivery_id, organization_id=_scope(request), user_id=_user_id(request))
        return Response(_delivery(delivery), status=status.HTTP_202_ACCEPTED)


# --- escalation chains and channel configurations -----------------------------------------------------
#
# Organization admins manage their organization's rows and read the platform-wide ones (which
# apply when the organization has none of its own); platform administrators manage both.


def _staff(request: Request) -> bool:
    return user_is_platform_admin(request.user)


def _visible(request: Request, qs: QuerySet) -> QuerySet:
    organization_id = _scope(request)
    if organization_id is None:
        return qs
    return qs.filter(Q(organization_id=organization_id) | Q(organization__isnull=True))


def _owner_for_create(request: Request, data: dict[str, Any]) -> int | None:
    """The organization a new row belongs to: the admin's own; platform administrators choose (null: platform-wide)."""
    organization_id = _scope(request)
    if organization_id is not None and not _staff(request):
        return organization_id
    wanted = data.get("organization_id", organization_id)
    if wanted is not None and not Organization.objects.filter(pk=wanted).exists():
        raise ValidationError({"organization_id": ["Unknown organization."]})
    return wanted


def _owner_for_change(request: Request, obj: Any) -> int | None:
    if obj.organization_id is None and not _staff(request):
        raise PermissionDenied("Platform-wide settings can only be changed by platform administrators.")
    return obj.organization_id


class _LevelSerializer(serializers.Serializer):
    level = serializers.IntegerField(min_value=0, max_value=50)
    delay_minutes = serializers.IntegerField(min_value=0, max_value=60 * 24 * 7)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), min_length=1, max_length=6)
    recipient_type = serializers.ChoiceField(choices=EscalationRecipientType.choices, default=EscalationRecipientType.ORIGINAL)
    recipient_role = serializers.ChoiceField(choices=MembershipRole.choices, required=False, allow_blank=True)
    recipient_user_id = serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX, required=False, allow_null=True)
    condition = serializers.ChoiceField(choices=EscalationCondition.choices, default=EscalationCondition.NOT_ACKNOWLEDGED)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH makes nested serializers partial too, but a level is always given whole.
        missing = [name for name in ("level", "delay_minutes", "channels") if name not in attrs]
        if missing:
            raise serializers.ValidationError({name: ["This field is required."] for name in missing})
        if len(set(attrs["channels"])) != len(attrs["channels"]):
            raise serializers.ValidationError({"channels": ["A channel is listed twice."]})
        kind = attrs.get("recipient_type", EscalationRecipientType.ORIGINAL)
        if kind == EscalationRecipientType.ROLE and not attrs.get("recipient_role"):
            raise serializers.ValidationError({"recipient_role": ["Required when escalating to a role."]})
        if kind == EscalationRecipientType.USER and not attrs.get("recipient_user_id"):
            raise serializers.ValidationError({"recipient_user_id": ["Required when escalating to a specific user."]})
        return attrs


class _ChainSerializer(serializers.Serializer):
    organization_id = serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX, required=False, allow_null=True)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    trigger_criticality = serializers.ChoiceField(choices=Criticality.choices, default=Criticality.CRITICAL)
    trigger_event_types = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    is_active = serializers.BooleanField(required=False)
    # many=True hands min_length/max_length to the ListSerializer it builds; the stubs only know the child's.
    levels = _LevelSerializer(many=True, min_length=1, max_length=20)  # type: ignore[call-arg]

    def validate_trigger_event_types(self, value: list[str]) -> list[str]:
        known = set(EventType.objects.filter(key__in=value).values_list("key", flat=True))
        unknown = [key for key in value if key not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown event type(s): {', '.join(unknown)}.")
        return value


def _chain(chain: EscalationChain) -> dict[str, Any]:
    return {
        "id": chain.pk,
        "organization_id": chain.organization_id,
        "scope": "ORGANIZATION" if chain.organization_id else "GLOBAL",
        "name": chain.name,
        "description": chain.description,
        "trigger_criticality": chain.trigger_criticality,
        "trigger_event_types": chain.trigger_event_types,
        "is_active": chain.is_active,
        "levels": [
            {"level": lvl.level, "delay_minutes": lvl.delay_minutes, "channels": lvl.channels,
             "recipient_type": lvl.recipient_type, "recipient_role": lvl.recipient_role,
             "recipient_user_id": lvl.recipient_user_id, "condition": lvl.condition}
            for lvl in sorted(chain.levels.all(), key=lambda lvl: lvl.level)
        ],
        "created_at": chain.created_at,
        "updated_at": chain.updated_at,
    }


def _chains(request: Request) -> QuerySet[EscalationChain]:
    return _visible(request, EscalationChain.objects.prefetch_related("levels").order_by("organization_id", "name", "pk"))


def _chain_get(request: Request, chain_id: int) -> EscalationChain:
    chain = _chains(request).filter(pk=chain_id).first()
    if chain is None:
        raise NotFound("Escalation chain not found.")
    return chain


class EscalationChainListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        return _paginated(_chains(request), request, _chain, ordering=("name", "id"))

    def post(self, request: Request) -> Response:
        serializer = _ChainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        chain = escalation_chain_save(organization_id=_owner_for_create(request, data), data=data, user_id=_user_id(request))
        return Response(_chain(_chain_get(request, chain.pk)), status=status.HTTP_201_CREATED)


class EscalationChainDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, chain_id: int) -> Response:
        return Response(_chain(_chain_get(request, chain_id)))

    def _save(self, request: Request, chain_id: int, *, partial: bool) -> Response:
        chain = _chain_get(request, chain_id)
        serializer = _ChainSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        escalation_chain_save(organization_id=_owner_for_change(request, chain), chain_id=chain.pk,
                              data=dict(serializer.validated_data), user_id=_user_id(request))
        return Response(_chain(_chain_get(request, chain_id)))

    def put(self, request: Request, chain_id: int) -> Response:
        return self._save(request, chain_id, partial=False)

    def patch(self, request: Request, chain_id: int) -> Response:
        return self._save(request, chain_id, partial=True)

    def delete(self, request: Request, chain_id: int) -> Response:
        chain = _chain_get(request, chain_id)
        escalation_chain_delete(organization_id=_owner_for_change(request, chain), chain_id=chain.pk, user_id=_user_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _ChannelConfigurationSerializer(serializers.Serializer):
    organization_id = serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX, required=False, allow_null=True)
    channel = serializers.ChoiceField(choices=Channel.choices)
    enabled = serializers.BooleanField(required=False)
    fallback_channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), required=False,
                                              max_length=6)
    rate_limit_user_per_minute = serializers.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False, allow_null=True)
    rate_limit_user_per_hour = serializers.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False, allow_null=True)
    rate_limit_org_per_minute = serializers.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False, allow_null=True)
    rate_limit_org_per_hour = serializers.IntegerField(min_value=1, max_value=DB_INT_MAX, required=False, allow_null=True)
    rate_limit_action = serializers.ChoiceField(choices=RateLimitAction.choices, required=False)
    settings = serializers.DictField(required=False)
    default_provider_id = serializers.IntegerField(min_value=1, max_value=DB_BIGINT_MAX, required=False, allow_null=True)

    def validate_fallback_channels(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A channel is listed twice.")
        return value


def _configuration(config: ChannelConfiguration) -> dict[str, Any]:
    return {
        "id": config.pk,
        "organization_id": config.organization_id,
        "scope": "ORGANIZATION" if config.organization_id else "GLOBAL",
        "channel": config.channel,
        "enabled": config.enabled,
        "fallback_channels": config.fallback_channels,
        "rate_limit_user_per_minute": config.rate_limit_user_per_minute,
        "rate_limit_user_per_hour": config.rate_limit_user_per_hour,
        "rate_limit_org_per_minute": config.rate_limit_org_per_minute,
        "rate_limit_org_per_hour": config.rate_limit_org_per_hour,
        "rate_limit_action": config.rate_limit_action,
        "settings": config.settings,
        "default_provider_id": config.default_provider_id,
        "updated_at": config.updated_at,
        # What the channel can carry and what it costs (seed 004 §4.2).
        "definition": CHANNEL_DEFINITIONS[config.channel].as_dict() if config.channel in CHANNEL_DEFINITIONS else None,
    }


def _configuration_get(request: Request, configuration_id: int) -> ChannelConfiguration:
    config = _visible(request, ChannelConfiguration.objects.all()).filter(pk=configuration_id).first()
    if config is None:
        raise NotFound("Channel configuration not found.")
    return config


class ChannelConfigurationListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        qs = _visible(request, ChannelConfiguration.objects.order_by("organization_id", "channel", "pk"))
        if channel := _choice(request, "channel", Channel.values):
            qs = qs.filter(channel=channel)
        return _paginated(qs, request, _configuration, ordering=("channel", "id"))

    def post(self, request: Request) -> Response:
        serializer = _ChannelConfigurationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        config = channel_configuration_save(organization_id=_owner_for_create(request, data), data=data,
                                            user_id=_user_id(request))
        return Response(_configuration(config), status=status.HTTP_201_CREATED)


class ChannelConfigurationDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, configuration_id: int) -> Response:
        return Response(_configuration(_configuration_get(request, configuration_id)))

    def patch(self, request: Request, configuration_id: int) -> Response:
        config = _configuration_get(request, configuration_id)
        serializer = _ChannelConfigurationSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if k not in ("channel", "organization_id")}
        saved = channel_configuration_save(organization_id=_owner_for_change(request, config), configuration_id=config.pk,
                                           data=data, user_id=_user_id(request))
        return Response(_configuration(saved))

    def delete(self, request: Request, configuration_id: int) -> Response:
        config = _configuration_get(request, configuration_id)
        channel_configuration_delete(organization_id=_owner_for_change(request, config), configuration_id=config.pk,
                                     user_id=_user_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- OpenAPI: these views build their answers by hand, so say what they take and give -------------


# A collection and its item share a path prefix; name the collection's operations explicitly so
# the generated operationIds don't collide (and get numeral suffixes).
_OPERATION_IDS = {
    (DeadLetterListView, "get"): "admin_dead_letters_list",
    (DeadLetterBulkReplayView, "post"): "admin_dead_letters_bulk_replay",
    (DeadLetterBulkDiscardView, "post"): "admin_dead_letters_bulk_discard",
    (DeliveryListView, "get"): "admin_deliveries_list",
    (EscalationChainListView, "get"): "admin_escalation_chains_list",
    (ChannelConfigurationListView, "get"): "admin_channel_configurations_list",
}


def _document(view: type[APIView], method: str, *, request: Any = None, code: int = 200) -> None:
    handler = getattr(view, method)
    responses = {code: OpenApiTypes.OBJECT if code != 204 else None}
    schema = extend_schema(request=request, responses=responses, tags=["admin: reliability"],
                           operation_id=_OPERATION_IDS.get((view, method)))
    setattr(view, method, schema(handler))


for _view, _method, _request, _code in (
    (DeadLetterListView, "get", None, 200),
    (DeadLetterDetailView, "get", None, 200),
    (DeadLetterReplayView, "post", None, 202),
    (DeadLetterBulkReplayView, "post", _IdsSerializer, 202),
    (DeadLetterDiscardView, "post", None, 200),
    (DeadLetterBulkDiscardView, "post", _IdsSerializer, 200),
    (DeliveryListView, "get", None, 200),
    (DeliveryDetailView, "get", None, 200),
    (DeliveryRetryView, "post", None, 202),
    (EscalationChainListView, "get", None, 200),
    (EscalationChainListView, "post", _ChainSerializer, 201),
    (EscalationChainDetailView, "get", None, 200),
    (EscalationChainDetailView, "put", _ChainSerializer, 200),
    (EscalationChainDetailView, "patch", _ChainSerializer, 200),
    (EscalationChainDetailView, "delete", None, 204),
    (ChannelConfigurationListView, "get", None, 200),
    (ChannelConfigurationListView, "post", _ChannelConfigurationSerializer, 201),
    (ChannelConfigurationDetailView, "get", None, 200),
    (ChannelConfigurationDetailView, "patch", _ChannelConfigurationSerializer, 200),
    (ChannelConfigurationDetailView, "delete", None, 204),
):
    _document(_view, _method, request=_request, code=_code)
