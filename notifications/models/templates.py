"""The event taxonomy and the templates that render it."""
from __future__ import annotations


from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from ..enums import (
    Channel,
    Criticality,
    EventCategory,
)
from .validators import (
    validate_channel_list,
    validate_string_list,
    validate_variable_mapping,
)

User = settings.AUTH_USER_MODEL
ORG = "accounts.Organization"


# --- taxonomy ----------------------------------------------------------------------


class EventType(models.Model):
    """One entry of the event taxonomy (seed 5.2/5.3): how an event type is notified by default."""

    key = models.CharField(max_length=100, unique=True, help_text='e.g. "task.assigned"')
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=30, choices=EventCategory.choices)
    default_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    default_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    allowed_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    variable_mapping = models.JSONField(
        default=dict, blank=True, validators=[validate_variable_mapping],
        help_text='Template variable → event path, e.g. {"task.title": "data.taskTitle", "task.id": "resourceId"}',
    )
    default_template_key = models.CharField(max_length=100, blank=True, help_text="Defaults to the event type key.")
    recipients_hint = models.CharField(max_length=200, blank=True, help_text="Who usually receives it (documentation).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "key"]
        indexes = [models.Index(fields=["category"])]

    def __str__(self) -> str:
        return self.key

    @property
    def template_key(self) -> str:
        return self.default_template_key or self.key

    def clean(self) -> None:
        extra = set(self.default_channels or []) - set(self.allowed_channels or [])
        if extra:
            raise ValidationError({"default_channels": f"Not in the allowed channels: {', '.join(sorted(extra))}."})


# --- templates ---------------------------------------------------------------------


# django-modeltranslation swaps TemplateChannel's manager at run time for one of its own that the
# type checker's Django plugin cannot name (hence the two ignores on the class lines).
class NotificationTemplate(models.Model):  # type: ignore[django-manager-missing]
    """Content for one event type; a row with an organization overrides the global default."""

    key = models.CharField(max_length=100, help_text='Template code, usually the event type, e.g. "task.assigned"')
    event_type = models.CharField(max_length=100, db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    organization = models.ForeignKey(
        ORG, on_delete=models.CASCADE, null=True, blank=True, related_name="notification_templates",
        help_text="Empty: the platform default.",
    )
    default_criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    variables = models.JSONField(
        default=list, blank=True, validators=[validate_string_list],
        help_text='Variables the content may use, e.g. ["task.title", "actor.name", "action_url"].',
    )
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Shipped with the platform catalog.")
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=Q(organization__isnull=True), name="uniq_global_template_key"),
            models.UniqueConstraint(
                fields=["organization", "key"], condition=Q(organization__isnull=False), name="uniq_org_template_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.organization or 'global'})"

    @property
    def is_global(self) -> bool:
        return self.organization_id is None


class TemplateChannel(models.Model):  # type: ignore[django-manager-missing]
    """A template's content for one channel. Text fields are translated (see translation.py)."""

    template = models.ForeignKey(NotificationTemplate, on_delete=models.CASCADE, related_name="channels")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True, help_text="Email subject.")
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True, help_text="Plain text (in-app, push, SMS, WhatsApp, voice script, email text part).")
    body_html = models.TextField(blank=True, help_text="Email HTML part.")
    action_label = models.CharField(max_length=100, blank=True)
    action_url = models.CharField(max_length=500, blank=True, help_text="Template for the deep link.")
    extra = models.JSONField(
        default=dict, blank=True,
        help_text="Channel options: WhatsApp template name/components, voice language/voice/acknowledgment digit, …",
    )

    class Meta:
        ordering = ["template_id", "channel"]
        constraints = [models.UniqueConstraint(fields=["template", "channel"], name="uniq_template_channel")]

    def __str__(self) -> str:
        return f"{self.template.key} · {self.channel}"


class TemplateVersion(models.Model):
    """A template as it stood at one version: written by every change (API, console, restore),
    so the history can show what changed and bring an older state back."""

    template = models.ForeignKey(NotificationTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.JSONField(help_text="The template's fields and every channel's content in every language.")
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["template", "version"], name="uniq_template_version")]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.version}"
