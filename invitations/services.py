"""Invitation writes: send a batch, change style, revoke, view, accept, decline, expire."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from common.exceptions import Conflict, Gone, NotFound, ValidationError
from narrations.models import NarrationStatus, Story, StoryCharacter, StoryNarration
from narrations.services import (
    narration_generate,
    narration_pregenerate_enqueue,
    narrations_ensure_shared,
)

from .models import (
    HistoryAction,
    InvitationHistory,
    InvitationStatus,
    StoryInvitation,
    hash_token,
)
from .notify import invitation_notify_accepted, invitation_notify_declined, invitations_notify_sent
from .optout import opted_out_addresses
from .validation import (
    InviteeItem,
    find_duplicates,
    style_error,
    validate_items,
    validate_message,
    validate_style,
)

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 random bits in every link


@dataclass(frozen=True)
class SkippedInvitee:
    """An invitee left out: they already hold a pending invitation to the story
    (`already_pending`), or asked not to be invited by this inviter or at all (`opted_out`)."""

    index: int
    email: str
    phone: str
    existing_invitation_id: int | None
    reason: str = "already_pending"


@dataclass
class InvitationBatchResult:
    invitations: list[StoryInvitation]
    narrations: list[StoryNarration]
    skipped: list[SkippedInvitee]
    # Raw tokens, by invitation id: only ever held in memory to build the links.
    tokens: dict[int, str] = field(repr=False)
    new_narration_ids: list[int]

    def invite_url(self, invitation_id: int) -> str:
        return invite_url_for(self.tokens[invitation_id])


def invite_url_for(token: str) -> str:
    return f"{settings.SITE_URL}/i/{token}"


def _expiry(now: datetime) -> datetime:
    return now + timedelta(days=settings.INVITATION_TTL_DAYS)


def _raise_item_errors(
    item_errors: dict[str, dict[str, list[str]]], batch_errors: list[str], top_errors: dict[str, list[str]]
) -> None:
    if not (item_errors or batch_errors or top_errors):
        return
    detail: dict = dict(top_errors)
    if batch_errors:
        detail["invitations"] = batch_errors
    elif item_errors:
        detail["invitations"] = {key: item_errors[key] for key in sorted(item_errors, key=int)}
    raise ValidationError(detail)


@transaction.atomic(durable=True)
def invitations_send(*, story: Story, inviter, items: list[dict], message: str = "") -> InvitationBatchResult:
    """Invite a batch of people to hear `story`; all or nothing, a fixed number of queries.

    Each invitee points at the story's shared narration row for their style (created here if
    missing, pre-generated after commit). Invitees who already hold a pending invitation to
    the story are reported in `skipped`, not invited twice.
    """
    top_errors: dict[str, list[str]] = {}
    general_message = validate_message(message, top_errors)
    parsed, item_errors, batch_errors = validate_items(items, default_locale=story.language or "en")
    _raise_item_errors(item_errors, batch_errors, top_errors)

    # Serialize batches to one story: the pending-invitee check below and the insert must not
    # interleave with another batch's (the partial unique constraints would turn it into a 500).
    list(Story.objects.select_for_update().filter(pk=story.pk).values_list("pk", flat=True))

    character_ids = {item.character_id for item in parsed if item.character_id is not None}
    known_characters: set[int] = set()
    if character_ids:
        known_characters = set(
            StoryCharacter.objects.filter(story=story, pk__in=character_ids).values_list("pk", flat=True)
        )
    for item in parsed:
        if item.character_id is not None and item.character_id not in known_characters:
            item_errors.setdefault(str(item.index), {}).setdefault("character_id", []).append(
                "This character is not part of the story."
            )
    for index, msg in find_duplicates(parsed).items():
        item_errors.setdefault(str(index), {}).setdefault("non_field_errors", []).append(msg)
    _raise_item_errors(item_errors, [], {})

    now = timezone.now()
    accepted: set[str] = set()
    existing_by_email, existing_by_phone = _pending_invitees(story=story, items=parsed, now=now, accepted=accepted)
    for item in parsed:
        if item.email in accepted or item.phone in accepted:
            item_errors.setdefault(str(item.index), {}).setdefault("non_field_errors", []).append(
                f"{item.email or item.phone} already accepted an invitation to this story; there is nothing to invite them to again."
            )
    _raise_item_errors(item_errors, [], {})

    opted_out = opted_out_addresses(
        addresses=[a for item in parsed for a in (item.email, item.phone) if a], inviter_id=inviter.pk
    )

    to_create: list[InviteeItem] = []
    skipped: list[SkippedInvitee] = []
    for item in parsed:
        existing = (existing_by_email.get(item.email) if item.email else None) or (
            existing_by_phone.get(item.phone) if item.phone else None
        )
        if item.email in opted_out or item.phone in opted_out:
            skipped.append(SkippedInvitee(index=item.index, email=item.email, phone=item.phone,
                                          existing_invitation_id=None, reason="opted_out"))
        elif existing is not None:
            skipped.append(
                SkippedInvitee(index=item.index, email=item.email, phone=item.phone, existing_invitation_id=existing)
            )
        else:
            to_create.append(item)

    styles = list(dict.fromkeys(item.conversation_style for item in to_create))
    shared: dict[str, StoryNarration] = {}
    new_narration_ids: list[int] = []
    if styles:
        shared, new_narration_ids = narrations_ensure_shared(story=story, styles=styles)

    expires_at = _expiry(now)
    tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in to_create]
    invitations = StoryInvitation.objects.bulk_create(
        [
            StoryInvitation(
                story=story,
                inviter=inviter,
                invitee_email=item.email,
                invitee_phone=item.phone,
                token_hash=hash_token(token),
                status=InvitationStatus.PENDING,
                message=item.message or general_message,
                character_id=item.character_id,
                conversation_style=item.conversation_style,
                narration=shared[item.conversation_style],
                locale=item.locale,
                expires_at=expires_at,
            )
            for item, token in zip(to_create, tokens, strict=True)
        ]
    )
    if invitations:
        InvitationHistory.objects.bulk_create(
            [
                InvitationHistory(
                    invitation=invitation,
                    user=inviter,
                    action=HistoryAction.SENT,
                    data={"conversation_style": invitation.conversation_style, "narration_id": invitation.narration_id},
                )
                for invitation in invitations
            ]
        )

        _record_received(invitations)

    tokens_by_id = {invitation.pk: token for invitation, token in zip(invitations, tokens, strict=True)}
    if new_narration_ids:
        narration_pregenerate_enqueue(narration_ids=new_narration_ids)
    if invitations:
        invitation_ids = list(tokens_by_id)
        # robust: the batch is committed; a notification hiccup must not turn the answer into a 500.
        transaction.on_commit(
            lambda: invitations_notify_sent(invitation_ids=invitation_ids, tokens=tokens_by_id), robust=True
        )

    narrations = [shared[style] for style in styles]
    return InvitationBatchResult(
        invitations=invitations,
        narrations=narrations,
        skipped=skipped,
        tokens=tokens_by_id,
        new_narration_ids=new_narration_ids,
    )


def _record_received(invitations: list[StoryInvitation]) -> None:
    """A `received` history row for each invitee who has an account at the invited address (one query)."""
    emails = {i.invitee_email for i in invitations if i.invitee_email}
    if not emails:
        return
    from accounts.models import User

    people = dict(User.objects.annotate(address=Lower("email")).filter(address__in=emails).values_list("address", "pk"))
    if people:
        InvitationHistory.objects.bulk_create([
            InvitationHistory(invitation=i, user_id=people[i.invitee_email], action=HistoryAction.RECEIVED)
            for i in invitations if i.invitee_email in people
        ])


def invitations_record_received_for(*, user) -> int:
    """At sign-up: the invitations already sent to the new person's address join their history,
    dated when they were sent. Two queries."""
    if not user.email:
        return 0
    invitations = StoryInvitation.objects.filter(invitee_email=user.email.lower()).exclude(
        history__action=HistoryAction.RECEIVED, history__user=user
    )
    rows = InvitationHistory.objects.bulk_create(
        [InvitationHistory(invitation_id=pk, user=user, action=HistoryAction.RECEIVED) for pk in invitations.values_list("pk", flat=True)]
    )
    if rows:
        InvitationHistory.objects.filter(pk__in=[r.pk for r in rows]).update(
            created_at=Subquery(StoryInvitation.objects.filter(pk=OuterRef("invitation_id")).values("created_at")[:1])
        )
    return len(rows)


def _pending_invitees(
    *, story: Story, items: list[InviteeItem], now: datetime, accepted: set[str] | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """Pending invitations to `story` for these invitees: (by email, by phone) → invitation id.

    Pending invitations found past their expiry are expired on the way, so the invitee can be
    invited again. The addresses that already accepted an invitation to the story are added to
    `accepted` (same query).
    """
    emails = [item.email for item in items if item.email]
    phones = [item.phone for item in items if item.phone]
    match = Q()
    if emails:
        match |= Q(invitee_email__in=emails)
    if phones:
        match |= Q(invitee_phone__in=phones)
    rows = StoryInvitation.objects.filter(
        match, story=story, status__in=[InvitationStatus.PENDING, InvitationStatus.ACCEPTED, InvitationStatus.COMPLETED]
    ).values_list("pk", "invitee_email", "invitee_phone", "expires_at", "status")
    by_email: dict[str, int] = {}
    by_phone: dict[str, int] = {}
    stale: list[int] = []
    for pk, email, phone, expires_at, status in rows:
        if status != InvitationStatus.PENDING:
            if accepted is not None:
                accepted.update(a for a in (email, phone) if a)
            continue
        if expires_at <= now:
            stale.append(pk)
            continue
        if email:
            by_email[email] = pk
        if phone:
            by_phone[phone] = pk
    if stale:
        _expire(ids=stale, now=now)
    return by_email, by_phone


def _expire(*, ids: list[int], now: datetime) -> None:
    StoryInvitation.objects.filter(pk__in=ids, status=InvitationStatus.PENDING).update(status=InvitationStatus.EXPIRED)
    InvitationHistory.objects.bulk_create(
        [InvitationHistory(invitation_id=pk, action=HistoryAction.EXPIRED, data={"at": now.isoformat()}) for pk in ids]
    )


def _lock_for_inviter(*, invitation_id: int, inviter) -> StoryInvitation:
    invitation = (
        StoryInvitation.objects.select_for_update(of=("self",))
        .select_related("story")
        .filter(pk=invitation_id, inviter=inviter, story__owner=inviter)
        .first()
    )
    if invitation is None:
        raise NotFound("Invitation not found.")
    return invitation


def _is_lapsed(invitation: StoryInvitation, now: datetime) -> bool:
    return invitation.status == InvitationStatus.EXPIRED or (
        invitation.status == InvitationStatus.PENDING and invitation.expires_at <= now
    )


@transaction.atomic(durable=True)
def invitation_change_style(*, invitation_id: int, inviter, conversation_style: str) -> StoryInvitation:
    """Move a pending invitation to another style's shared narration row (created if new)."""
    style = validate_style(conversation_style)
    if style is None:
        raise ValidationError({"conversation_style": [style_error(conversation_style)]})
    invitation = _lock_for_inviter(invitation_id=invitation_id, inviter=inviter)
    if invitation.status != InvitationStatus.PENDING or _is_lapsed(invitation, timezone.now()):
        raise Conflict(f"Only a pending invitation can change style (this one is {invitation.status}).")
    if invitation.conversation_style == style and invitation.narration_id is not None:
        return invitation

    shared, new_ids = narrations_ensure_shared(story=invitation.story, styles=[style])
    previous = invitation.conversation_style
    invitation.conversation_style = style
    invitation.narration = shared[style]
    invitation.save(update_fields=["conversation_style", "narration"])
    InvitationHistory.objects.create(
        invitation=invitation,
        user=inviter,
        action=HistoryAction.STYLE_CHANGED,
        data={"from": previous, "to": style, "narration_id": invitation.narration_id},
    )
    if new_ids:
        narration_pregenerate_enqueue(narration_ids=new_ids)
    return invitation


