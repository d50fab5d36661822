"""POST /api/v1/events/ (an event in, its notifications out) and GET
/api/v1/notifications/{id}/trace/ (what became of it on each channel)."""
from __future__ import annotations

from typing import cast

from django.db.models.fields.json import KT
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ServicePrincipal
from accounts.models import ApiKey, Organization, User
from accounts.selectors import request_organization, user_is_org_admin, user_is_platform_admin
from common.exceptions import NotFound, PermissionDenied, ValidationError
from notifications import services
from notifications.engine.event_limits import organization_events_check
from notifications.enums import AuditActorType
from notifications.models import Notification, NotificationDelivery
from notifications.serializers_intake import EventInSerializer, EventOutSerializer

from .base import is_service as _is_service


# --- events ------------------------------------------------------------------------------------------


class EventsView(APIView):
    """POST /api/v1/events/ — an organization's API key, or a platform administrator."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(request=EventInSerializer, responses={202: EventOutSerializer})
    def post(self, request: Request) -> Response:
        raw = request.data
        payload = services.event_validated_payload(raw)
        organization: Organization | None
        if _is_service(request):
            # ApiKeyAuthentication sets both: the key's ServicePrincipal and the ApiKey.
            organization = cast(ServicePrincipal, request.user).organization
            key = cast(ApiKey, request.auth)
            actor = services.AuditActor(type=AuditActorType.API_KEY, id=str(key.pk), label=key.name)
        else:
            if not user_is_platform_admin(request.user):
                raise PermissionDenied("Events are sent with an organization API key (or by a platform administrator).")
            declared = payload.get("organization_id")
            organization = services.organization_resolve(declared) if declared else request_organization(request)
            if organization is None:
                raise ValidationError({"organization_id": ["This field is required."]})
            actor = services.AuditActor(type=AuditActorType.USER, id=str(request.user.pk), label=request.user.get_username())
        # One tenant cannot flood the shared intake: 429 + Retry-After, nothing saved.
        organization_events_check(organization=organization)
        answer = services.events_emit_idempotent(
            organization=organization, payload=payload, raw_body=raw,
            idempotency_key=request.headers.get("Idempotency-Key"), source="api", audit_actor=actor,
        )
        # The body already has EventOutSerializer's shape (engine EmitResult.as_dict): serializing
        # 10,000 items through DRF again would cost more than writing them.
        response = Response(answer.body, status=answer.status_code)
        if answer.replayed:
            response["Idempotency-Replay"] = "true"
        return response


# --- trace ---------------------------------------------------------------------------------------------


def notification_get_for_trace(*, request: Request, notification_id: int) -> Notification:
    """The notification if the caller is its recipient or an admin of its organization; else 404."""
    notification = Notification.objects.select_related("organization").filter(pk=notification_id).first()
    if notification is None:
        raise NotFound()
    if _is_service(request):
        if cast(ServicePrincipal, request.user).organization.pk == notification.organization_id:
            return notification
        raise NotFound()
    user = cast(User, request.user)  # IsAuthenticated, and not an API key: a signed-in person
    if notification.recipient_id == user.pk or user_is_org_admin(user=user, organization=notification.organization):
        return notification
    raise NotFound()


class NotificationTraceView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        n = notification_get_for_trace(request=request, notification_id=pk)
        # `selection`: why that provider (providers.selection), e.g. "chose plivo: cheapest healthy provider covering GB".
        deliveries = NotificationDelivery.objects.filter(notification_id=n.pk).order_by("escalation_level", "channel").values(
            "id", "channel", "status", "skip_reason", "next_retry_at", "attempts", "provider", "sent_at", "error",
            "escalation_level", selection=KT("provider_response__selection"), status_note=KT("provider_response__status_note"),
        )
        return Response(
            {
                "id": n.pk,
                "event_id": str(n.event_id),
                "event_type": n.event_type,
                "category": n.category,
                "criticality": n.criticality,
                "status": n.status,
                "recipient_id": str(n.recipient_id) if n.recipient_id else None,
                "channels_requested": n.channels_requested,
                "created_at": n.created_at,
                "trace": n.trace,
                "deliveries": list(deliveries),
            }
        )
