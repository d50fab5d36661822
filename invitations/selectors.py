"""Invitation reads, each scoped to who may see it: the story's owner, or the holder of a token."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from common.exceptions import Gone, NotFound, RateLimited
from narrations.models import ConversationStyle, Story

from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery

from .content_types import invitation_content, invitation_kind
from .models import DeliveryChannel, DeliveryState, InvitationStatus, StoryInvitation, hash_token

# Unknown tokens tolerated per client before its unknown tokens are answered 429 for the rest of
# the window: 2**256 tokens can't be guessed, but a scanner shouldn't get to try. A valid token
# is always honoured: invitees behind one proxy or NAT must not pay for someone else's guesses.
BAD_TOKEN_LIMIT = 20
BAD_TOKEN_WINDOW_SECONDS = 600
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def stories_overview_for_owner(*, user) -> QuerySet[Story]:
    """The user's own stories, newest first, with invitation counts for the home page."""
    return (
        Story.objects.filter(owner=user)
        .annotate(
            invitation_count=Count("invitations"),
            accepted_count=Count("invitations", filter=Q(invitations__status=InvitationStatus.ACCEPTED)),
            pending_count=Count("invitations", filter=Q(invitations__status=InvitationStatus.PENDING)),
        )
        .order_by("-created_at", "-pk")
    )


def invitations_serialize(invitations: Iterable[StoryInvitation]) -> list[dict[str, Any]]:
    """`invitation_serialize` for a list, the delivery states loaded in one query."""
    invitations = list(invitations)
    states = invitations_delivery_states(invitations=invitations)
    return [invitation_serialize(i, deliveries=states[i.pk]) for i in invitations]


def invitations_for_story(*, story: Story) -> QuerySet[StoryInvitation]:
    """The invitations of a story already checked as the caller's (story_get_for_owner)."""
    return StoryInvitation.objects.filter(story=story).select_related("character").order_by("-created_at", "-pk")


def _invitee_channels(invitation: StoryInvitation) -> list[str]:
    """The channels an invitation is sent on: the invitee's own addresses."""
    channels = []
    if invitation.invitee_email:
        channels.append(DeliveryChannel.EMAIL.value)
    if invitation.invitee_phone:
        channels.append(DeliveryChannel.SMS.value)
    return channels


def _delivery_state(status: str, attempts: int) -> str:
    if status == DeliveryStatus.PENDING and attempts:
        return DeliveryState.RETRYING.value  # a transient failure: next_retry_at is set
    return status.lower()


def invitations_delivery_states(*, invitations: Iterable[StoryInvitation]) -> dict[int, dict[str, str]]:
    """{invitation id: {channel: state}} from the notification deliveries, in one query for the lot.

    A channel the invitee has an address for shows `pending` until the notification exists,
    then its delivery's status; `not_deliverable` when routing created no delivery for it. A
    skipped channel the invitee has no address for is left out; fallback and escalation
    deliveries on other channels are shown, the latest per channel winning.
    """
    invitations = list(invitations)
    notification_ids = [i.notification_id for i in invitations if i.notification_id]
    by_notification: dict[int, dict[str, str]] = {}
    if notification_ids:
        rows = (
            NotificationDelivery.objects.filter(notification_id__in=notification_ids)
            .order_by("notification_id", "escalation_level", "pk")
            .values_list("notification_id", "channel", "status", "attempts")
        )
        for notification_id, channel, status, attempts in rows:
            by_notification.setdefault(notification_id, {})[channel] = _delivery_state(status, attempts)
    states: dict[int, dict[str, str]] = {}
    for invitation in invitations:
        own = _invitee_channels(invitation)
        if invitation.notification_id is None:
            states[invitation.pk] = {channel: DeliveryState.PENDING.value for channel in own}
            continue
        found = by_notification.get(invitation.notification_id, {})
        result = {channel: found.get(channel, DeliveryState.NOT_DELIVERABLE.value) for channel in own}
        for channel, state in found.items():
            if channel not in result and not (state == DeliveryState.SKIPPED and channel in _ADDRESSED_CHANNELS):
                result[channel] = state
        states[invitation.pk] = result
    return states


# Channels that need an address of the invitee's own (a skipped one just means there is none).
_ADDRESSED_CHANNELS = frozenset({Channel.EMAIL.value, Channel.SMS.value})


def _bad_token_key(client_key: str) -> str:
    return f"invitations:bad-token:{client_key}"


def _check_bad_token_budget(client_key: str) -> None:
    if (cache.get(_bad_token_key(client_key)) or 0) >= BAD_TOKEN_LIMIT:
        raise RateLimited("Too many invalid invitation links from this address. Try again later.")


