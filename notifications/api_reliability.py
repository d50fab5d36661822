"""Operator API for reliability: dead letters and deliveries under ``/api/v1/admin/``.

Organization owners and admins see and act on their own organization only; platform
staff see every organization (or one, with ``?organization=<id>``). Replays, discards and
manual retries are audited by the services they call.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import request_organization, user_is_org_admin
from common.exceptions import NotFound, PermissionDenied, ValidationError
from notifications.engine.retry import dead_letters_discard, dead_letters_replay, delivery_retry_now
from notifications.enums import Channel, DeadLetterStatus, DeliveryStatus
from notifications.models import DeadLetter, NotificationDelivery

MAX_PAGE = 200
MAX_BULK = 500


def _scope(request: Request) -> int | None:
    """The organization id the caller may act on; None for platform staff (all organizations)."""
    user = request.user
    if getattr(user, "is_staff", False):
        wanted = request.query_params.get("organization")
        if wanted:
            if not str(wanted).isdigit():
                raise ValidationError({"organization": ["Expected an organization id."]})
            return int(wanted)
        return None
    if getattr(user, "pk", None) is None:
        raise PermissionDenied("This needs a signed-in organization admin.")
    organization = request_organization(request)
    if organization is None or not user_is_org_admin(user=user, organization=organization):
        raise PermissionDenied("Only organization owners and admins can do this.")
    return organization.pk


def _user_id(request: Request) -> int | None:
    return getattr(request.user, "pk", None)


def _page(request: Request) -> tuple[int, int]:
    try:
        limit = min(int(request.query_params.get("limit", 50)), MAX_PAGE)
        offset = max(int(request.query_params.get("offset", 0)), 0)
    except ValueError:
        raise ValidationError({"limit": ["limit and offset must be integers."]}) from None
    if limit < 1:
        raise ValidationError({"limit": ["limit must be at least 1."]})
    return limit, offset


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
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValidationError({name: ["Expected an ISO 8601 date-time."]})
    return parsed


def _paginated(qs: QuerySet, request: Request, serialize) -> Response:
    limit, offset = _page(request)
    total = qs.count()
    rows = [serialize(row) for row in qs[offset : offset + limit]]
    return Response({"count": total, "limit": limit, "offset": offset, "results": rows})


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
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_BULK)


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
            if not notification.isdigit():
                raise ValidationError({"notification": ["Expected a notification id."]})
            qs = qs.filter(notification_id=int(notification))
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
