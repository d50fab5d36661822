"""Writes for roleplay templates and the roles invitations hold."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from common.exceptions import ValidationError
from narrations.models import Story, StoryCharacter

from .models import Difficulty, RoleplayCharacterRole, RoleplayTemplate

ROLES_MAX = 50
EMOTIONS_MAX, EMOTION_MAX = 10, 40
DURATION_MAX = 24 * 60
_FIELDS = {"template_name", "description", "estimated_duration_minutes", "difficulty_level", "is_public", "roles"}
_ROLE_FIELDS = {"character_id", "role_name", "role_description", "required_voice_emotions", "is_protagonist"}


def _text(value: Any, *, limit: int, required: bool) -> tuple[str, str | None]:
    if value in (None, ""):
        return "", ("This field is required." if required else None)
    if not isinstance(value, str):
        return "", "Must be text."
    value = value.strip()
    if required and not value:
        return "", "This field may not be blank."
    if len(value) > limit:
        return "", f"Ensure this field has at most {limit} characters."
    return value, None


def _validate(story: Story, body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise ValidationError({"detail": "Send a JSON object."})
    errors: dict[str, Any] = {}
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    data: dict[str, Any] = {}
    for name, limit, required in (("template_name", 255, True), ("description", 5000, False)):
        data[name], problem = _text(body.get(name), limit=limit, required=required)
        if problem:
            errors[name] = [problem]
    difficulty = body.get("difficulty_level")
    if difficulty not in Difficulty.values:
        errors["difficulty_level"] = [f"Choose one of: {', '.join(Difficulty.values)}."]
    data["difficulty_level"] = difficulty
    duration = body.get("estimated_duration_minutes")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= DURATION_MAX):
        errors["estimated_duration_minutes"] = [f"A whole number of minutes between 1 and {DURATION_MAX}."]
    data["estimated_duration_minutes"] = duration
    is_public = body.get("is_public", False)
    if not isinstance(is_public, bool):
        errors["is_public"] = ["Must be true or false."]
    data["is_public"] = is_public is True

    raw_roles = body.get("roles")
    roles: list[dict[str, Any]] = []
    if not isinstance(raw_roles, list) or not raw_roles:
        errors["roles"] = ["Give at least one role."]
    elif len(raw_roles) > ROLES_MAX:
        errors["roles"] = [f"At most {ROLES_MAX} roles."]
    else:
        characters = dict(StoryCharacter.objects.filter(story=story).values_list("pk", "name"))
        role_errors: dict[str, dict[str, list[str]]] = {}
        seen: dict[int, int] = {}
        for index, raw in enumerate(raw_roles):
            problems: dict[str, list[str]] = {}
            if not isinstance(raw, dict):
                role_errors[str(index)] = {"non_field_errors": ["Each role must be an object."]}
                continue
            extra = sorted(set(raw) - _ROLE_FIELDS)
            if extra:
                problems["non_field_errors"] = [f"Unknown field(s): {', '.join(extra)}."]
            character_id = raw.get("character_id")
            if isinstance(character_id, bool) or not isinstance(character_id, int) or character_id not in characters:
                problems["character_id"] = ["This character is not part of the story."]
            elif character_id in seen:
                problems["character_id"] = [f"This character already has a role (role {seen[character_id]})."]
            else:
                seen[character_id] = index
            role_name, problem = _text(raw.get("role_name"), limit=100, required=True)
            if problem:
                problems["role_name"] = [problem]
            description, problem = _text(raw.get("role_description"), limit=2000, required=False)
            if problem:
                problems["role_description"] = [problem]
            emotions = raw.get("required_voice_emotions") or []
            if not isinstance(emotions, list) or not all(isinstance(e, str) and e.strip() for e in emotions) \
                    or len(emotions) > EMOTIONS_MAX or any(len(e) > EMOTION_MAX for e in emotions):
                problems["required_voice_emotions"] = [f"A list of at most {EMOTIONS_MAX} words."]
                emotions = []
            protagonist = raw.get("is_protagonist", False)
            if not isinstance(protagonist, bool):
                problems["is_protagonist"] = ["Must be true or false."]
            if problems:
                role_errors[str(index)] = problems
                continue
            roles.append({
                "character_id": character_id, "role_name": role_name, "role_description": description,
                "required_voice_emotions": list(dict.fromkeys(e.strip().lower() for e in emotions)),
                "is_protagonist": protagonist is True,
            })
        if role_errors:
            errors["roles"] = role_errors
    if errors:
        raise ValidationError(errors)
    return data, roles


@transaction.atomic(durable=True)
def roleplay_template_create(*, story: Story, created_by, body: Any) -> RoleplayTemplate:
    """A template of `story` and its roles, all or nothing; total_characters is the number of roles."""
    data, roles = _validate(story, body)
    template = RoleplayTemplate.objects.create(story=story, created_by=created_by, total_characters=len(roles), **data)
    RoleplayCharacterRole.objects.bulk_create([RoleplayCharacterRole(template=template, **role) for role in roles])
    return template


def role_fill(*, role_id: int) -> RoleplayTemplate | None:
    """Mark a role filled (inside the accepting transaction). Returns the template when this
    acceptance completed its cast — exactly once, the conditional UPDATE being the gate.

    The template row is locked first: two invitees accepting the last two roles at once must
    not each see the other's role still empty (then nobody would complete the cast).
    """
    template_id = RoleplayCharacterRole.objects.filter(pk=role_id).values_list("template_id", flat=True).first()
    if template_id is None:
        return None
    list(RoleplayTemplate.objects.select_for_update().filter(pk=template_id).values_list("pk", flat=True))
    now = timezone.now()
    RoleplayCharacterRole.objects.filter(pk=role_id, filled_at__isnull=True).update(filled_at=now)
    if RoleplayCharacterRole.objects.filter(template_id=template_id, filled_at__isnull=True).exists():
        return None
    completed = RoleplayTemplate.objects.filter(pk=template_id, cast_completed_at__isnull=True).update(cast_completed_at=now)
    return RoleplayTemplate.objects.select_related("story", "created_by").get(pk=template_id) if completed else None