def _record_bad_token(client_key: str) -> None:
    key = _bad_token_key(client_key)
    # add() starts the window only once; incr() is atomic in Redis, so parallel guesses all count.
    cache.add(key, 0, BAD_TOKEN_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # the key expired between add and incr
        cache.set(key, 1, BAD_TOKEN_WINDOW_SECONDS)


def invitation_get_by_token(*, token: str, client_key: str) -> StoryInvitation:
    """The invitation a link's token stands for.

    Raises NotFound (404) for an unknown token, RateLimited (429) instead once the client has
    tried too many unknown ones, Gone (410) when the invitation was revoked or has expired.
    """
    invitation = None
    if _TOKEN_RE.match(token or ""):
        invitation = (
            StoryInvitation.objects.select_related("story", "inviter", "character", "narration")
            .filter(token_hash=hash_token(token))
            .first()
        )
    if invitation is None:
        _check_bad_token_budget(client_key)
        _record_bad_token(client_key)
        raise NotFound("This invitation link is not valid.")
    if invitation.status == InvitationStatus.REVOKED:
        raise Gone("This invitation was withdrawn by the sender.")
    if invitation.status == InvitationStatus.EXPIRED or (
        invitation.status == InvitationStatus.PENDING and invitation.expires_at <= timezone.now()
    ):
        raise Gone("This invitation has expired.")
    return invitation


def invitation_serialize(invitation: StoryInvitation, *, deliveries: dict[str, str] | None = None) -> dict[str, Any]:
    """The inviter's view of one invitation (no token: it exists only in the link).

    `deliveries` is the invitation's entry of `invitations_delivery_states`; loaded here (one
    query) when not given, so lists should pass it.
    """
    if deliveries is None:
        deliveries = invitations_delivery_states(invitations=[invitation])[invitation.pk]
    return {
        "id": invitation.pk,
        **invitation_content_fields(invitation),
        "email": invitation.invitee_email or None,
        "phone": invitation.invitee_phone or None,
        "conversation_style": invitation.conversation_style,
        "character_id": invitation.character_id,
        "message": invitation.message,
        "locale": invitation.locale,
        "status": invitation.status,
        "narration_id": invitation.narration_id,
        "deliveries": deliveries,
        "created_at": invitation.created_at,
        "viewed_at": invitation.viewed_at,
        "accepted_at": invitation.accepted_at,
        "declined_at": invitation.declined_at,
        "revoked_at": invitation.revoked_at,
        "expires_at": invitation.expires_at,
    }


def invitation_content_fields(invitation: StoryInvitation) -> dict[str, Any]:
    """The generic content reference every invitation answer carries (API.md "Content beyond stories")."""
    return {
        "invitation_type": invitation.invitation_type,
        "content_type": invitation.content_type,
        "content_id": invitation.content_id,
        "content_metadata": invitation.content_metadata or {},
        "batch_job_id": getattr(invitation, "batch_job_id", None),
    }


def invitation_public_serialize(invitation: StoryInvitation, *, narration: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the holder of the link sees."""
    character = invitation.character
    kind = invitation_kind(invitation)
    content = invitation_content(invitation)
    payload: dict[str, Any] = {
        **invitation_content_fields(invitation),
        # `story` for story content (and roleplay roles), `content` for every kind.
        "story": {"id": invitation.story_id, "title": invitation.story.title} if invitation.story is not None else None,
        "content": kind.public_content(invitation, content),
        "inviter": {"display_name": invitation.inviter.get_display_name()},
        "conversation_style": invitation.conversation_style,
        "character": {"id": character.pk, "name": character.name} if character else None,
        "message": invitation.message,
        "status": invitation.status,
        "expires_at": invitation.expires_at,
        "narration": narration,
    }
    if narration is None:
        row = kind.narration_for(invitation)
        if row is not None:
            payload["narration"] = {"id": row.pk, "status": row.status}
    return payload


def story_narrations_by_style(*, story: Story) -> list[dict]:
    """The story's shared narrations, one per style, with how many invitees each serves (one query)."""
    from narrations.models import StoryNarration

    rows = (
        StoryNarration.objects.filter(story=story, user__isnull=True)
        .annotate(invitees=Count("invitations"))
        .order_by("conversation_style")
        .values("pk", "conversation_style", "status", "invitees")
    )
    labels = dict(ConversationStyle.choices)
    return [{**row, "label": labels.get(row["conversation_style"], row["conversation_style"])} for row in rows]


def story_delivery_progress(*, story: Story) -> dict[str, int]:
    """How far the delivery of the story's invitations has got (one aggregate query):
    `done` counts the messages with an answer (sent, delivered, failed…); channels skipped at
    routing (no address for them, suppressed) are not messages."""
    in_flight = [DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.HELD]
    row = NotificationDelivery.objects.filter(
        notification_id__in=StoryInvitation.objects.filter(story=story, notification__isnull=False).values("notification_id"),
        escalation_level=0,
    ).exclude(status=DeliveryStatus.SKIPPED).aggregate(total=Count("pk"), waiting=Count("pk", filter=Q(status__in=in_flight)))
    unlinked = StoryInvitation.objects.filter(story=story, status=InvitationStatus.PENDING, notification__isnull=True).count()
    return {"total": row["total"] + unlinked, "waiting": row["waiting"] + unlinked, "done": row["total"] - row["waiting"]}
