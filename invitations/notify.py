"""Telling people about invitations: the single seam between invitations and the notification platform.

A batch of invitations becomes ONE `story.invitation` event whose recipients are the invitees'
bare addresses, each with its own link, message and style as per-recipient data; the platform
routes it (EMAIL and SMS), renders it from its templates, delivers it through the configured
providers (the log provider for SMS in the embedded run) and tracks it. Each invitation keeps
a link to its notification, so its per-channel status is read from the real deliveries.
Accepting or declining an invitation tells the inviter (`story.invitation_accepted`,
`story.invitation_declined`).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.functions import Cast

from accounts.models import Organization
from accounts.services import user_ensure_personal_organization
from common.exceptions import TroubadourError
from common.sealing import organization_scope, value_seal
from narrations.models import ConversationStyle, Story
from notifications.enums import ActorType, Channel
from notifications.models import Notification
from notifications.services import EmitResult, event_emit

from .models import StoryInvitation
from .optout import optout_url

logger = logging.getLogger(__name__)

INVITATION_EVENT = "story.invitation"
ACCEPTED_EVENT = "story.invitation_accepted"
DECLINED_EVENT = "story.invitation_declined"
RESOURCE_TYPE = "story_invitation"
INVITATION_CHANNELS = [Channel.EMAIL, Channel.SMS]
SOURCE = "invitations"


def _invite_url(token: str) -> str:
    return f"{settings.SITE_URL}/i/{token}"


def _style_label(style: str) -> str:
    try:
        return str(ConversationStyle(style).label)
    except ValueError:
        return style


def _platform_locale(locale: str) -> str:
    """The invitee's language if the platform has templates in it, else "" (its default).

    Invitations accept any language code ("de", "fr-CA"); the platform refuses one it does not
    speak, which would fail the whole batch.
    """
    base = (locale or "").replace("_", "-").split("-")[0].lower()
    return base if base in {code for code, _ in settings.LANGUAGES} else ""


def _organization_for(story: Story, inviter) -> Organization:
    """The story's organization, else the inviter's — created (their personal one) if they have
    none: invitations of a user outside any organization used to be saved and never sent."""
    return story.organization or user_ensure_personal_organization(user=inviter)


def _story_correlation(story_id: int) -> str:
    return f"story:{story_id}"


def _recipient(invitation: StoryInvitation, token: str, *, organization: Organization) -> dict[str, Any]:
    # Signed (not secret) links for the invitee to stop invitations: one-click and the page.
    stop_url = optout_url(address=invitation.invitee_email or invitation.invitee_phone, inviter_id=invitation.inviter_id)
    address: dict[str, Any] = {
        "data": {
            # The link is the invitee's credential: it waits for the worker sealed (common.sealing),
            # never in clear in the notification's data.
            "inviteUrl": value_seal(_invite_url(token), scope=organization_scope(organization.pk)),
            "message": invitation.message,
            "conversationStyle": _style_label(invitation.conversation_style),
            "invitationId": invitation.pk,
            "stopUrl": stop_url,
            "unsubscribeUrl": stop_url,
        },
        "resource": {"id": invitation.pk},
        "locale": _platform_locale(invitation.locale),
    }
    if invitation.invitee_email:
        address["email"] = invitation.invitee_email
    if invitation.invitee_phone:
        address["phone"] = invitation.invitee_phone
    return address


def invitations_notify_sent(*, invitation_ids: list[int], tokens: dict[int, str]) -> dict[int, int]:
    """Hand newly sent invitations to the notification platform: one event per story and inviter.

    Runs after the invitation batch commits (the raw tokens exist only in memory, for the links).
    Invitations already linked to a notification are left alone, so running it twice sends
    nothing twice. Returns {invitation id: notification id}. A batch the platform refuses is
    logged and left unlinked (its channels read `pending`); the invitations exist either way.
    """
    invitations = list(
        StoryInvitation.objects.filter(pk__in=invitation_ids, notification__isnull=True)
        .select_related("story__organization", "inviter")
        .order_by("pk")
    )
    groups: dict[tuple[int, int], list[StoryInvitation]] = defaultdict(list)
    for invitation in invitations:
        if invitation.pk in tokens:
            groups[(invitation.story_id, invitation.inviter_id)].append(invitation)
    linked: dict[int, int] = {}
    for group in groups.values():
        try:
            linked.update(_emit_invitations(group, tokens=tokens))
        except TroubadourError as exc:
            logger.error(
                "story.invitation event refused for %d invitations of story %s: %s",
                len(group), group[0].story_id, exc.__class__.__name__,
            )
    return linked


@transaction.atomic
def _emit_invitations(invitations: list[StoryInvitation], *, tokens: dict[int, str]) -> dict[int, int]:
    story, inviter = invitations[0].story, invitations[0].inviter
    organization = _organization_for(story, inviter)
    inviter_name = inviter.get_display_name()
    result = event_emit(
        organization=organization,
        type=INVITATION_EVENT,
        recipients=[
            _recipient(invitation, tokens[invitation.pk], organization=organization) for invitation in invitations
        ],
        channels=INVITATION_CHANNELS,
        actor={"type": ActorType.USER, "id": inviter.pk, "name": inviter_name},
        resource={"type": RESOURCE_TYPE, "name": story.title},
        data={"inviterName": inviter_name, "storyTitle": story.title},
        correlation_id=_story_correlation(story.pk),
        source=SOURCE,
    )
    # One event, so its notifications are found by event id (indexed) and tied back by resource id.
    notification_ids = dict(
        Notification.objects.filter(event_id=result.event_id, resource_type=RESOURCE_TYPE).values_list(
            "resource_id", "pk"
        )
    )
    for invitation in invitations:
        invitation.notification_id = notification_ids.get(str(invitation.pk))
    # One set-based UPDATE joined in the database: bulk_update's CASE over 500 ids cost more
    # than the whole event intake.
    StoryInvitation.objects.filter(pk__in=[i.pk for i in invitations]).update(
        notification_id=Subquery(
            Notification.objects.filter(
                event_id=result.event_id,
                resource_type=RESOURCE_TYPE,
                resource_id=Cast(OuterRef("pk"), output_field=CharField()),
            ).values("pk")[:1]
        )
    )
    return {i.pk: i.notification_id for i in invitations if i.notification_id}


def invitation_notify_accepted(*, invitation: StoryInvitation) -> EmitResult | None:
    """Tell the inviter (in-app and email, per the event type) that an invitee accepted.

    Called inside the accepting transaction, once per invitation (the status change is the
    gate); the deduplication key makes a repeat harmless anyway. A refusal by the platform (the
    inviter left the organization) is logged and does not undo the acceptance.
    """
    return _notify_inviter(invitation=invitation, event=ACCEPTED_EVENT, what="accepted")


def invitation_notify_declined(*, invitation: StoryInvitation) -> EmitResult | None:
    """Tell the inviter that an invitee declined; same rules as an acceptance."""
    return _notify_inviter(invitation=invitation, event=DECLINED_EVENT, what="declined")


def _notify_inviter(*, invitation: StoryInvitation, event: str, what: str) -> EmitResult | None:
    story, inviter = invitation.story, invitation.inviter
    organization = _organization_for(story, inviter)
    invitee = invitation.invitee
    try:
        with transaction.atomic():  # a savepoint: a refusal must not roll the answer back
            return event_emit(
                organization=organization,
                type=event,
                recipient_ids=[inviter.pk],
                actor={"type": ActorType.SYSTEM, "name": invitee},
                resource={"type": RESOURCE_TYPE, "id": invitation.pk, "name": story.title},
                data={
                    "inviteeName": invitee,
                    "storyTitle": story.title,
                    "conversationStyle": _style_label(invitation.conversation_style),
                },
                action_url=f"/stories/{story.pk}/",
                deduplication_key=f"invitation-{what}:{invitation.pk}",
                correlation_id=_story_correlation(story.pk),
                source=SOURCE,
            )
    except TroubadourError as exc:
        logger.error("%s refused for invitation %s: %s", event, invitation.pk, exc.__class__.__name__)
        return None
