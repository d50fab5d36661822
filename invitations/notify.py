"""Telling invitees about their invitation: the single seam between invitations and delivery.

Today invitees with an email address get a text + HTML email through Django's email backend,
and invitees reachable only by phone are recorded as not yet deliverable. When the
notification platform takes over, only this module changes (it will call `event_emit`).
"""
from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import translation

from narrations.models import ConversationStyle

from .models import DeliveryChannel, DeliveryState, StoryInvitation

logger = logging.getLogger(__name__)


def _style_descriptions() -> dict[str, str]:
    try:
        from narrations.styles import style_catalogue
    except ImportError:  # the catalogue is optional for a plain label
        return {}
    return {entry["code"]: entry.get("description", "") for entry in style_catalogue()}


def _build_email(invitation: StoryInvitation, *, token: str, descriptions: dict[str, str]) -> EmailMultiAlternatives:
    inviter_name = invitation.inviter.get_display_name()
    context = {
        "invitation": invitation,
        "story": invitation.story,
        "inviter_name": inviter_name,
        "message": invitation.message,
        "style_label": ConversationStyle(invitation.conversation_style).label,
        "style_description": descriptions.get(invitation.conversation_style, ""),
        "character": invitation.character,
        "invite_url": f"{settings.SITE_URL}/i/{token}",
        "expires_at": invitation.expires_at,
    }
    with translation.override(invitation.locale or None):
        subject = render_to_string("invitations/email/invitation_subject.txt", context).strip()
        text = render_to_string("invitations/email/invitation.txt", context)
        html = render_to_string("invitations/email/invitation.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.splitlines()), body=text, to=[invitation.invitee_email]
    )
    message.attach_alternative(html, "text/html")
    return message


def invitations_notify_sent(*, invitation_ids: list[int], tokens: dict[int, str]) -> dict[int, dict[str, str]]:
    """Notify each newly invited person; record the per-channel outcome on the invitation.

    Runs after the batch commits. Returns {invitation id: {channel: state}}. Never raises for a
    delivery failure: the invitations exist either way and the outcome is recorded.
    """
    invitations = list(
        StoryInvitation.objects.filter(pk__in=invitation_ids).select_related("story", "inviter", "character")
    )
    outcome: dict[int, dict[str, str]] = {invitation.pk: {} for invitation in invitations}
    emails: list[tuple[int, EmailMultiAlternatives]] = []
    descriptions = _style_descriptions()
    for invitation in invitations:
        if invitation.invitee_phone:
            outcome[invitation.pk][DeliveryChannel.SMS] = DeliveryState.NOT_DELIVERABLE
        token = tokens.get(invitation.pk)
        if invitation.invitee_email and token:
            emails.append((invitation.pk, _build_email(invitation, token=token, descriptions=descriptions)))

    if emails:
        state = DeliveryState.SENT
        try:
            # One connection for the whole batch (one SMTP session, not one per invitee).
            with get_connection(fail_silently=False) as connection:
                connection.send_messages([message for _, message in emails])
        except Exception as exc:  # noqa: BLE001 - SMTP and ESP errors alike: record, do not lose the batch
            logger.warning("invitation emails failed for %d invitations: %s", len(emails), exc.__class__.__name__)
            state = DeliveryState.FAILED
        for pk, _ in emails:
            outcome[pk][DeliveryChannel.EMAIL] = state

    # One UPDATE per distinct outcome (a handful at most), not one per invitation.
    groups: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for pk, channels in outcome.items():
        if channels:
            groups[tuple(sorted((str(k), str(v)) for k, v in channels.items()))].append(pk)
    for channels, pks in groups.items():
        StoryInvitation.objects.filter(pk__in=pks).update(deliveries=dict(channels))
    return outcome
