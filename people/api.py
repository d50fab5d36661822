"""`/api/v1/me/…` (API.md "People"): the signed-in person's own data, never anyone else's."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import user_profile_update
from common.exceptions import PermissionDenied, ValidationError
from common.schema import cursor_page
from invitations.models import HistoryAction, InvitationHistory

from .selectors import HISTORY_ACTIONS, user_delivery_analytics, user_history_filtered, user_invitation_summary


def request_person(request: Request) -> User:
    """These endpoints describe a person; an organization API key is nobody."""
    if not isinstance(request.user, User):
        raise PermissionDenied("This endpoint needs a signed-in user, not an API key.")
    return request.user


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "display_name", "phone", "locale", "timezone"]
        read_only_fields = fields


class MePatchSerializer(serializers.Serializer):
    """Documentation of the writable fields; the service validates them (E.164, languages, IANA)."""

    display_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    phone = serializers.CharField(required=False, allow_blank=True, help_text="E.164, e.g. +14155550100; empty clears it.")
    locale = serializers.CharField(required=False, help_text="A template language: en or fr.")
    timezone = serializers.CharField(required=False, help_text="IANA name, e.g. Europe/Paris.")


class MeApi(APIView):
    @extend_schema(operation_id="me_retrieve", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request_person(request)).data)

    @extend_schema(operation_id="me_partial_update", request=MePatchSerializer, responses=MeSerializer)
    def patch(self, request: Request) -> Response:
        user = request_person(request)
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "Send a JSON object."})
        user = user_profile_update(user=user, changes=dict(request.data))
        return Response(MeSerializer(user).data)


class SummarySerializer(serializers.Serializer):
    invitations_sent = serializers.IntegerField()
    invitations_received = serializers.IntegerField()
    invitations_accepted = serializers.IntegerField()
    invitations_declined = serializers.IntegerField()
    invitations_viewed = serializers.IntegerField()
    last_activity = serializers.DateTimeField(allow_null=True)


class HistoryEntrySerializer(serializers.ModelSerializer):
    invitation_id = serializers.IntegerField()
    action_timestamp = serializers.DateTimeField(source="created_at")
    response_data = serializers.SerializerMethodField()

    class Meta:
        model = InvitationHistory
        fields = ["invitation_id", "action", "action_timestamp", "response_data"]

    def get_response_data(self, obj: InvitationHistory) -> dict:
        invitation = obj.invitation
        data = {"story_id": invitation.story_id, "story_title": invitation.content_title,
                "content_type": invitation.content_type, "content_id": invitation.content_id,
                "conversation_style": invitation.conversation_style, "status": invitation.status}
        if obj.action == HistoryAction.RECEIVED:
            data["inviter"] = invitation.inviter.get_display_name()
        else:
            data["invitee"] = invitation.invitee
        return data


class HistoryPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class ChannelAnalyticsSerializer(serializers.Serializer):
    delivery_type = serializers.CharField()
    total_sent = serializers.IntegerField()
    successful_deliveries = serializers.IntegerField()
    failed_deliveries = serializers.IntegerField()
    success_rate = serializers.FloatField()


class DailyAnalyticsSerializer(serializers.Serializer):
    date = serializers.DateField()
    delivery_type = serializers.CharField()
    total_sent = serializers.IntegerField()
    successful_deliveries = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    by_channel = ChannelAnalyticsSerializer(many=True)
    daily = DailyAnalyticsSerializer(many=True)
    since = serializers.DateField()
    until = serializers.DateField()


class InvitationSummaryApi(APIView):
    @extend_schema(operation_id="me_invitations_summary", responses=SummarySerializer)
    def get(self, request: Request) -> Response:
        return Response(SummarySerializer(user_invitation_summary(user=request_person(request))).data)


class InvitationHistoryApi(APIView):
    @extend_schema(
        operation_id="me_invitations_history",
        parameters=[OpenApiParameter("action", str, enum=HISTORY_ACTIONS), OpenApiParameter("q", str),
                    OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses=cursor_page(HistoryEntrySerializer),
    )
    def get(self, request: Request) -> Response:
        user = request_person(request)
        action = request.query_params.get("action", "")
        if action and action not in HISTORY_ACTIONS:
            raise ValidationError({"action": [f"Expected one of {', '.join(HISTORY_ACTIONS)}."]})
        query = request.query_params.get("q", "")
        if len(query) > 200:
            raise ValidationError({"q": ["At most 200 characters."]})
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(user_history_filtered(user=user, action=action, query=query), request, view=self)
        return paginator.get_paginated_response(HistoryEntrySerializer(page, many=True).data)


class DeliveryAnalyticsApi(APIView):
    @extend_schema(operation_id="me_delivery_analytics", parameters=[OpenApiParameter("days", int)], responses=AnalyticsSerializer)
    def get(self, request: Request) -> Response:
        user = request_person(request)
        raw = request.query_params.get("days", "30")
        if not raw.isdigit() or not 1 <= int(raw) <= 366:
            raise ValidationError({"days": ["A number of days from 1 to 366."]})
        return Response(AnalyticsSerializer(user_delivery_analytics(user=user, days=int(raw))).data)
