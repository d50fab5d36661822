"""Roleplay template reads: the story owner's own templates, and public ones for everyone signed in."""
from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from common.exceptions import NotFound

from .models import RoleplayTemplate


def templates_visible_to(*, user, public_only: bool = False) -> QuerySet[RoleplayTemplate]:
    pk = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    qs = RoleplayTemplate.objects.select_related("story").prefetch_related("roles__character")
    if public_only:
        return qs.filter(is_public=True)
    if pk is None:
        return qs.filter(is_public=True)
    return qs.filter(Q(story__owner_id=pk) | Q(is_public=True))


def template_get_visible(*, template_id: Any, user) -> RoleplayTemplate:
    try:
        template_id = int(template_id)
    except (TypeError, ValueError):
        raise NotFound("Roleplay template not found.") from None
    template = templates_visible_to(user=user).filter(pk=template_id).first()
    if template is None:
        raise NotFound("Roleplay template not found.")
    return template


def template_serialize(template: RoleplayTemplate) -> dict[str, Any]:
    return {
        "id": template.pk,
        "story_id": template.story_id,
        "template_name": template.template_name,
        "description": template.description,
        "estimated_duration_minutes": template.estimated_duration_minutes,
        "difficulty_level": template.difficulty_level,
        "is_public": template.is_public,
        "total_characters": template.total_characters,
        "cast_complete": template.cast_completed_at is not None,
        "created_at": template.created_at,
        "roles": [
            {
                "id": role.pk,
                "character_id": role.character_id,
                "character_name": role.character.name,
                "role_name": role.role_name,
                "role_description": role.role_description,
                "required_voice_emotions": role.required_voice_emotions,
                "is_protagonist": role.is_protagonist,
                "filled": role.filled_at is not None,
            }
            for role in template.roles.all()
        ],
    }
