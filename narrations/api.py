"""Stories and the conversation-style catalogue (API.md, "Stories and invitations")."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.selectors import request_organization
from common.exceptions import PermissionDenied

from .selectors import stories_for_user, story_get_for_owner, story_serialize
from .services import CHARACTERS_MAX, CONTENT_MAX, story_create
from .styles import style_catalogue


class CharacterInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class StoryInSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    content = serializers.CharField(max_length=CONTENT_MAX)
    # many=True hands max_length to the ListSerializer it builds; the stubs only know the child's arguments.
    characters = CharacterInSerializer(many=True, required=False, max_length=CHARACTERS_MAX)  # type: ignore[call-arg]

    def validate_characters(self, value: list[dict]) -> list[dict]:
        seen: set[str] = set()
        for item in value:
            key = item["name"].strip().casefold()
            if key in seen:
                raise serializers.ValidationError(f"The character name {item['name']!r} is used twice.")
            seen.add(key)
        return value


class CharacterOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class StoryOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    content = serializers.CharField()
    characters = CharacterOutSerializer(many=True)
    created_at = serializers.DateTimeField()


def _person(request: Request) -> User:
    # Stories belong to people; an organization API key has no one to own them.
    if not isinstance(request.user, User):
        raise PermissionDenied("Stories belong to a user: authenticate as a user, not with an API key.")
    return request.user


class StoryListCreateApi(APIView):
    @extend_schema(responses=StoryOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        stories = stories_for_user(user=_person(request))
        return Response([story_serialize(s) for s in stories])

    @extend_schema(request=StoryInSerializer, responses={201: StoryOutSerializer})
    def post(self, request: Request) -> Response:
        owner = _person(request)
        serializer = StoryInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        story = story_create(
            owner=owner,
            title=data["title"],
            content=data["content"],
            characters=data.get("characters"),
            organization=request_organization(request),
        )
        return Response(story_serialize(story), status=status.HTTP_201_CREATED)


class StoryDetailApi(APIView):
    @extend_schema(responses=StoryOutSerializer)
    def get(self, request: Request, story_id: int) -> Response:
        story = story_get_for_owner(story_id=story_id, user=_person(request))
        return Response(story_serialize(story))


class ConversationStyleListApi(APIView):
    # The catalogue is product copy, not data: invitees on the landing page may read it too.
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(
        responses=inline_serializer(
            "ConversationStyle",
            {"code": serializers.CharField(), "label": serializers.CharField(), "description": serializers.CharField()},
            many=True,
        )
    )
    def get(self, request: Request) -> Response:
        return Response(style_catalogue())
