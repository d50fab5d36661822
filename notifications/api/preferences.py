"""REST API of a person's settings: preferences (and an organization admin's levels), quiet hours,
DND, presence."""
from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization, Project, Team
from accounts.selectors import admin_scope, request_organization
from common.exceptions import PermissionDenied, ValidationError
from common.query import query_id
from notifications import services
from notifications.engine.preferences import preferences_effective
from notifications.engine.presence import presence_effective_status
from notifications.engine.quiet_hours import (
    quiet_config_from_row,
    quiet_hours_get_for_user,
    quiet_state_at,
)
from notifications.enums import AuditActorType, PreferenceLevel
from notifications.models import (
    ChannelPreference,
    EventType,
    NotificationPreference,
)
from notifications.serializers_intake import (
    AdminPreferencesPutSerializer,
    DndSerializer,
    HeartbeatSerializer,
    PreferenceOutSerializer,
    PreferencesPutSerializer,
    QuietHoursOutSerializer,
    QuietHoursPutSerializer,
)

from .base import person as _person
from .base import validated as _validated


# --- preferences -----------------------------------------------------------------------------------------


def _user_preferences(user_id: int) -> list[NotificationPreference]:
    return list(
        NotificationPreference.objects.filter(level=PreferenceLevel.USER, user_id=user_id)
        .prefetch_related(Prefetch("channel_preferences", queryset=ChannelPreference.objects.order_by("channel")))
        .order_by("scope", "category", "event_type", "pk")
    )


def _preferences_answer(request: Request, user) -> dict[str, Any]:
    organization = request_organization(request)
    org_id = organization.pk if organization else None
    event_types = list(EventType.objects.filter(is_active=True).order_by("category", "key"))
    effective = preferences_effective(user_id=user.pk, organization_id=org_id, event_types=event_types)
    return {
        "organization_id": org_id,
        "categories": effective["categories"],
        "event_types": effective["event_types"],
        "preferences": PreferenceOutSerializer(_user_preferences(user.pk), many=True).data,
    }


class PreferencesView(APIView):
    """GET: effective settings per event type × channel with the level each came from.
    PUT: upsert the user's own rows ({"preferences": [...]}, or the list itself)."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        user = _person(request)
        return Response(_preferences_answer(request, user))

    @extend_schema(request=PreferencesPutSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request) -> Response:
        user = _person(request)
        data = {"preferences": request.data} if isinstance(request.data, list) else request.data
        validated = _validated(PreferencesPutSerializer, data)
        organization = request_organization(request)
        services.preferences_replace(
            level=PreferenceLevel.USER, items=[dict(i) for i in validated["preferences"]], user_id=user.pk,
            actor_type=AuditActorType.USER, actor_id=str(user.pk), actor_label=user.get_username(),
            audit_organization_id=organization.pk if organization else None,
        )
        return Response(_preferences_answer(request, user))


class AdminPreferencesView(APIView):
    """Organization, team and project preferences of the caller's organization (org admins)."""

    permission_classes = (IsAuthenticated,)

    def _organization(self, request: Request) -> Organization:
        _person(request)
        organization = admin_scope(request).acting
        if organization is None:
            raise PermissionDenied("Organization admins only.")
        return organization

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        organization = self._organization(request)
        qs = NotificationPreference.objects.filter(
            organization=organization, level__in=[PreferenceLevel.ORGANIZATION, PreferenceLevel.TEAM, PreferenceLevel.PROJECT]
        )
        level = request.query_params.get("level")
        if level:
            qs = qs.filter(level=level.upper())
        for param in ("team_id", "project_id"):
            value = request.query_params.get(param)
            if value:
                qs = qs.filter(**{param: query_id(value, name=param)})
        qs = qs.prefetch_related("channel_preferences").order_by("level", "team_id", "project_id", "scope", "category", "event_type")
        return Response({"results": PreferenceOutSerializer(qs, many=True).data})

    @extend_schema(request=AdminPreferencesPutSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request) -> Response:
        organization = self._organization(request)
        validated = _validated(AdminPreferencesPutSerializer, request.data)
        level = validated["level"]
        team_id = project_id = None
        if level == PreferenceLevel.TEAM:
            team_id = validated["team_id"]
            if not Team.objects.filter(pk=team_id, organization=organization).exists():
                raise ValidationError({"team_id": ["Unknown team in this organization."]})
        if level == PreferenceLevel.PROJECT:
            project_id = validated["project_id"]
            if not Project.objects.filter(pk=project_id, organization=organization).exists():
                raise ValidationError({"project_id": ["Unknown project in this organization."]})
        saved = services.preferences_replace(
            level=level, items=[dict(i) for i in validated["preferences"]], organization_id=organization.pk,
            team_id=team_id, project_id=project_id, actor_type=AuditActorType.USER,
            actor_id=str(request.user.pk), actor_label=request.user.get_username(),
        )
        rows = NotificationPreference.objects.filter(pk__in=[p.pk for p in saved]).prefetch_related("channel_preferences")
        return Response({"results": PreferenceOutSerializer(rows, many=True).data})

    @extend_schema(request=AdminPreferencesPutSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        return self.put(request)


# --- quiet hours, DND, presence ------------------------------------------------------------------------------


def _quiet_answer(qh) -> dict[str, Any]:
    if qh is None:
        return {"id": None, "enabled": False, "schedules": [], "channel_rules": [], "dnd_until": None, "active_now": False}
    from django.utils import timezone

    data = dict(QuietHoursOutSerializer(qh).data)
    state = quiet_state_at(quiet_config_from_row(qh), now=timezone.now())
    data["active_now"] = state.active
    data["active_until"] = state.until.isoformat() if state.until else None
    return data


class QuietHoursView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        user = _person(request)
        return Response(_quiet_answer(quiet_hours_get_for_user(user=user)))

    @extend_schema(request=QuietHoursPutSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request) -> Response:
        user = _person(request)
        v = _validated(QuietHoursPutSerializer, request.data)
        organization = request_organization(request)
        qh = services.quiet_hours_set(
            user=user, organization_id=organization.pk if organization else None,
            timezone_name=v.get("timezone") or None, enabled=v["enabled"], default_action=v["default_action"],
            allow_critical=v["allow_critical"],
            schedules=[dict(s) for s in v["schedules"]], channel_rules=[dict(r) for r in v["channel_rules"]],
        )
        return Response(_quiet_answer(qh))


class DndView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(request=DndSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        user = _person(request)
        v = _validated(DndSerializer, request.data)
        organization = request_organization(request)
        qh = services.quiet_hours_set_dnd(user=user, organization_id=organization.pk if organization else None, until=v["until"])
        return Response(_quiet_answer(qh))


class PresenceHeartbeatView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(request=HeartbeatSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        user = _person(request)
        v = _validated(HeartbeatSerializer, request.data)
        presence = services.presence_heartbeat(
            user=user, status=v["status"], device_type=v["device_type"], connection_id=v["connection_id"]
        )
        return Response(
            {"status": presence.status, "effective_status": presence_effective_status(presence), "last_seen_at": presence.last_seen_at},
            status=status.HTTP_200_OK,
        )