@transaction.atomic(durable=True)
def invitation_revoke(*, invitation_id: int, inviter, actor=None) -> StoryInvitation:
    """Withdraw an invitation; its link answers 410 from now on. Revoking twice is a no-op.

    `actor` is who did it when not the inviter (staff, in the admin); the history records them.
    """
    invitation = _lock_for_inviter(invitation_id=invitation_id, inviter=inviter)
    if invitation.status == InvitationStatus.REVOKED:
        return invitation
    if invitation.status not in (InvitationStatus.PENDING, InvitationStatus.ACCEPTED):
        raise Conflict(f"This invitation is {invitation.status} and can no longer be revoked.")
    invitation.status = InvitationStatus.REVOKED
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["status", "revoked_at"])
    InvitationHistory.objects.create(invitation=invitation, user=actor or inviter, action=HistoryAction.REVOKED)
    return invitation


@transaction.atomic(durable=True)
def invitation_record_view(*, invitation: StoryInvitation) -> bool:
    """Record the first visit of the link (once, even under concurrent visits). True if it was the first."""
    now = timezone.now()
    # The conditional UPDATE is the single-writer gate: only one visitor can flip viewed_at.
    first = StoryInvitation.objects.filter(pk=invitation.pk, viewed_at__isnull=True).update(viewed_at=now) == 1
    if first:
        invitation.viewed_at = now
        InvitationHistory.objects.create(invitation=invitation, action=HistoryAction.VIEWED)
    return first


