"""Template administration API: ``/api/v1/admin/templates/`` (+ preview and test-send).

Organization admins manage their organization's templates (overrides of the platform
defaults) and can read the global ones; platform administrators manage the global ones too.
Content is validated in the rendering sandbox when saved: an unknown variable is refused.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import admin_scope
from common.exceptions import NotFound, PermissionDenied
from common.links import template_link_problem
from notifications.engine import templates as template_service
from notifications.enums import Channel, Criticality
from notifications.models import NotificationTemplate

LANGUAGE_CODES = template_service.LANGUAGE_CODES


def _caller_context(request: Request) -> tuple[Any, bool]:
    """(organization, is_platform_admin) of a caller allowed to administer templates, else 403."""
    scope = admin_scope(request)
    return scope.acting, scope.platform_admin


def templates_for_caller(*, organization, platform_admin: bool) -> QuerySet[NotificationTemplate]:
    qs = NotificationTemplate.objects.prefetch_related("channels").order_by("key", "organization_id", "pk")
    if platform_admin and organization is None:
        return qs
    return qs.filter(Q(organization__isnull=True) | Q(organization=organization))


def template_get_for_caller(*, organization, platform_admin: bool, template_id: int) -> NotificationTemplate:
    try:
        return templates_for_caller(organization=organization, platform_admin=platform_admin).get(pk=int(template_id))
    except (NotificationTemplate.DoesNotExist, ValueError):
        raise NotFound("Template not found.") from None


def _check_writable(template: NotificationTemplate, *, organization, platform_admin: bool) -> None:
    if template.organization_id is None and not platform_admin:
        raise PermissionDenied("Global templates are read-only; create an override for your organization.")
    if template.organization_id is not None and not platform_admin and template.organization_id != getattr(organization, "pk", None):
        raise NotFound("Template not found.")


# --- serializers -------------------------------------------------------------------------


class LocalizedContentSerializer(serializers.Serializer):
    subject = serializers.CharField(required=False, allow_blank=True, max_length=255)
    title = serializers.CharField(required=False, allow_blank=True, max_length=255)
    body = serializers.CharField(required=False, allow_blank=True)
    body_html = serializers.CharField(required=False, allow_blank=True)
    action_label = serializers.CharField(required=False, allow_blank=True, max_length=100)


class TemplateChannelSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    content = serializers.DictField(child=LocalizedContentSerializer(), help_text="Per language: {\"en\": {...}, \"fr\": {...}}")
    action_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    extra = serializers.DictField(required=False)

    def validate_action_url(self, value: str) -> str:
        problem = template_link_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_content(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(LANGUAGE_CODES))
        if unknown:
            raise serializers.ValidationError(f"Unknown language(s): {', '.join(unknown)}. Use: {', '.join(LANGUAGE_CODES)}.")
        default = settings.MODELTRANSLATION_DEFAULT_LANGUAGE
        if not any((value.get(default) or {}).values()):
            raise serializers.ValidationError(f"Content in '{default}' is required (other languages fall back to it).")
        return value


class TemplateWriteSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=100, required=False)
    event_type = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    default_criticality = serializers.ChoiceField(choices=Criticality.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    channels = TemplateChannelSerializer(many=True)

    def validate_channels(self, value: list[dict]) -> list[dict]:
        seen = [item["channel"] for item in value]
        if len(seen) != len(set(seen)):
            raise serializers.ValidationError("A channel is listed twice.")
        if not value:
            raise serializers.ValidationError("At least one channel is required.")
        return value


def template_as_dict(template: NotificationTemplate) -> dict[str, Any]:
    ids = {block.channel: block.pk for block in template.channels.all()}
    channels = [{"id": ids[block["channel"]], **block} for block in template_service.template_snapshot(template)["channels"]]
    return {
        "id": template.pk,
        "key": template.key,
        "event_type": template.event_type,
        "name": template.name,
        "description": template.description,
        "organization_id": template.organization_id,
        "scope": "GLOBAL" if template.organization_id is None else "ORGANIZATION",
        "default_criticality": template.default_criticality,
        "is_active": template.is_active,
        "is_default": template.is_default,
        "version": template.version,
        "variables": sorted(template.variables or []),
        "channels": channels,
        "updated_at": template.updated_at,
    }


# --- preview and test-send ----------------------------------------------------------------


class PreviewSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    locale = serializers.ChoiceField(choices=LANGUAGE_CODES, required=False)
    variables = serializers.DictField(required=False, help_text='Sample values by variable, e.g. {"task.title": "Fix login"}')


class TestSendSerializer(PreviewSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)


# --- views ---------------------------------------------------------------------------------


class TemplateListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(operation_id="admin_templates_list", parameters=[OpenApiParameter("event_type", str), OpenApiParameter("key", str)],
                   responses={200: OpenApiTypes.OBJECT}, description="`{results: [template]}`")
    def get(self, request: Request) -> Response:
        organization, platform_admin = _caller_context(request)
        qs = templates_for_caller(organization=organization, platform_admin=platform_admin)
        for name in ("event_type", "key"):
            if request.query_params.get(name):
                qs = qs.filter(**{name: request.query_params[name]})
        return Response({"results": [template_as_dict(t) for t in qs]})

    @extend_schema(request=TemplateWriteSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        organization, platform_admin = _caller_context(request)
        serializer = TemplateWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scope = request.data.get("scope") if isinstance(request.data, dict) else None
        data = dict(serializer.validated_data, scope=scope)
        template = template_service.template_create(user=request.user, organization=organization, platform_admin=platform_admin, data=data)
        return Response(template_as_dict(template), status=status.HTTP_201_CREATED)


class TemplateDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, template_id: int) -> Response:
        organization, platform_admin = _caller_context(request)
        return Response(template_as_dict(template_get_for_caller(organization=organization, platform_admin=platform_admin,
                                                                 template_id=template_id)))

    def _update(self, request: Request, template_id: int, *, partial: bool) -> Response:
        organization, platform_admin = _caller_context(request)
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        _check_writable(template, organization=organization, platform_admin=platform_admin)
        serializer = TemplateWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        template = template_service.template_update(user=request.user, template=template, data=dict(serializer.validated_data), partial=partial)
        template = NotificationTemplate.objects.prefetch_related("channels").get(pk=template.pk)
        return Response(template_as_dict(template))

    @extend_schema(request=TemplateWriteSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request, template_id: int) -> Response:
        return self._update(request, template_id, partial=False)

    @extend_schema(request=TemplateWriteSerializer, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request: Request, template_id: int) -> Response:
        return self._update(request, template_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, template_id: int) -> Response:
        organization, platform_admin = _caller_context(request)
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        _check_writable(template, organization=organization, platform_admin=platform_admin)
        template_service.template_delete(user=request.user, template=template)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplatePreviewView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=PreviewSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, template_id: int) -> Response:
        organization, platform_admin = _caller_context(request)
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        results = template_service.template_preview(
            template=template, channel=data.get("channel"), locale=data.get("locale"), variables=data.get("variables"),
            recipient_name=user.get_display_name() if hasattr(user, "get_display_name") else "Sample recipient",
            organization_name=getattr(organization, "name", "Example organization"),
        )
        return Response({"template_id": template.pk, "channels": results})


class TemplateTestSendView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=TestSendSerializer, responses={
        200: OpenApiTypes.OBJECT,
        502: OpenApiResponse(OpenApiTypes.OBJECT, description="Every provider of the channel refused or failed the send."),
    })
    def post(self, request: Request, template_id: int) -> Response:
        organization, platform_admin = _caller_context(request)
        if getattr(request.user, "pk", None) is None:
            raise PermissionDenied("A test send goes to the signed-in user; API keys have no address.")
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        serializer = TestSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = template_service.template_test_send(user=request.user, template=template, channel=data["channel"], locale=data.get("locale"),
                                    variables=data.get("variables"), organization=organization)
        return Response(result)


class TemplateVersionListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="`{results: [{version, note, created_by, created_at, content, changes}]}`, newest first; "
                               "`changes` is the diff from the version before: `[[kind, line]]`, kind `+`, `-`, ` ` or `@`.")
    def get(self, request: Request, template_id: int) -> Response:
        organization, platform_admin = _caller_context(request)
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        versions = list(template_service.template_versions(template=template))
        results = []
        for index, version in enumerate(versions):
            older = versions[index + 1].content if index + 1 < len(versions) else None
            results.append({
                "version": version.version, "note": version.note, "created_at": version.created_at,
                "created_by": version.created_by.get_username() if version.created_by else None,
                "content": version.content,
                "changes": template_service.template_version_diff(older=older, newer=version.content),
            })
        return Response({"template_id": template.pk, "current_version": template.version, "results": results})


class TemplateVersionRestoreView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT},
                   description="Bring back an older version's content; it becomes a new version.")
    def post(self, request: Request, template_id: int, version: int) -> Response:
        organization, platform_admin = _caller_context(request)
        template = template_get_for_caller(organization=organization, platform_admin=platform_admin, template_id=template_id)
        _check_writable(template, organization=organization, platform_admin=platform_admin)
        template = template_service.template_restore(user=request.user, template=template, version=version, source="api")
        template = NotificationTemplate.objects.prefetch_related("channels").get(pk=template.pk)
        return Response(template_as_dict(template))
