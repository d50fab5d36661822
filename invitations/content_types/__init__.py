"""What an invitation can be about: one small registration per content type.

Every invitation names its content generically (`content_type`, `content_id`,
`content_metadata`, `invitation_type`); the invitation services, pages and notifications ask
the content's `ContentKind` everything that depends on the content: how to load it for its
owner, how to narrate it, which page partial shows it, which notification event announces it.
A new kind of content is a module with a subclass and a `register()` call (from its app's
`ready()`), not a fork of the invitation machinery.
"""
from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Q

from common.exceptions import NotFound


class ContentKind:
    """The behaviour of one content type. Subclasses set the class attributes and the methods."""

    key: ClassVar[str]  # stored in StoryInvitation.content_type
    invitation_type: ClassVar[str]  # the invitation's default type (InvitationType)
    label: ClassVar[str]
    landing_partial: ClassVar[str]  # template included by the invitee's landing page
    invitation_event: ClassVar[str]  # notification event announcing the invitation (EMAIL, SMS)
    accepted_event: ClassVar[str]  # notification event telling the inviter of an acceptance
    # The invitation's per-item character must belong to the content (stories have characters).
    has_characters: ClassVar[bool] = False

    # --- the content ------------------------------------------------------------------------
    def load(self, content_id: Any) -> Any:
        """The content row, unscoped (callers already hold the invitation); NotFound if gone."""
        raise NotImplementedError

    def load_for_invitation(self, invitation: Any) -> Any:
        return self.load(invitation.content_id)

    def title(self, content: Any) -> str:
        raise NotImplementedError

    def language(self, content: Any) -> str:
        return getattr(content, "language", "") or "en"

    def organization(self, content: Any):
        return getattr(content, "organization", None)

    def metadata(self, content: Any) -> dict[str, Any]:
        """`content_metadata` stored on each invitation (a small, stable summary of the content)."""
        return {"title": self.title(content)}

    def invitation_fields(self, content: Any) -> dict[str, Any]:
        """Model fields set on each invitation besides the generic ones (e.g. `story`)."""
        return {}

    def pending_scope(self, content: Any) -> Q:
        """Invitations counted when refusing a second pending invitation to the same person."""
        return Q(content_type=self.key, content_id=str(content.pk))

    def lock(self, content: Any) -> None:
        """Serialize invitation batches to one content (row lock until commit)."""
        list(type(content).objects.select_for_update().filter(pk=content.pk).values_list("pk", flat=True))

    def character_ids(self, content: Any, wanted: set[int]) -> set[int]:
        return set()

    def validate_item_extras(
        self, content: Any, raw_items: list, parsed: list, item_errors: dict[str, dict[str, list[str]]]
    ) -> dict[int, dict[str, Any]]:
        """Fields of an item beyond the common ones (e.g. a roleplay role), checked against the
        database; errors go into `item_errors` under the item's index. Returns, by item index,
        `{"invitation_type"?, "fields"?: {model fields}, "metadata"?: {content_metadata}}`."""
        extras: dict[int, dict[str, Any]] = {}
        for extension in item_extensions(self.key):
            for index, extra in extension.validate(content, raw_items, parsed, item_errors).items():
                merged = extras.setdefault(index, {})
                merged.update({k: v for k, v in extra.items() if k not in ("fields", "metadata")})
                merged.setdefault("fields", {}).update(extra.get("fields", {}))
                merged.setdefault("metadata", {}).update(extra.get("metadata", {}))
        return extras

    def on_accepted(self, invitation: Any) -> None:
        """Called inside the accepting transaction, once, after the invitation became accepted."""
        for extension in item_extensions(self.key):
            extension.on_accepted(invitation)

    def event_data(self, content: Any) -> dict[str, Any]:
        """Event-level data of the invitation notification (beside inviterName)."""
        return {}

    def page_url(self, content: Any) -> str:
        """The inviter's page about the content (the acceptance notification links to it)."""
        return "/"

    # --- narrations -------------------------------------------------------------------------
    def ensure_narrations(self, content: Any, styles: list[str]) -> tuple[dict[str, Any], list[int]]:
        """The shared narration row of each style (created if missing) and the ids created."""
        raise NotImplementedError

    def narration_link(self, narration: Any) -> dict[str, Any]:
        """Fields pointing an invitation at its shared narration row (stories keep a foreign key)."""
        return {}

    def narration_for(self, invitation: Any) -> Any | None:
        """The invitation's shared narration row, or None when it does not exist (any more)."""
        raise NotImplementedError

    def generate(self, narration_id: int) -> Any:
        """Generate the row once under concurrency (narrations.services.narration_generate_row)."""
        raise NotImplementedError

    def pregenerate(self, narration_ids: list[int]) -> None:
        """Queue background generation after the current commit."""
        raise NotImplementedError

    def serialize_narration(self, narration: Any) -> dict[str, Any]:
        from narrations.selectors import narration_serialize

        return narration_serialize(narration)

    def public_content(self, invitation: Any, content: Any) -> dict[str, Any]:
        """What the link holder sees of the content (by-token answer)."""
        return {"id": content.pk, "title": self.title(content)}

    def landing_context(self, invitation: Any, content: Any) -> dict[str, Any]:
        return {}


class ItemExtension:
    """Extra fields an invitation item of some content may carry (e.g. a roleplay role of a
    story), registered by the app that owns them; the content kind runs every extension that
    applies to it."""

    applies_to: ClassVar[frozenset[str]] = frozenset()  # content type keys

    def validate(
        self, content: Any, raw_items: list, parsed: list, item_errors: dict[str, dict[str, list[str]]]
    ) -> dict[int, dict[str, Any]]:
        return {}

    def on_accepted(self, invitation: Any) -> None:
        return None


_REGISTRY: dict[str, ContentKind] = {}
_ITEM_EXTENSIONS: list[ItemExtension] = []


def register_item_extension(extension: ItemExtension) -> ItemExtension:
    if extension not in _ITEM_EXTENSIONS:
        _ITEM_EXTENSIONS.append(extension)
    return extension


def item_extensions(key: str) -> list[ItemExtension]:
    return [e for e in _ITEM_EXTENSIONS if key in e.applies_to]


def register(kind: ContentKind) -> ContentKind:
    _REGISTRY[kind.key] = kind
    return kind


def kind_get(key: str) -> ContentKind:
    try:
        return _REGISTRY[key or "story"]
    except KeyError:
        raise NotFound(f"Unknown content type {key!r}.") from None


def kinds() -> dict[str, ContentKind]:
    return dict(_REGISTRY)


def invitation_kind(invitation: Any) -> ContentKind:
    return kind_get(invitation.content_type)


def invitation_content(invitation: Any) -> Any:
    """The invitation's content row, loaded once per instance."""
    cached = getattr(invitation, "_content_cache", None)
    if cached is None:
        cached = invitation_kind(invitation).load_for_invitation(invitation)
        invitation._content_cache = cached
    return cached


__all__ = ["ContentKind", "ItemExtension", "invitation_content", "item_extensions", "register_item_extension", "invitation_kind", "kind_get", "kinds", "register"]
