"""Roleplay: invite people to play a story's characters (seed 000 "Roleplay Character
Invitations": tables `roleplay_templates`, `roleplay_character_roles`)."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Difficulty(models.TextChoices):
    BEGINNER = "beginner", "Beginner"
    INTERMEDIATE = "intermediate", "Intermediate"
    ADVANCED = "advanced", "Advanced"


class RoleplayTemplate(models.Model):
    story = models.ForeignKey("narrations.Story", on_delete=models.CASCADE, related_name="roleplay_templates")
    template_name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    # Derived: the number of roles, set by roleplay.services when the template is created.
    total_characters = models.PositiveIntegerField()
    estimated_duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    difficulty_level = models.CharField(max_length=20, choices=Difficulty.choices)
    is_public = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="roleplay_templates"
    )
    cast_completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "roleplay_templates"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.template_name


class RoleplayCharacterRole(models.Model):
    template = models.ForeignKey(RoleplayTemplate, on_delete=models.CASCADE, related_name="roles")
    character = models.ForeignKey("narrations.StoryCharacter", on_delete=models.CASCADE, related_name="roleplay_roles")
    role_name = models.CharField(max_length=100)
    role_description = models.TextField(blank=True)
    required_voice_emotions = models.JSONField(default=list, blank=True)
    is_protagonist = models.BooleanField(default=False)
    # Set when the invitation holding the role is accepted (cleared if it is revoked).
    filled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "roleplay_character_roles"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "character"], name="uniq_role_per_character_per_template"),
        ]

    def __str__(self) -> str:
        return f"{self.role_name} ({self.template})"
