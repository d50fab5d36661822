"""Story invitations: who was invited to hear which story, in which conversation style.

The token itself never touches the database: only its SHA-256 is stored, and the link the
invitee receives is the credential for that one invitation.
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q

from narrations.models import ConversationStyle


def hash_token(raw: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(raw.encode()).hexdigest()


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    COMPLETED = "completed", "Completed"


class InvitationType(models.TextChoices):
    STORY_COLLABORATION = "story_collaboration", "Story collaboration"
    NEWS_FEED = "news_feed", "News feed"
    ROLEPLAY_CHARACTER = "roleplay_character", "Roleplay character"
    CONTENT_RECOMMENDATION = "content_recommendation", "Content recommendation"


class DeliveryChannel(models.TextChoices):
    EMAIL = "EMAIL", "Email"
    SMS = "SMS", "SMS"


class DeliveryState(models.TextChoices):
    """Per-channel state shown to the inviter: the notification delivery's status, lower-cased,
    plus the states of an invitation the notification platform has not (or could not) take."""

    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    HELD = "held", "Held"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    REJECTED = "rejected", "Rejected"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    # The notification exists but routing left this channel out (disabled for the organization).
    NOT_DELIVERABLE = "not_deliverable", "Not deliverable"


class StoryInvitation(models.Model):
    # Set for story content (and roleplay roles of a story); other content is named only by
    # content_type + content_id (invitations.content_types).
    story = models.ForeignKey(
        "narrations.Story", on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_invitations")
    invitee_email = models.EmailField(max_length=254, blank=True)
    invitee_phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550100")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=12, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    message = models.TextField(blank=True)
    character = models.ForeignKey(
        "narrations.StoryCharacter", on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    # What the inviter chose for this relationship; `narration` is the shared row generated in it.
    conversation_style = models.CharField(max_length=20, choices=ConversationStyle.choices)
    narration = models.ForeignKey(
        "narrations.StoryNarration", on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    locale = models.CharField(max_length=10, blank=True)
    invitation_type = models.CharField(
        max_length=30, choices=InvitationType.choices, default=InvitationType.STORY_COLLABORATION
    )
    content_type = models.CharField(max_length=50, blank=True)
    content_id = models.CharField(max_length=100, blank=True)
    content_metadata = models.JSONField(default=dict, blank=True)
    # A role of a roleplay template of the story (invitation type roleplay_character).
    roleplay_role = models.ForeignKey(
        "roleplay.RoleplayCharacterRole", on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    # The batch job that follows this invitation's send (one per batch).
    batch_job = models.ForeignKey(
        "batchjobs.BatchJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    # The `story.invitation` notification that carries the link (set by invitations.notify after
    # the batch commits); its deliveries are the per-channel status the inviter sees.
    notification = models.ForeignKey(
        "notifications.Notification", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["story", "status"], name="inv_story_status_idx"),
            models.Index(fields=["expires_at"], name="inv_expires_at_idx"),
            models.Index(fields=["content_type", "content_id", "status"], name="inv_content_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(invitee_email="") | ~Q(invitee_phone=""), name="inv_email_or_phone"
            ),
            models.UniqueConstraint(
                fields=["story", "invitee_email"],
                condition=Q(status="pending") & ~Q(invitee_email=""),
                name="uniq_pending_invitation_email",
            ),
            models.UniqueConstraint(
                fields=["story", "invitee_phone"],
                condition=Q(status="pending") & ~Q(invitee_phone=""),
                name="uniq_pending_invitation_phone",
            ),
            # A role is held by at most one pending or accepted invitation.
            models.UniqueConstraint(
                fields=["roleplay_role"],
                condition=Q(status__in=["pending", "accepted"], roleplay_role__isnull=False),
                name="uniq_active_invitation_per_role",
            ),
            # The same rule for content that is not a story (story is NULL there).
            models.UniqueConstraint(
                fields=["content_type", "content_id", "invitee_email"],
                condition=Q(status="pending", story__isnull=True) & ~Q(invitee_email=""),
                name="uniq_pending_content_invitation_email",
            ),
            models.UniqueConstraint(
                fields=["content_type", "content_id", "invitee_phone"],
                condition=Q(status="pending", story__isnull=True) & ~Q(invitee_phone=""),
                name="uniq_pending_content_invitation_phone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invitee_email or self.invitee_phone} → {self.content_title} ({self.status})"

    @property
    def content_title(self) -> str:
        if self.story is not None and self.content_type in ("", "story"):
            return self.story.title
        return str((self.content_metadata or {}).get("title") or self.story or "")

    @property
    def invitee(self) -> str:
        return self.invitee_email or self.invitee_phone


class HistoryAction(models.TextChoices):
    SENT = "sent", "Sent"
    VIEWED = "viewed", "Viewed"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    STYLE_CHANGED = "style_changed", "Style changed"
    EXPIRED = "expired", "Expired"
    # On the invitee's side: a person with an account at the invited address (seed 000 `received`).
    RECEIVED = "received", "Received"
    # A new link was issued (copied by the inviter, or sent again); the previous one stopped working.
    LINK_REISSUED = "link_reissued", "New link issued"


class InvitationHistory(models.Model):
    invitation = models.ForeignKey(StoryInvitation, on_delete=models.CASCADE, related_name="history")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=20, choices=HistoryAction.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "invitation history"
        indexes = [models.Index(fields=["invitation", "action"], name="inv_history_action_idx")]

    def __str__(self) -> str:
        return f"{self.invitation_id}: {self.action}"


class OptOutSource(models.TextChoices):
    LINK = "link", "Unsubscribe page"
    ONE_CLICK = "one_click", "One-click (List-Unsubscribe)"
    SMS_STOP = "sms_stop", "SMS STOP reply"


class InviteeOptOut(models.Model):
    """An address (lower-cased email, or E.164 phone) that asked not to be invited again —
    by one inviter, or (inviter NULL) by anyone on the platform. Invitees have no account, so
    this is their preference center; it is honoured when invitations are sent."""

    address = models.CharField(max_length=320)
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=12, choices=OptOutSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["address", "inviter"], condition=Q(inviter__isnull=False), name="uniq_optout_inviter"),
            models.UniqueConstraint(fields=["address"], condition=Q(inviter__isnull=True), name="uniq_optout_platform"),
        ]
        indexes = [models.Index(fields=["address"], name="optout_address_idx")]

    def __str__(self) -> str:
        return f"{self.address} ⊘ {self.inviter or 'everyone'}"
