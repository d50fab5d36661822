"""In-app inbox API (API.md "In-app inbox"): the signed-in user's own notifications."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import request_user
from common.pagination import CursorPage
from common.schema import cursor_page
from notifications.engine import inbox
from notifications.serializers_inbox import InboxNotificationSerializer


class IsPerson(permissions.BasePermission):
    """A signed-in person: an organization's API key has no inbox."""

    message = "The inbox belongs to a signed-in user; API keys have none."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "pk", None) is not None)


class InboxCursorPagination(CursorPage):
    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class InboxListView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(inbox.INBOX_STATUSES)), OpenApiParameter("cursor", str),
                    OpenApiParameter("page_size", int),
                    OpenApiParameter("group_key", str, description="Only the items of this group (IN_APP group_key).")],
        responses={200: cursor_page(InboxNotificationSerializer)},
    )
    def get(self, request: Request) -> Response:
        qs = inbox.notifications_for_user(user_id=request_user(request).pk, status=request.query_params.get("status"),
                                          group_key=request.query_params.get("group_key"))
        paginator = InboxCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(InboxNotificationSerializer(page, many=True).data)


class UnreadCountView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"count": inbox.inbox_unread_count(user_id=request_user(request).pk)})


class _ItemActionView(APIView):
    permission_classes = [IsPerson]
    service = staticmethod(inbox.notification_mark_read)

    @extend_schema(request=None, responses={200: InboxNotificationSerializer})
    def post(self, request: Request, notification_id: int) -> Response:
        notification = type(self).service(user_id=request_user(request).pk, notification_id=notification_id)
        return Response(InboxNotificationSerializer(notification).data)


class ReadView(_ItemActionView):
    service = staticmethod(inbox.notification_mark_read)


class UnreadView(_ItemActionView):
    service = staticmethod(inbox.notification_mark_unread)


class ArchiveView(_ItemActionView):
    service = staticmethod(inbox.notification_archive)


class AcknowledgeView(_ItemActionView):
    service = staticmethod(inbox.notification_acknowledge)


class ActionView(APIView):
    """The recipient chose one of the item's IN_APP actions (a custom one calls the organization back)."""

    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={200: InboxNotificationSerializer})
    def post(self, request: Request, notification_id: int, action_id: str) -> Response:
        notification = inbox.notification_action(user_id=request_user(request).pk, notification_id=notification_id, action_id=action_id)
        return Response(InboxNotificationSerializer(notification).data)


class ReadAllView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        changed = inbox.notifications_mark_all_read(user_id=request_user(request).pk)
        return Response({"updated": changed, "count": 0})
