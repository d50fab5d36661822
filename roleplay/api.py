"""Roleplay endpoints (API.md "Content beyond stories"): thin views over services and selectors."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations.api import request_person
from narrations.selectors import story_get_for_owner

from . import selectors, services


class StoryTemplatesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=dict, responses={201: dict}, summary="Create a roleplay template of a story")
    def post(self, request: Request, story_id: int) -> Response:
        user = request_person(request)
        story = story_get_for_owner(story_id=story_id, user=user)
        template = services.roleplay_template_create(story=story, created_by=user, body=request.data)
        template = selectors.template_get_visible(template_id=template.pk, user=user)
        return Response(selectors.template_serialize(template), status=status.HTTP_201_CREATED)


class TemplatesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, summary="Roleplay templates: yours and public ones (?public=true: public only)",
                   operation_id="roleplay_templates_list")
    def get(self, request: Request) -> Response:
        public_only = request.query_params.get("public", "").lower() in {"1", "true", "yes"}
        templates = selectors.templates_visible_to(user=request.user, public_only=public_only).order_by("-created_at", "-pk")[:200]
        return Response([selectors.template_serialize(t) for t in templates])


class TemplateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, summary="One roleplay template")
    def get(self, request: Request, roleplay_template_id: int) -> Response:
        template = selectors.template_get_visible(template_id=roleplay_template_id, user=request.user)
        return Response(selectors.template_serialize(template))
