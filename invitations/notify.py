"""Telling people about invitations: the single seam between invitations and the notification platform.

A batch of invitations becomes ONE invitation event (`story.invitation`, `news.invitation`...: the
content kind's, invitations.content_types) whose recipients are the invitees'
bare addresses, each with its own link, message and style as per-recipient data; the platform
routes it (EMAIL and SMS), renders it from its templates, delivers it through the configured
providers (the log provider for SMS in the embedded run) and tracks it. Each invitation keeps
a link to its notification, so its per-channel status is read from the real deliveries.
Accepting or declining an invitation tells the inviter (the kind's accepted event, e.g.
`story.invitation_accepted`; `story.invitation_declined`).
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
from batchjobs.services import batch_job_failed, batch_job_started
from common.exceptions import TroubadourError
from common.sealing import organization_scope, value_seal
from narrations.models import ConversationStyle
from notifications.enums import ActorType, Channel
from notifications.models import Notification
from notifications.services import EmitResult, event_emit

from .content_types import ContentKind, invitation_content, invitation_kind
from .models import StoryInvitation
from .optout import optout_url

logger = logging.getLogger(__name__)

# The story's events; other content names its own (ContentKind.invitation_event/accepted_event).
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


def _organization_for(kind: ContentKind, content: Any, inviter) -> Organization:
    """The content's organization, else the inviter's — created (their personal one) if they have
    none: invitations of a user outside any organization used to be saved and never sent."""
    return kind.organization(content) or user_ensure_personal_organization(user=inviter)


def _correlation(kind: ContentKind, content: Any) -> str:
    # "story:<id>" for stories, "<content_type>:<id>" for any other content.
    return f"{kind.key}:{content.pk}"


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
    """Hand newly sent invitations to the notification platform: one event per content and inviter.

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
    groups: dict[tuple[str, str, int], list[StoryInvitation]] = defaultdict(list)
    for invitation in invitations:
        if invitation.pk in tokens:
            groups[(invitation.content_type, invitation.content_id, invitation.inviter_id)].append(invitation)
    linked: dict[int, int] = {}
    for group in groups.values():
        try:
            linked.update(_emit_invitations(group, tokens=tokens))
        except TroubadourError as exc:
            logger.error(
                "invitation event refused for %d invitations of %s %s: %s",
                len(group), group[0].content_type, group[0].content_id, exc.__class__.__name__,
            )
            for job_id in {i.batch_job_id for i in group if i.batch_job_id}:
                batch_job_failed(job_id=job_id, error=f"The notification platform refused the batch: {exc}")
    return linked


@transaction.atomic
def _emit_invitations(invitations: list[StoryInvitation], *, tokens: dict[int, str]) -> dict[int, int]:
    inviter = invitations[0].inviter
    kind, content = invitation_kind(invitations[0]), invitation_content(invitations[0])
    organization = _organization_for(kind, content, inviter)
    inviter_name = inviter.get_display_name()
    result = event_emit(
        organization=organization,
        type=kind.invitation_event,
        recipients=[
            _recipient(invitation, tokens[invitation.pk], organization=organization) for invitation in invitations
        ],
        channels=INVITATION_CHANNELS,
        actor={"type": ActorType.USER, "id": inviter.pk, "name": inviter_name},
        resource={"type": RESOURCE_TYPE, "name": kind.title(content)},
        data={"inviterName": inviter_name, **kind.event_data(content)},
        correlation_id=_correlation(kind, content),
        source=SOURCE,
    )
    for job_id in {i.batch_job_id for i in invitations if i.batch_job_id}:
        batch_job_started(job_id=job_id, event_id=result.event_id)
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
    return _notify_inviter(invitation=invitation, event=invitation_kind(invitation).accepted_event, what="accepted")


def invitation_notify_declined(*, invitation: StoryInvitation) -> EmitResult | None:
    """Tell the inviter that an invitee declined; same rules as an acceptance."""
    return _notify_inviter(invitation=invitation, event=DECLINED_EVENT, what="declined")


def _notify_inviter(*, invitation: StoryInvitation, event: str, what: str) -> EmitResult | None:
    inviter = invitation.inviter
    kind, content = invitation_kind(invitation), invitation_content(invitation)
    organization = _organization_for(kind, content, inviter)
    title = kind.title(content)
    invitee = invitation.invitee
    try:
        with transaction.atomic():  # a savepoint: a refusal must not roll the answer back
            return event_emit(
                organization=organization,
                type=event,
                recipient_ids=[inviter.pk],
                actor={"type": ActorType.SYSTEM, "name": invitee},
                resource={"type": RESOURCE_TYPE, "id": invitation.pk, "name": title},
                data={
                    "inviteeName": invitee,
                    "storyTitle": title,
                    "conversationStyle": _style_label(invitation.conversation_style),
                    **kind.event_data(content),
                },
                action_url=kind.page_url(content),
                deduplication_key=f"invitation-{what}:{invitation.pk}",
                correlation_id=_correlation(kind, content),
                source=SOURCE,
            )
    except TroubadourError as exc:
        logger.error("%s refused for invitation %s: %s", event, invitation.pk, exc.__class__.__name__)
        return None
