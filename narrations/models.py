from __future__ import annotations

from django.conf import settings
from django.db import models


class ConversationStyle(models.TextChoices):
    RESPECTFUL = "respectful", "Respectful"
    BUSINESS = "business", "Business"
    JOVIAL = "jovial", "Jovial"
    PLAYFUL = "playful", "Playful"
    CLOSE_FRIENDS = "close_friends", "Close friends"
    PARENT_TO_CHILD = "parent_to_child", "Parent to child"
    CHILD_TO_PARENT = "child_to_parent", "Child to parent"
    SIBLINGS = "siblings", "Siblings"


class Story(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stories")
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="stories"
    )
    title = models.CharField(max_length=200)
    content = models.TextField()
    language = models.CharField(max_length=10, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "stories"
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class StoryCharacter(models.Model):
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="characters")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    voice_id = models.CharField(max_length=100, blank=True, help_text="Optional ElevenLabs voice for this character")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["story", "name"], name="uniq_character_name_per_story")]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class NarrationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    GENERATING = "generating", "Generating"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


DEFAULT_NARRATOR_PROFILE = "default"


class NarrationBase(models.Model):
    """What every narration row holds, whatever it narrates (a story, a news article...).

    Shared rows (user NULL) are pre-created when invitations are sent, one per
    (content, conversation_style, narrator_profile); `segments` stays NULL until generated
    (narrations.services.narration_generate_row does it once under concurrency).
    """

    narrator_voice = models.CharField(max_length=100, blank=True)
    narrator_profile = models.CharField(max_length=50, default=DEFAULT_NARRATOR_PROFILE)
    conversation_style = models.CharField(max_length=20, choices=ConversationStyle.choices)
    segments = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=NarrationStatus.choices, default=NarrationStatus.PENDING)
    engine = models.CharField(max_length=30, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    total_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    generation_started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class StoryNarration(NarrationBase):
    """A narration of a story in one conversation style."""

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="narrations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="narrations"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["story", "conversation_style", "narrator_profile"],
                condition=models.Q(user__isnull=True),
                name="uniq_shared_narration_per_style",
            ),
            models.UniqueConstraint(
                fields=["story", "user", "conversation_style", "narrator_profile"],
                condition=models.Q(user__isnull=False),
                name="uniq_user_narration_per_style",
            ),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.story} · {self.conversation_style} ({self.status})"
