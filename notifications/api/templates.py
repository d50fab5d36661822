"""Template administration API: ``/api/v1/admin/templates/`` (+ preview and test-send).

Organization admins manage their organization's templates (overrides of the platform
defaults) and can read the global ones; platform administrators manage the global ones too.
Content is validated in the rendering sandbox when saved: an unknown variable is refused.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from modeltranslation.utils import build_localized_fieldname
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import request_organization, user_is_org_admin, user_is_platform_admin
from common.exceptions import NotFound, PermissionDenied, ValidationError
from common.links import html_links_sanitize, link_safe_or_empty, template_link_problem
from notifications.engine import rendering
from notifications.enums import AuditAction, AuditActorType, Channel, Criticality
from notifications.models import EventType, NotificationAuditLog, NotificationTemplate, TemplateChannel

LANGUAGE_CODES = [code for code, _ in settings.LANGUAGES]


def _caller_context(request: Request) -> tuple[Any, bool]:
    """(organization, is_platform_admin) of a caller allowed to administer templates, else 403."""
    user = request.user
    organization = request_organization(request)
    if user_is_platform_admin(user):
        return organization, True
    if getattr(user, "pk", None) is None:
        raise PermissionDenied("Template administration needs a signed-in organization admin.")
    if organization is None or not user_is_org_admin(user=user, organization=organization):
        raise PermissionDenied("Only organization owners and admins manage templates.")
    return organization, False


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
    channels = []
    for block in template.channels.all():
        content = {
            lang: {
                name: getattr(block, build_localized_fieldname(name, lang), "") or ""
                for name in rendering.CONTENT_FIELDS
            }
            for lang in LANGUAGE_CODES
        }
        channels.append({"id": block.pk, "channel": block.channel, "content": content, "action_url": block.action_url,
                         "extra": block.extra})
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


# --- services --------------------------------------------------------------------------


def _event_type(key: str) -> EventType:
    event_type = EventType.objects.filter(key=key).first()
    if event_type is None:
        raise ValidationError({"event_type": [f"Unknown event type '{key}'."]})
    return event_type


def template_allowed_variables(*, event_type: EventType) -> list[str]:
    return sorted(rendering.allowed_variables_for(event_type.variable_mapping))


def _validate_content(channels: list[dict], event_type: EventType) -> None:
    allowed = template_allowed_variables(event_type=event_type)
    contents: dict[str, dict[str, str]] = {}
    for block in channels:
        for lang, fields in block["content"].items():
            contents[f"{block['channel']}.{lang}"] = dict(fields)
        if block.get("action_url"):
            contents[f"{block['channel']}"] = {"action_url": block["action_url"]}
    rendering.template_validate(channel_contents=contents, allowed_variables=allowed)
    disallowed = [b["channel"] for b in channels if event_type.allowed_channels and b["channel"] not in event_type.allowed_channels]
    if disallowed:
        raise ValidationError({"channels": [f"Not allowed for {event_type.key}: {', '.join(disallowed)}."]})


def _write_channels(template: NotificationTemplate, channels: list[dict]) -> None:
    TemplateChannel.objects.filter(template=template).exclude(channel__in=[b["channel"] for b in channels]).delete()
    existing = {b.channel: b for b in TemplateChannel.objects.filter(template=template)}
    for block in channels:
        row = existing.get(block["channel"]) or TemplateChannel(template=template, channel=block["channel"])
        for lang in LANGUAGE_CODES:
            fields = block["content"].get(lang) or {}
            for name in rendering.CONTENT_FIELDS:
                setattr(row, build_localized_fieldname(name, lang), fields.get(name, "") or "")
        row.action_url = block.get("action_url", "") or ""
        row.extra = block.get("extra") or {}
        row.save()


def _audit(*, request: Request, template: NotificationTemplate | None, action: str, details: dict,
           organization_id: int | None = None) -> None:
    # A deletion passes template=None (the row is going away) and names its organization itself.
    NotificationAuditLog.objects.create(
        organization_id=template.organization_id if template else organization_id, template=template, action=action,
        actor_type=AuditActorType.USER, actor_id=str(request.user.pk), actor_label=request.user.get_username(),
        user_id=request.user.pk, details=details,
    )


@transaction.atomic
def template_create(*, request: Request, organization, platform_admin: bool, data: dict) -> NotificationTemplate:
    event_type = _event_type(data["event_type"])
    _validate_content(data["channels"], event_type)
    scope_global = platform_admin and data.get("scope") == "GLOBAL"
    if organization is None and not scope_global:
        raise ValidationError({"detail": "No organization to create the template for."})
    key = data.get("key") or event_type.template_key
    owner = None if scope_global else organization
    if NotificationTemplate.objects.filter(key=key, organization=owner).exists():
        raise ValidationError({"key": [f"A template '{key}' already exists here; update it instead."]})
    template = NotificationTemplate.objects.create(
        key=key, event_type=event_type.key, name=data["name"], description=data.get("description", ""),
        organization=owner, default_criticality=data.get("default_criticality") or event_type.default_criticality,
        is_active=data.get("is_active", True), variables=template_allowed_variables(event_type=event_type),
        created_by_id=request.user.pk, updated_by_id=request.user.pk,
    )
    _write_channels(template, data["channels"])
    _audit(request=request, template=template, action=AuditAction.TEMPLATE_CREATED, details={"key": key})
    return template


@transaction.atomic
def template_update(*, request: Request, template: NotificationTemplate, data: dict, partial: bool) -> NotificationTemplate:
    template = NotificationTemplate.objects.select_for_update().get(pk=template.pk)
    event_type = _event_type(data.get("event_type", template.event_type))
    if "channels" in data:
        _validate_content(data["channels"], event_type)
    elif not partial:
        raise ValidationError({"channels": ["This field is required."]})
    for name in ("name", "description", "default_criticality", "is_active"):
        if name in data:
            setattr(template, name, data[name])
    template.event_type = event_type.key
    template.variables = template_allowed_variables(event_type=event_type)
    template.version += 1
    template.updated_by_id = request.user.pk
    template.save()
    if "channels" in data:
        _write_channels(template, data["channels"])
    _audit(request=request, template=template, action=AuditAction.TEMPLATE_CHANGED,
           details={"version": template.version, "fields": sorted(data)})
    return template


# --- preview and test-send ----------------------------------------------------------------


class PreviewSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    locale = serializers.ChoiceField(choices=LANGUAGE_CODES, required=False)
    variables = serializers.DictField(required=False, help_text='Sample values by variable, e.g. {"task.title": "Fix login"}')


def template_preview(*, template: NotificationTemplate, channel: str | None, locale: str | None,
                     variables: dict[str, Any] | None, recipient_name: str, organization_name: str) -> list[dict[str, Any]]:
    """Render a template with sample values: one entry per channel (SMS with its segment count)."""
    event_type = EventType.objects.filter(key=template.event_type).first()
    mapping = dict(event_type.variable_mapping) if event_type else {}
    sample: dict[str, Any] = {name: f"[{name}]" for name in mapping}
    sample.update({"recipient.name": recipient_name, "organization.name": organization_name, "actor.name": "Alex Martin",
                   "action_url": f"{settings.SITE_URL}/inbox/", "event.type": template.event_type})
    sample.update({str(k): v for k, v in (variables or {}).items()})
    context = rendering.template_context_build(variable_mapping=None, source={}, standard=sample)
    results = []
    for block in template.channels.all():
        if channel and block.channel != channel:
            continue
        contents = rendering.template_channel_contents(block, locale=locale)
        rendered = rendering.content_render(contents=contents, context=context)
        entry: dict[str, Any] = {
            "channel": block.channel, "locale": rendering._language(locale),
            "subject": rendered.subject, "title": rendered.title, "body": rendered.body,
            "body_html": html_links_sanitize(rendered.body_html), "action_label": rendered.action_label,
            "action_url": link_safe_or_empty(rendering.template_render(block.action_url, context, html=False)) if block.action_url else "",
        }
        if block.channel in (Channel.SMS, Channel.WHATSAPP):
            entry["sms"] = rendering.sms_segments(rendered.body)
        results.append(entry)
    if channel and not results:
        raise ValidationError({"channel": [f"This template has no {channel} content."]})
    return results


class TestSendSerializer(PreviewSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)


def template_test_send(*, request: Request, template: NotificationTemplate, channel: str, locale: str | None,
                       variables: dict[str, Any] | None, organization) -> dict[str, Any]:
    """Render for the caller and send it to the caller's own address on ``channel``."""
    from providers.base import OutboundMessage
    from providers.services import provider_send_with_failover

    user = request.user
    [content] = template_preview(template=template, channel=channel, locale=locale or user.locale, variables=variables,
                                 recipient_name=user.get_display_name(), organization_name=getattr(organization, "name", ""))
    address = {Channel.EMAIL: user.email, Channel.SMS: user.phone, Channel.WHATSAPP: user.phone,
               Channel.VOICE: user.phone, Channel.PUSH: str(user.pk), Channel.IN_APP: str(user.pk)}[channel]
    if not address:
        raise ValidationError({"channel": [f"Your account has no address for {channel}."]})
    if channel == Channel.IN_APP:
        raise ValidationError({"channel": ["Use preview for in-app content: the inbox only holds real events."]})
    message = OutboundMessage(
        channel=channel, to=address, text=content["body"], subject=f"[Test] {content['subject'] or content['title']}",
        html=content["body_html"], title=content["title"], locale=content["locale"], action_url=content["action_url"],
        data={"template_id": str(template.pk), "test": "true"},
        metadata={"template_id": template.pk, "test": True},
    )
    outcome = provider_send_with_failover(organization_id=getattr(organization, "pk", None), channel=channel, message=message)
    result = getattr(outcome, "result", outcome)
    return {
        "channel": channel,
        "to": address,
        "provider": getattr(outcome, "provider_code", "") or getattr(outcome, "provider", ""),
        "provider_message_id": getattr(result, "provider_message_id", ""),
        "rendered": content,
    }


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
        data = dict(serializer.validated_data, scope=request.data.get("scope"))
        template = template_create(request=request, organization=organization, platform_admin=platform_admin, data=data)
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
        template = template_update(request=request, template=template, data=dict(serializer.validated_data), partial=partial)
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
        with transaction.atomic():
            _audit(request=request, template=None, action=AuditAction.TEMPLATE_DELETED,
                   organization_id=template.organization_id,
                   details={"key": template.key, "template_id": template.pk, "organization_id": template.organization_id})
            template.delete()
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
        results = template_preview(
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
        result = template_test_send(request=request, template=template, channel=data["channel"], locale=data.get("locale"),
                                    variables=data.get("variables"), organization=organization)
        return Response(result)