def invitation_accept(*, invitation_id: int) -> tuple[StoryInvitation, StoryNarration]:
    """Accept an invitation and return its READY narration; accepting again returns the same.

    The narration is generated first (single-flight inside narration_generate, so many invitees
    of one style landing together generate once); only then is the invitation marked accepted,
    so a failed generation leaves it pending and retryable.
    """
    invitation = StoryInvitation.objects.select_related("narration", "story").filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound("Invitation not found.")
    _check_acceptable(invitation)
    narration = invitation.narration
    if narration is None:
        narration = _reattach_narration(invitation_id=invitation.pk)
    if narration.status != NarrationStatus.READY:
        narration = narration_generate(narration_id=narration.pk)
    invitation = _mark_accepted(invitation_id=invitation.pk)
    return invitation, narration


def _check_acceptable(invitation: StoryInvitation) -> None:
    if invitation.status == InvitationStatus.REVOKED:
        raise Gone("This invitation was revoked.")
    if _is_lapsed(invitation, timezone.now()):
        raise Gone("This invitation has expired.")
    if invitation.status == InvitationStatus.DECLINED:
        raise Conflict("This invitation was declined.")


@transaction.atomic(durable=True)
def _reattach_narration(*, invitation_id: int) -> StoryNarration:
    # The shared row was deleted (e.g. by staff): point the invitation at a fresh one.
    invitation = StoryInvitation.objects.select_for_update(of=("self",)).select_related("story").get(pk=invitation_id)
    shared, _ = narrations_ensure_shared(story=invitation.story, styles=[invitation.conversation_style])
    invitation.narration = shared[invitation.conversation_style]
    invitation.save(update_fields=["narration"])
    return invitation.narration


