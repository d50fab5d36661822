"""In-app inbox API (API.md "In-app inbox"): the signed-in user's own notifications."""
from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.schema import cursor_page
from notifications.engine import inbox, sse
from notifications.models import Notification


class IsPerson(permissions.BasePermission):
    """A signed-in person: an organization's API key has no inbox."""

    message = "The inbox belongs to a signed-in user; API keys have none."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "pk", None) is not None)


class InboxNotificationSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "event_type", "category", "criticality", "title", "body", "action_url", "action_label", "image_url",
            "actor", "resource", "is_read", "read_at", "archived_at", "acknowledged_at", "created_at",
        ]

    def get_actor(self, obj: Notification) -> dict:
        return {"type": obj.actor_type, "id": obj.actor_id, "name": obj.actor_name}

    def get_resource(self, obj: Notification) -> dict:
        return {"type": obj.resource_type, "id": obj.resource_id, "name": obj.resource_name}

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class InboxCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class InboxListView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(inbox.INBOX_STATUSES)), OpenApiParameter("cursor", str),
                    OpenApiParameter("page_size", int)],
        responses={200: cursor_page(InboxNotificationSerializer)},
    )
    def get(self, request: Request) -> Response:
        qs = inbox.notifications_for_user(user_id=request.user.pk, status=request.query_params.get("status"))
        paginator = InboxCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(InboxNotificationSerializer(page, many=True).data)


class UnreadCountView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"count": inbox.inbox_unread_count(user_id=request.user.pk)})


class _ItemActionView(APIView):
    permission_classes = [IsPerson]
    service = staticmethod(inbox.notification_mark_read)

    @extend_schema(request=None, responses={200: InboxNotificationSerializer})
    def post(self, request: Request, notification_id: int) -> Response:
        notification = type(self).service(user_id=request.user.pk, notification_id=notification_id)
        return Response(InboxNotificationSerializer(notification).data)


class ReadView(_ItemActionView):
    service = staticmethod(inbox.notification_mark_read)


class UnreadView(_ItemActionView):
    service = staticmethod(inbox.notification_mark_unread)


class ArchiveView(_ItemActionView):
    service = staticmethod(inbox.notification_archive)


class AcknowledgeView(_ItemActionView):
    service = staticmethod(inbox.notification_acknowledge)


class ReadAllView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        changed = inbox.notifications_mark_all_read(user_id=request.user.pk)
        return Response({"updated": changed, "count": 0})


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class StreamView(APIView):
    """Server-Sent Events: ``unread_count`` and ``notification`` events, heartbeat comments."""

    permission_classes = [IsPerson]
    renderer_classes = [EventStreamRenderer, JSONRenderer]

    @extend_schema(responses={(200, "text/event-stream"): OpenApiTypes.STR})
    def get(self, request: Request) -> StreamingHttpResponse:
        stream = sse.inbox_stream(user_id=request.user.pk, heartbeat=sse.HEARTBEAT_SECONDS,
                                  poll_interval=sse.POLL_SECONDS, max_seconds=sse.MAX_STREAM_SECONDS)
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
        return response
