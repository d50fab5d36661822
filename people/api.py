"""`/api/v1/me/…` (API.md "People"): the signed-in person's own data, never anyone else's."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import user_profile_update
from common.exceptions import PermissionDenied, ValidationError


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
