"""Topics and their subscribers, under /api/v1/admin/topics/ (organization admin or API key).

Everything acts inside the caller's organization (notifications.api.subscribers
``acting_organization``): another organization's topic is a 404, its members are "unknown".
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

from notifications.engine import audiences
from notifications.models import Topic

from .subscribers import acting_organization


class TopicSerializer(serializers.ModelSerializer):
    subscriber_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Topic
        fields = ["id", "key", "name", "description", "subscriber_count", "created_at", "updated_at"]


def _topic(topic: Topic) -> dict[str, Any]:
    body = TopicSerializer(topic).data
    body["subscriber_count"] = topic.subscriptions.count()
    return body


_TOPIC_IN = inline_serializer("TopicIn", {"key": serializers.CharField(), "name": serializers.CharField(required=False),
                                          "description": serializers.CharField(required=False)})
_MEMBERS_IN = inline_serializer("TopicMembersIn", {
    "user_ids": serializers.ListField(child=serializers.CharField(), required=False),
    "external_ids": serializers.ListField(child=serializers.CharField(), required=False),
})


class TopicListView(APIView):
    """GET the organization's topics; POST {key, name?, description?} → 201."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: TopicSerializer(many=True)})
    def get(self, request: Request) -> Response:
        organization, _ = acting_organization(request)
        from django.db.models import Count

        qs = Topic.objects.filter(organization=organization).annotate(subscriber_count=Count("subscriptions")).order_by("key")
        return Response({"results": TopicSerializer(qs, many=True).data})

    @extend_schema(request=_TOPIC_IN, responses={201: TopicSerializer})
    def post(self, request: Request) -> Response:
        organization, _ = acting_organization(request)
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            from common.exceptions import ValidationError

            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        topic = audiences.topic_create(organization=organization, data=data)
        return Response(_topic(topic), status=status.HTTP_201_CREATED)


class TopicDetailView(APIView):
    """GET, PATCH {key?, name?, description?}, DELETE one topic (by key)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: TopicSerializer})
    def get(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        return Response(_topic(audiences.topic_get(organization=organization, key=key)))

    @extend_schema(request=_TOPIC_IN, responses={200: TopicSerializer})
    def patch(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        data = request.data if isinstance(request.data, dict) else {"non_field_errors": None}
        return Response(_topic(audiences.topic_update(organization=organization, key=key, data=data)))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        audiences.topic_delete(organization=organization, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TopicSubscribersView(APIView):
    """GET the subscribers; POST {user_ids?, external_ids?} subscribes (idempotent); DELETE the same body unsubscribes."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        rows = audiences.topic_subscribers(organization=organization, key=key)
        return Response({"results": [
            {"user_id": r["membership__user_id"], "external_id": r["membership__external_id"],
             "display_name": r["membership__user__display_name"], "subscribed_at": r["created_at"]}
            for r in rows
        ]})

    @extend_schema(request=_MEMBERS_IN, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        added = audiences.topic_subscribe(organization=organization, key=key, data=request.data)
        return Response({"added": added})

    @extend_schema(request=_MEMBERS_IN, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, key: str) -> Response:
        organization, _ = acting_organization(request)
        removed = audiences.topic_unsubscribe(organization=organization, key=key, data=request.data)
        return Response({"removed": removed})
