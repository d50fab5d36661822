"""Invitation writes: send a batch, change style, revoke, view, accept, decline, expire."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.selectors import user_is_member
from accounts.services import user_ensure_personal_organization
from batchjobs.models import BatchJobType
from batchjobs.services import batch_job_create
from common.exceptions import Conflict, Gone, NotFound, PermissionDenied, ValidationError
from narrations.models import NarrationStatus, Story

from .content_types import ContentKind, invitation_content, invitation_kind
from .content_types.story import STORY

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
    narrations: list[Any]  # the shared narration rows of the content, one per style
    skipped: list[SkippedInvitee]
    # Raw tokens, by invitation id: only ever held in memory to build the links.
    tokens: dict[int, str] = field(repr=False)
    new_narration_ids: list[int]

    def invite_url(self, invitation_id: int) -> str:
        return invite_url_for(self.tokens[invitation_id])

    @property
    def narration_ids(self) -> dict[int, int]:
        """Invitation id → its shared narration row's id (one row per style)."""
        by_style = {narration.conversation_style: narration.pk for narration in self.narrations}
        return {invitation.pk: by_style[invitation.conversation_style] for invitation in self.invitations}


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


def invitations_send(*, story: Story, inviter, items: Any, message: str = "") -> InvitationBatchResult:
    """Invite a batch of people to hear `story` (see `content_invitations_send`)."""
    return content_invitations_send(kind=STORY, content=story, inviter=inviter, items=items, message=message)


@transaction.atomic(durable=True)
def content_invitations_send(
    *, kind: ContentKind, content: Any, inviter, items: Any, message: str = ""
) -> InvitationBatchResult:
    """Invite a batch of people to `content` (a story, a news article...); all or nothing, a fixed
    number of queries. `kind` is the content's registration (invitations.content_types).

    Each invitee points at the content's shared narration row for their style (created here if
    missing, pre-generated after commit). Invitees who already hold a pending invitation to
    the content are reported in `skipped`, not invited twice.
    """
    top_errors: dict[str, list[str]] = {}
    general_message = validate_message(message, top_errors)
    parsed, item_errors, batch_errors = validate_items(items, default_locale=kind.language(content))
    _raise_item_errors(item_errors, batch_errors, top_errors)

    # Serialize batches to one content: the pending-invitee check below and the insert must not
    # interleave with another batch's (the partial unique constraints would turn it into a 500).
    kind.lock(content)
    # Content of an organization goes out under its name, providers and quotas: someone removed
    # from it keeps what they wrote but can no longer send invitations for it.
    organization_id = getattr(content, "organization_id", None)
    if organization_id and not user_is_member(user_id=getattr(inviter, "pk", None), organization_id=organization_id):
        raise PermissionDenied("You are no longer a member of this content's organization.")

    character_ids = {item.character_id for item in parsed if item.character_id is not None}
    known_characters: set[int] = kind.character_ids(content, character_ids) if character_ids else set()
    for item in parsed:
        if item.character_id is not None and item.character_id not in known_characters:
            item_errors.setdefault(str(item.index), {}).setdefault("character_id", []).append(
                "This character is not part of the story."
                if kind.has_characters else f"A {kind.label.lower()} has no characters."
            )
    for index, msg in find_duplicates(parsed).items():
        item_errors.setdefault(str(index), {}).setdefault("non_field_errors", []).append(msg)
    item_extras = kind.validate_item_extras(content, items, parsed, item_errors)
    _raise_item_errors(item_errors, [], {})

    now = timezone.now()
    accepted: set[str] = set()
    existing_by_email, existing_by_phone = _pending_invitees(
        scope=kind.pending_scope(content), items=parsed, now=now, accepted=accepted
    )
    for item in parsed:
        if item.email in accepted or item.phone in accepted:
            item_errors.setdefault(str(item.index), {}).setdefault("non_field_errors", []).append(
                f"{item.email or item.phone} already accepted an invitation to this {kind.label.lower()}; there is nothing to invite them to again."
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
    shared: dict[str, Any] = {}
    new_narration_ids: list[int] = []
    if styles:
        shared, new_narration_ids = kind.ensure_narrations(content, styles)

    expires_at = _expiry(now)
    tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in to_create]
    common_fields = {
        **kind.invitation_fields(content),
        "inviter": inviter,
        "status": InvitationStatus.PENDING,
        "content_type": kind.key,
        "content_id": str(content.pk),
        "expires_at": expires_at,
    }
    metadata = kind.metadata(content)
    batch_job = None
    if to_create:
        batch_job = batch_job_create(
            organization=kind.organization(content) or user_ensure_personal_organization(user=inviter),
            job_type=BatchJobType.INVITATION_BATCH, total_count=len(to_create), created_by=inviter,
            story=common_fields.get("story"), metadata={"content_type": kind.key, "content_id": str(content.pk)},
        )
    rows = []
    for item, token in zip(to_create, tokens, strict=True):
        extra = item_extras.get(item.index, {})
        fields: dict[str, Any] = {
            **common_fields,
            **kind.narration_link(shared[item.conversation_style]),
            "invitation_type": extra.get("invitation_type", kind.invitation_type),
            "content_metadata": {**metadata, **extra.get("metadata", {})},
            "invitee_email": item.email,
            "invitee_phone": item.phone,
            "token_hash": hash_token(token),
            "message": item.message or general_message,
            "character_id": item.character_id,
            "conversation_style": item.conversation_style,
            "locale": item.locale,
            "batch_job": batch_job,
        }
        fields.update(extra.get("fields", {}))
        rows.append(StoryInvitation(**fields))
    invitations = StoryInvitation.objects.bulk_create(rows)
    if invitations:
        InvitationHistory.objects.bulk_create(
            [
                InvitationHistory(
                    invitation=invitation,
                    user=inviter,
                    action=HistoryAction.SENT,
                    data={
                        "conversation_style": invitation.conversation_style,
                        "narration_id": shared[invitation.conversation_style].pk,
                        "content_type": kind.key,
                    },
                )
                for invitation in invitations
            ]
        )

        _record_received(invitations)

    tokens_by_id = {invitation.pk: token for invitation, token in zip(invitations, tokens, strict=True)}
    if new_narration_ids:
        kind.pregenerate(new_narration_ids)
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
    """A `received` history row for each invitee who has an account at the invited address, or
    at the invited number once they confirmed it (one query)."""
    from accounts.models import User

    emails = {i.invitee_email for i in invitations if i.invitee_email}
    phones = {i.invitee_phone for i in invitations if i.invitee_phone}
    if not emails and not phones:
        return
    by_email: dict[str, int] = {}
    by_phone: dict[str, int] = {}
    people = User.objects.annotate(address=Lower("email")).filter(
        Q(address__in=emails) | Q(phone__in=phones, phone_verified_at__isnull=False)
    ).values_list("pk", "address", "phone", "phone_verified_at")
    for pk, address, phone, phone_verified_at in people:
        if address in emails:
            by_email[address] = pk
        if phone in phones and phone_verified_at is not None:
            by_phone[phone] = pk
    rows = []
    for i in invitations:
        user_id = by_email.get(i.invitee_email) if i.invitee_email else None
        if user_id is None and i.invitee_phone:
            user_id = by_phone.get(i.invitee_phone)
        if user_id is not None:
            rows.append(InvitationHistory(invitation=i, user_id=user_id, action=HistoryAction.RECEIVED))
    if rows:
        InvitationHistory.objects.bulk_create(rows)


