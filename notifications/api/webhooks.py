"""An organization's webhooks: ``/api/v1/admin/webhooks/`` (outgoing and incoming, secrets
write-only) and the public endpoint incoming webhooks are called at. Scoping as in
`notifications.api.history`."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.exceptions import NotFound, ValidationError
from notifications.engine import webhooks, webhooks_outgoing
from notifications.enums import (
    WebhookAuthType,
    WebhookDirection,
)
from notifications.models import Webhook

from .history import _scope


class WebhookSerializer(serializers.ModelSerializer):
    """Writes take an optional ``secret`` (stored encrypted, never returned) and ``clear_secret``."""

    secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)
    clear_secret = serializers.BooleanField(write_only=True, required=False, default=False)
    has_secret = serializers.SerializerMethodField()
    incoming_url = serializers.SerializerMethodField()
    direction = serializers.ChoiceField(choices=WebhookDirection.choices)
    auth_type = serializers.ChoiceField(choices=WebhookAuthType.choices, required=False)

    class Meta:
        model = Webhook
        fields = [
            "id", "organization_id", "public_id", "name", "description", "direction", "url", "auth_type",
            "event_types", "event_categories", "settings", "is_active", "retry_enabled", "max_retries",
            "secret", "clear_secret", "has_secret", "incoming_url", "last_triggered_at", "last_success_at",
            "last_failure_at", "last_error", "failure_count", "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "organization_id", "public_id", "last_triggered_at", "last_success_at", "last_failure_at",
            "last_error", "failure_count", "created_at", "updated_at",
        ]

    def get_has_secret(self, obj: Webhook) -> bool:
        return bool(obj.secret)

    def get_incoming_url(self, obj: Webhook) -> str | None:
        if obj.direction != WebhookDirection.INCOMING:
            return None
        from notifications.engine.delivery import absolute_url

        return absolute_url(f"/webhooks/incoming/{obj.public_id}/")

    def validate_settings(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        mapping = value.get("mapping")
        if mapping is not None and not (
            isinstance(mapping, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
        ):
            raise serializers.ValidationError({"mapping": 'Expected {"event.field": "payload.path", …}.'})
        return value


def _webhooks_for(organization_id: int | None) -> QuerySet[Webhook]:
    qs = Webhook.objects.order_by("name", "pk")
    return qs if organization_id is None else qs.filter(organization_id=organization_id)


def _split(validated: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    values = dict(validated)
    secret = values.pop("secret", None) or None
    clear = bool(values.pop("clear_secret", False))
    return values, secret, clear


class WebhookListView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="admin_webhooks_list", responses={200: inline_serializer(name="WebhookList", fields={"results": WebhookSerializer(many=True)})})
    def get(self, request: Request) -> Response:
        return Response({"results": WebhookSerializer(_webhooks_for(_scope(request)), many=True).data})

    @extend_schema(request=WebhookSerializer, responses={201: WebhookSerializer})
    def post(self, request: Request) -> Response:
        organization_id = _scope(request)
        if organization_id is None:
            raise ValidationError({"organization": ["Platform administrators create a webhook for one organization: ?organization=<id>."]})
        serializer = WebhookSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        values, secret, _clear = _split(serializer.validated_data)
        generated = None
        if not secret and values.get("auth_type", WebhookAuthType.HMAC_SHA256) == WebhookAuthType.HMAC_SHA256:
            # A signing secret nobody has to invent; this answer is the only time it is shown.
            secret = generated = webhooks_outgoing.webhook_secret_generate()
        webhook = webhooks.webhook_create(
            organization_id=organization_id, values=values, secret=secret, user_id=request.user.pk,
            actor_label=request.user.get_username(),
        )
        body = dict(WebhookSerializer(webhook).data)
        if generated:
            body["secret"] = generated
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    permission_classes = (IsAuthenticated,)

    def _get(self, request: Request, webhook_id: int) -> Webhook:
        webhook = _webhooks_for(_scope(request)).filter(pk=webhook_id).first()
        if webhook is None:
            raise NotFound("Webhook not found.")
        return webhook

    @extend_schema(responses={200: WebhookSerializer})
    def get(self, request: Request, webhook_id: int) -> Response:
        return Response(WebhookSerializer(self._get(request, webhook_id)).data)

    @extend_schema(request=WebhookSerializer, responses={200: WebhookSerializer})
    def patch(self, request: Request, webhook_id: int) -> Response:
        webhook = self._get(request, webhook_id)
        serializer = WebhookSerializer(webhook, data=request.data, partial=True)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        values, secret, clear = _split(serializer.validated_data)
        webhook = webhooks.webhook_update(
            webhook=webhook, values=values, secret=secret, clear_secret=clear, user_id=request.user.pk,
            actor_label=request.user.get_username(),
        )
        return Response(WebhookSerializer(webhook).data)

    put = patch

    @extend_schema(responses={204: None})
    def delete(self, request: Request, webhook_id: int) -> Response:
        webhook = self._get(request, webhook_id)
        webhooks.webhook_delete(webhook=webhook, user_id=request.user.pk, actor_label=request.user.get_username())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestView(APIView):
    """POST ``webhooks/{id}/test/``: send a signed ``webhook.test`` event now and report the answer."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, webhook_id: int) -> Response:
        webhook = WebhookDetailView()._get(request, webhook_id)
        return Response(webhooks_outgoing.webhook_send_test(webhook=webhook))


class IncomingWebhookView(APIView):
    """``POST /webhooks/incoming/<public_id>/``: authenticated by the webhook's own secret, not a session."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, public_id: str) -> Response:
        webhook = webhooks.webhook_get_incoming(public_id=public_id)
        answer = webhooks.webhook_receive(webhook=webhook, body=request.body, headers=request.headers)
        response = Response(answer.body, status=answer.status_code)
        if answer.replayed:
            response["Idempotency-Replay"] = "true"
        return response