@transaction.atomic(durable=True)
def _mark_accepted(*, invitation_id: int) -> StoryInvitation:
    invitation = (
        StoryInvitation.objects.select_for_update(of=("self",))
        .select_related("story__organization", "inviter")
        .get(pk=invitation_id)
    )
    if invitation.status in (InvitationStatus.ACCEPTED, InvitationStatus.COMPLETED):
        return invitation
    # Re-checked under the lock: a revoke or decline may have landed during generation.
    _check_acceptable(invitation)
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["status", "accepted_at"])
    InvitationHistory.objects.create(
        invitation=invitation, action=HistoryAction.ACCEPTED, data={"narration_id": invitation.narration_id}
    )
    # In this transaction: the inviter hears of it exactly when the acceptance commits.
    invitation_notify_accepted(invitation=invitation)
    return invitation


@transaction.atomic(durable=True)
def invitation_decline(*, invitation_id: int) -> StoryInvitation:
    """Decline an invitation; declining twice is a no-op, declining after accepting a conflict."""
    invitation = (
        StoryInvitation.objects.select_for_update(of=("self",)).select_related("story__organization", "inviter")
        .filter(pk=invitation_id).first()
    )
    if invitation is None:
        raise NotFound("Invitation not found.")
    if invitation.status == InvitationStatus.DECLINED:
        return invitation
    if invitation.status == InvitationStatus.REVOKED:
        raise Gone("This invitation was revoked.")
    if _is_lapsed(invitation, timezone.now()):
        raise Gone("This invitation has expired.")
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict(f"This invitation was already {invitation.status}.")
    invitation.status = InvitationStatus.DECLINED
    invitation.declined_at = timezone.now()
    invitation.save(update_fields=["status", "declined_at"])
    InvitationHistory.objects.create(invitation=invitation, action=HistoryAction.DECLINED)
    invitation_notify_declined(invitation=invitation)
    return invitation


@transaction.atomic(durable=True)
def invitations_expire_due(*, limit: int = 1000) -> int:
    """Mark pending invitations past their expiry as expired (one batch); returns how many."""
    now = timezone.now()
    ids = list(
        StoryInvitation.objects.select_for_update(skip_locked=True)
        .filter(status=InvitationStatus.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        _expire(ids=ids, now=now)
    return len(ids)


@transaction.atomic(durable=True)
def invitation_reissue(*, invitation_id: int, inviter, send: bool) -> tuple[StoryInvitation, str]:
    """A new link for a pending invitation: returned to the inviter (to copy), and sent to the
    invitee again when `send`. Only the token's hash is kept, so the earlier link cannot be
    shown again: it stops working and the new one replaces it. Returns (invitation, new URL)."""
    invitation = _lock_for_inviter(invitation_id=invitation_id, inviter=inviter)
    now = timezone.now()
    if invitation.status == InvitationStatus.ACCEPTED:
        raise Conflict("This invitation was already accepted; there is nothing to send again.")
    if invitation.status != InvitationStatus.PENDING or _is_lapsed(invitation, now):
        raise Conflict(f"Only a pending invitation gets a new link (this one is {'expired' if _is_lapsed(invitation, now) else invitation.status}).")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation.token_hash = hash_token(token)
    fields = ["token_hash"]
    if send:
        invitation.notification = None  # the new event's notification takes its place
        invitation.expires_at = _expiry(now)
        fields += ["notification", "expires_at"]
    invitation.save(update_fields=fields)
    InvitationHistory.objects.create(invitation=invitation, user=inviter, action=HistoryAction.LINK_REISSUED, data={"sent": send})
    if send:
        pk = invitation.pk
        transaction.on_commit(lambda: invitations_notify_sent(invitation_ids=[pk], tokens={pk: token}), robust=True)
    return invitation, invite_url_for(token)