def invitations_record_received_for(*, user) -> int:
    """At sign-up, and when a number is confirmed: the invitations already sent to the person's
    address (or confirmed number) join their history, dated when they were sent. Two queries."""
    match = Q()
    if user.email:
        match |= Q(invitee_email=user.email.lower())
    if user.phone and user.phone_verified_at is not None:
        match |= Q(invitee_phone=user.phone)
    if not match:
        return 0
    invitations = StoryInvitation.objects.filter(match).exclude(
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
    *, scope: Q, items: list[InviteeItem], now: datetime, accepted: set[str] | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """Pending invitations in `scope` (the content's) for these invitees: (by email, by phone) → invitation id.

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
        match, scope, status__in=[InvitationStatus.PENDING, InvitationStatus.ACCEPTED, InvitationStatus.COMPLETED]
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
        .filter(pk=invitation_id, inviter=inviter)
        .filter(Q(story__isnull=True) | Q(story__owner=inviter))
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
    if invitation.conversation_style == style and invitation_kind(invitation).narration_for(invitation) is not None:
        return invitation

    kind = invitation_kind(invitation)
    shared, new_ids = kind.ensure_narrations(invitation_content(invitation), [style])
    previous = invitation.conversation_style
    invitation.conversation_style = style
    link = kind.narration_link(shared[style])
    for name, value in link.items():
        setattr(invitation, name, value)
    invitation.save(update_fields=["conversation_style", *link])
    InvitationHistory.objects.create(
        invitation=invitation,
        user=inviter,
        action=HistoryAction.STYLE_CHANGED,
        data={"from": previous, "to": style, "narration_id": shared[style].pk},
    )
    if new_ids:
        kind.pregenerate(new_ids)
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


def invitation_accept(*, invitation_id: int) -> tuple[StoryInvitation, Any]:
    """Accept an invitation and return its READY narration; accepting again returns the same.

    The narration is generated first (single-flight inside the content's generation, so many
    invitees of one style landing together generate once); only then is the invitation marked
    accepted, so a failed generation leaves it pending and retryable.
    """
    invitation = StoryInvitation.objects.select_related("narration", "story").filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound("Invitation not found.")
    _check_acceptable(invitation)
    kind = invitation_kind(invitation)
    narration = kind.narration_for(invitation)
    if narration is None:
        narration = _reattach_narration(invitation_id=invitation.pk)
    if narration.status != NarrationStatus.READY:
        narration = kind.generate(narration.pk)
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
def _reattach_narration(*, invitation_id: int) -> Any:
    # The shared row was deleted (e.g. by staff): point the invitation at a fresh one.
    invitation = StoryInvitation.objects.select_for_update(of=("self",)).select_related("story").get(pk=invitation_id)
    kind = invitation_kind(invitation)
    shared, _ = kind.ensure_narrations(invitation_content(invitation), [invitation.conversation_style])
    link = kind.narration_link(shared[invitation.conversation_style])
    if link:
        for name, value in link.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=list(link))
    return shared[invitation.conversation_style]


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
    invitation_kind(invitation).on_accepted(invitation)  # e.g. a roleplay role becomes filled
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
