"""Invitation endpoints (API.md "Stories and invitations"): thin views over services and selectors."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import User
from batchjobs.selectors import batch_job_latest_for_story, batch_job_serialize
from batchjobs.services import batch_jobs_refresh_for_story
from common.api import DB_BIGINT_MAX
from common.exceptions import PermissionDenied, ValidationError
from common.net import client_ip
from narrations.selectors import story_get_for_owner

from . import selectors, services
from .content_types import invitation_kind
from .models import StoryInvitation


def request_person(request: Request) -> User:
    """Invitations are sent by people; an organization API key has no story of its own."""
    if not isinstance(request.user, User):
        raise PermissionDenied("This endpoint needs a signed-in user, not an API key.")
    return request.user


def client_key(request: HttpRequest) -> str:
    # Behind proxies (TRUSTED_PROXY_COUNT) the address they vouch for; never a client-written header.
    return client_ip(request)


def _object_body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": "Send a JSON object."})
    return request.data


class InviteItemSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True, help_text="E.164, e.g. +14155550100")
    conversation_style = serializers.CharField()
    character_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=DB_BIGINT_MAX)
    roleplay_character_role_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="A role of a roleplay template of the story."
    )
    message = serializers.CharField(required=False, allow_blank=True)
    locale = serializers.CharField(required=False, allow_blank=True)


class InviteRequestSerializer(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True)
    invitations = InviteItemSerializer(many=True)


class StyleChangeSerializer(serializers.Serializer):
    conversation_style = serializers.CharField()


# The answer is a bare list (API.md), built by selectors.invitations_serialize.
INVITATION_LIST_SCHEMA = inline_serializer(
    name="StoryInvitationListItem",
    many=True,
    fields={
        "id": serializers.IntegerField(),
        "email": serializers.CharField(allow_null=True),
        "phone": serializers.CharField(allow_null=True),
        "conversation_style": serializers.CharField(),
        "character_id": serializers.IntegerField(allow_null=True),
        "message": serializers.CharField(),
        "locale": serializers.CharField(),
        "status": serializers.CharField(),
        "narration_id": serializers.IntegerField(allow_null=True),
        "deliveries": serializers.DictField(child=serializers.CharField(), help_text="Delivery state per channel."),
        "created_at": serializers.DateTimeField(),
        "viewed_at": serializers.DateTimeField(allow_null=True),
        "accepted_at": serializers.DateTimeField(allow_null=True),
        "declined_at": serializers.DateTimeField(allow_null=True),
        "revoked_at": serializers.DateTimeField(allow_null=True),
        "expires_at": serializers.DateTimeField(allow_null=True),
    },
)


class StoryInvitationsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=InviteRequestSerializer, responses={201: dict}, summary="Invite people to a story")
    def post(self, request: Request, story_id: int) -> Response:
        user = request_person(request)
        story = story_get_for_owner(story_id=story_id, user=user)
        body = _object_body(request)
        # Items are validated by the service, all of them at once, so every error comes back.
        result = services.invitations_send(
            story=story, inviter=user, items=body.get("invitations"), message=body.get("message") or ""
        )
        return Response(
            batch_answer(result),
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses={200: INVITATION_LIST_SCHEMA}, summary="A story's invitations with per-channel delivery status")
    def get(self, request: Request, story_id: int) -> Response:
        user = request_person(request)
        story = story_get_for_owner(story_id=story_id, user=user)
        return Response(selectors.invitations_serialize(selectors.invitations_for_story(story=story)))


class InvitationApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=StyleChangeSerializer, responses={200: dict}, summary="Change a pending invitation's style")
    def patch(self, request: Request, invitation_id: int) -> Response:
        user = request_person(request)
        body = _object_body(request)
        if "conversation_style" not in body:
            raise ValidationError({"conversation_style": ["This field is required."]})
        invitation = services.invitation_change_style(
            invitation_id=invitation_id, inviter=user, conversation_style=body["conversation_style"]
        )
        return Response(selectors.invitation_serialize(invitation))


def story_progress_payload(*, story) -> dict[str, Any]:
    """The delivery progress of the story's messages and of its latest invitation batch job."""
    batch_jobs_refresh_for_story(story=story)  # live: counters catch up with resolved deliveries
    job = batch_job_latest_for_story(story=story)
    return {
        **selectors.story_delivery_progress(story=story),
        "batch_job": batch_job_serialize(job) if job else None,
    }


class StoryInvitationProgressApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: inline_serializer("StoryDeliveryProgress", {
        "total": serializers.IntegerField(), "waiting": serializers.IntegerField(), "done": serializers.IntegerField(),
        "batch_job": serializers.DictField(allow_null=True)})},
        summary="How far the delivery of a story's invitations has got")
    def get(self, request: Request, story_id: int) -> Response:
        story = story_get_for_owner(story_id=story_id, user=request_person(request))
        return Response(story_progress_payload(story=story))


class InvitationRevokeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: dict}, summary="Revoke an invitation")
    def post(self, request: Request, invitation_id: int) -> Response:
        invitation = services.invitation_revoke(invitation_id=invitation_id, inviter=request_person(request))
        return Response(selectors.invitation_serialize(invitation))


class InvitationReissueApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=inline_serializer("InvitationReissueRequest", {"send": serializers.BooleanField(default=False)}),
        responses={200: inline_serializer("InvitationReissued", {"id": serializers.IntegerField(), "invite_url": serializers.URLField(),
                                                                 "sent": serializers.BooleanField()})},
        summary="A new link for a pending invitation (the previous one stops working), sent again when `send`",
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        inviter = request_person(request)
        body = request.data if isinstance(request.data, dict) else None
        if body is None or not isinstance(body.get("send", False), bool):
            raise ValidationError({"send": ["Expected true or false."]})
        invitation, url = services.invitation_reissue(invitation_id=invitation_id, inviter=inviter, send=body.get("send", False))
        return Response({"id": invitation.pk, "invite_url": url, "sent": bool(body.get("send", False))})


class TokenApi(APIView):
    """Base for the link holder's endpoints: the token is the credential, so no session and no CSRF."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invitation_token"

    def invitation(self, request: Request, token: str) -> StoryInvitation:
        return selectors.invitation_get_by_token(token=token, client_key=client_key(request))


def narration_payload(invitation: StoryInvitation) -> dict[str, Any] | None:
    kind = invitation_kind(invitation)
    narration = kind.narration_for(invitation)
    if narration is None:
        return None
    if narration.status == "ready":
        return kind.serialize_narration(narration)
    return {"id": narration.pk, "conversation_style": narration.conversation_style, "status": narration.status}


def batch_answer(result: services.InvitationBatchResult) -> dict[str, Any]:
    """The answer to an invitation batch, whatever the content (API.md: the same for every kind)."""
    return {
        "invitations": [
            {
                "id": invitation.pk,
                **selectors.invitation_content_fields(invitation),
                "email": invitation.invitee_email or None,
                "phone": invitation.invitee_phone or None,
                "conversation_style": invitation.conversation_style,
                "character_id": invitation.character_id,
                "status": invitation.status,
                "narration_id": result.narration_ids[invitation.pk],
                "expires_at": invitation.expires_at,
                "invite_url": result.invite_url(invitation.pk),
            }
            for invitation in result.invitations
        ],
        "narrations": [
            {
                "id": narration.pk,
                "conversation_style": narration.conversation_style,
                "status": narration.status,
                "created": narration.pk in result.new_narration_ids,
            }
            for narration in result.narrations
        ],
        "skipped": [
            {
                "index": skipped.index,
                "email": skipped.email or None,
                "phone": skipped.phone or None,
                "existing_invitation_id": skipped.existing_invitation_id,
                "reason": skipped.reason,
            }
            for skipped in result.skipped
        ],
    }


class InvitationByTokenApi(TokenApi):
    @extend_schema(responses={200: dict}, summary="Read an invitation by its link token")
    def get(self, request: Request, token: str) -> Response:
        invitation = self.invitation(request, token)
        services.invitation_record_view(invitation=invitation)
        return Response(selectors.invitation_public_serialize(invitation, narration=narration_payload(invitation)))


class InvitationAcceptApi(TokenApi):
    @extend_schema(request=None, responses={200: dict}, summary="Accept an invitation (idempotent)")
    def post(self, request: Request, token: str) -> Response:
        invitation = self.invitation(request, token)
        invitation, narration = services.invitation_accept(invitation_id=invitation.pk)
        return Response(
            {
                "status": invitation.status,
                **selectors.invitation_content_fields(invitation),
                "narration": invitation_kind(invitation).serialize_narration(narration),
            }
        )


class InvitationDeclineApi(TokenApi):
    @extend_schema(request=None, responses={200: dict}, summary="Decline an invitation")
    def post(self, request: Request, token: str) -> Response:
        invitation = self.invitation(request, token)
        invitation = services.invitation_decline(invitation_id=invitation.pk)
        return Response({"status": invitation.status, **selectors.invitation_content_fields(invitation)})

