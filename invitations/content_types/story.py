"""Stories as invitation content: the original kind (invitation type `story_collaboration`)."""
from __future__ import annotations

from typing import Any

from django.db.models import Q

from common.exceptions import NotFound
from narrations.models import Story, StoryCharacter, StoryNarration
from narrations.services import (
    narration_generate,
    narration_pregenerate_enqueue,
    narrations_ensure_shared,
)

from . import ContentKind


class StoryKind(ContentKind):
    key = "story"
    invitation_type = "story_collaboration"
    label = "Story"
    landing_partial = "invitations/content/_story.html"
    invitation_event = "story.invitation"
    accepted_event = "story.invitation_accepted"
    has_characters = True

    def load(self, content_id: Any) -> Story:
        story = Story.objects.select_related("owner", "organization").filter(pk=content_id).first()
        if story is None:
            raise NotFound("Story not found.")
        return story

    def load_for_invitation(self, invitation: Any) -> Story:
        return invitation.story

    def story_of(self, content: Any) -> Story:
        return content

    def title(self, content: Story) -> str:
        return content.title

    def organization(self, content: Story):
        return content.organization

    def invitation_fields(self, content: Any) -> dict[str, Any]:
        return {"story": self.story_of(content)}

    def pending_scope(self, content: Any) -> Q:
        # One pending invitation per person and story, whatever its type (the partial unique
        # constraints on story + address hold it in the database).
        return Q(story=self.story_of(content))

    def lock(self, content: Any) -> None:
        story = self.story_of(content)
        list(Story.objects.select_for_update().filter(pk=story.pk).values_list("pk", flat=True))

    def character_ids(self, content: Any, wanted: set[int]) -> set[int]:
        return set(
            StoryCharacter.objects.filter(story=self.story_of(content), pk__in=wanted).values_list("pk", flat=True)
        )

    def event_data(self, content: Any) -> dict[str, Any]:
        return {"storyTitle": self.story_of(content).title}

    def page_url(self, content: Any) -> str:
        return f"/stories/{self.story_of(content).pk}/"

    def ensure_narrations(self, content: Any, styles: list[str]) -> tuple[dict[str, StoryNarration], list[int]]:
        return narrations_ensure_shared(story=self.story_of(content), styles=styles)

    def narration_link(self, narration: StoryNarration) -> dict[str, Any]:
        return {"narration": narration}

    def narration_for(self, invitation: Any) -> StoryNarration | None:
        return invitation.narration

    def generate(self, narration_id: int) -> StoryNarration:
        return narration_generate(narration_id=narration_id)

    def pregenerate(self, narration_ids: list[int]) -> None:
        narration_pregenerate_enqueue(narration_ids=narration_ids)

    def public_content(self, invitation: Any, content: Any) -> dict[str, Any]:
        story = self.story_of(content)
        return {"id": story.pk, "title": story.title}


STORY = StoryKind()
