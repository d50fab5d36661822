"""A story invitation item may name a roleplay role (`roleplay_character_role_id`): the
invitation becomes a `roleplay_character` invitation holding that role."""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.exceptions import TroubadourError
from invitations.content_types import ItemExtension
from invitations.models import HistoryAction, InvitationHistory, InvitationStatus, StoryInvitation
from notifications.enums import ActorType
from notifications.services import event_emit

from .models import RoleplayCharacterRole
from .services import role_fill

logger = logging.getLogger(__name__)

CAST_COMPLETE_EVENT = "roleplay.cast_complete"
FIELD = "roleplay_character_role_id"
HOLDING = (InvitationStatus.PENDING, InvitationStatus.ACCEPTED)


def _role_id(value: Any) -> int | None | str:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return "invalid"
    return int(value)


class RoleExtension(ItemExtension):
    applies_to = frozenset({"story"})

    def validate(self, content, raw_items, parsed, item_errors) -> dict[int, dict[str, Any]]:
        wanted: dict[int, int] = {}
        for item in parsed:
            raw = raw_items[item.index]
            role_id = _role_id(raw.get(FIELD))
            if role_id == "invalid":
                item_errors.setdefault(str(item.index), {}).setdefault(FIELD, []).append("Must be the id of a role.")
            elif role_id is not None:
                wanted[item.index] = role_id  # type: ignore[assignment]
        if not wanted:
            return {}
        roles = {
            role.pk: role
            for role in RoleplayCharacterRole.objects.select_related("template", "character").filter(
                pk__in=set(wanted.values()), template__story=content
            )
        }
        now = timezone.now()
        # Pending invitations past their expiry no longer hold their role.
        lapsed = list(StoryInvitation.objects.filter(
            roleplay_role_id__in=list(roles), status=InvitationStatus.PENDING, expires_at__lte=now
        ).values_list("pk", flat=True))
        if lapsed:
            StoryInvitation.objects.filter(pk__in=lapsed).update(status=InvitationStatus.EXPIRED)
            InvitationHistory.objects.bulk_create([
                InvitationHistory(invitation_id=pk, action=HistoryAction.EXPIRED, data={"at": now.isoformat()}) for pk in lapsed
            ])
        held = dict(StoryInvitation.objects.filter(roleplay_role_id__in=list(roles), status__in=HOLDING)
                    .values_list("roleplay_role_id", "pk"))
        first_item: dict[int, int] = {}
        extras: dict[int, dict[str, Any]] = {}
        by_index = {item.index: item for item in parsed}
        for index, role_id in wanted.items():
            errors = item_errors.setdefault(str(index), {})
            role = roles.get(role_id)
            if role is None:
                errors.setdefault(FIELD, []).append("This role is not part of a roleplay of this story.")
            elif role_id in held:
                errors.setdefault(FIELD, []).append(f"This role is already given (invitation {held[role_id]}).")
            elif role_id in first_item:
                errors.setdefault(FIELD, []).append(f"This role is already given in this request (item {first_item[role_id]}).")
            elif by_index[index].character_id not in (None, role.character_id):
                errors.setdefault("character_id", []).append("The role is bound to another character.")
            else:
                first_item[role_id] = index
                extras[index] = {
                    "invitation_type": "roleplay_character",
                    "fields": {"roleplay_role_id": role.pk, "character_id": role.character_id},
                    "metadata": {
                        "roleplay_template_id": role.template_id,
                        "template_name": role.template.template_name,
                        "difficulty_level": role.template.difficulty_level,
                        "roleplay_character_role_id": role.pk,
                        "role_name": role.role_name,
                        "role_description": role.role_description,
                        "required_voice_emotions": role.required_voice_emotions,
                        "is_protagonist": role.is_protagonist,
                        "character_name": role.character.name,
                    },
                }
            if not errors:
                del item_errors[str(index)]
        return extras

    def on_accepted(self, invitation) -> None:
        if not invitation.roleplay_role_id:
            return
        template = role_fill(role_id=invitation.roleplay_role_id)
        if template is not None:
            _notify_cast_complete(template=template, inviter=invitation.inviter)


def _notify_cast_complete(*, template, inviter) -> None:
    """Tell the inviter the whole cast accepted (once: role_fill's gate); a refusal is logged."""
    from accounts.services import user_ensure_personal_organization

    story = template.story
    organization = story.organization or user_ensure_personal_organization(user=inviter)
    try:
        with transaction.atomic():
            event_emit(
                organization=organization,
                type=CAST_COMPLETE_EVENT,
                recipient_ids=[inviter.pk],
                actor={"type": ActorType.SYSTEM, "name": "Troubadour"},
                resource={"type": "roleplay_template", "id": template.pk, "name": template.template_name},
                data={"templateName": template.template_name, "storyTitle": story.title,
                      "totalCharacters": template.total_characters},
                action_url=f"/stories/{story.pk}/",
                deduplication_key=f"roleplay-cast-complete:{template.pk}",
                correlation_id=f"story:{story.pk}",
                source="roleplay",
            )
    except TroubadourError as exc:
        logger.error("roleplay.cast_complete refused for template %s: %s", template.pk, exc.__class__.__name__)


ROLE_EXTENSION = RoleExtension()
