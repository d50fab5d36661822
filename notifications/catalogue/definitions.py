"""The shape of a shipped event type (`EventDefinition`, `Copy`) and the presets and shared
snippets the catalogue modules write them with.

Template text uses Django template syntax and only the variables of the event's mapping
plus the standard ones (`recipient.name`, `actor.name`, `action_url`, `organization.name`,
`resource.*`, `event.type`). Optional parts sit inside `{% if %}` so a missing value reads
naturally. SMS texts stay in the GSM-7 alphabet (no â, ê, ô, ç, curly quotes) and short
enough for one segment with typical values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..enums import Channel, Criticality, EventCategory

C = Channel
IN_APP, EMAIL, PUSH, SMS, WHATSAPP, VOICE = C.IN_APP, C.EMAIL, C.PUSH, C.SMS, C.WHATSAPP, C.VOICE
ALL_CHANNELS: list[str] = [IN_APP, EMAIL, PUSH, SMS, WHATSAPP, VOICE]

# (default channels, allowed channels) presets.
ChannelPreset = tuple[list[str], list[str]]
INFO: ChannelPreset = ([IN_APP], [IN_APP, EMAIL, PUSH])
STANDARD: ChannelPreset = ([IN_APP, EMAIL], [IN_APP, EMAIL, PUSH, SMS])  # the seed's task.assigned mapping
URGENT: ChannelPreset = ([IN_APP, EMAIL, PUSH], [IN_APP, EMAIL, PUSH, SMS, WHATSAPP])
INCIDENT: ChannelPreset = ([IN_APP, EMAIL, PUSH, SMS], ALL_CHANNELS)  # the seed's incident.created mapping
CRITICAL: ChannelPreset = ([IN_APP, EMAIL, PUSH, SMS, VOICE], ALL_CHANNELS)
INVITATION: ChannelPreset = ([IN_APP, EMAIL, SMS], [IN_APP, EMAIL, PUSH, SMS, WHATSAPP])
ACCEPTED: ChannelPreset = ([IN_APP, EMAIL], [IN_APP, EMAIL, PUSH, SMS])

LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Copy:
    """The words of one event in one language; every channel's content is built from them."""

    title: str
    body: str
    action: str
    sms: str
    voice: str


@dataclass(frozen=True)
class EventDefinition:
    key: str
    name: str
    description: str
    category: str
    criticality: str
    channels: tuple[list[str], list[str]]
    variables: dict[str, str]
    recipients: str
    en: Copy
    fr: Copy
    # The variable holding the link the recipient follows.
    link: str = "action_url"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def default_channels(self) -> list[str]:
        return [str(c) for c in self.channels[0]]

    @property
    def allowed_channels(self) -> list[str]:
        return [str(c) for c in self.channels[1]]

    def copy(self, language: str) -> Copy:
        return self.en if language == "en" else self.fr


PM, COLLAB, AI, SYSADMIN = EventCategory.PROJECT_MANAGEMENT, EventCategory.COLLABORATION, EventCategory.AI_PLANNING, EventCategory.SYSTEM_ADMIN
INCIDENTS, CALENDAR, SECURITY = EventCategory.INCIDENTS, EventCategory.CALENDAR, EventCategory.SECURITY
LOW, MEDIUM, HIGH, CRIT = Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL

TASK = {"task.title": "data.taskTitle", "task.id": "resourceId", "project.name": "data.projectName"}
REVIEW = {"review.title": "data.reviewTitle", "review.id": "resourceId"}
PLAN = {"plan.title": "data.planTitle", "plan.id": "resourceId"}
EXECUTION = {"execution.name": "data.executionName", "execution.id": "resourceId"}
INCIDENT_VARS = {"incident.title": "data.incidentTitle", "incident.severity": "data.severity", "incident.id": "resourceId"}
SOMEONE_EN = '{{ actor.name|default:"Someone" }}'
SOMEONE_FR = "{{ actor.name|default:\"Quelqu'un\" }}"
EXCERPT_EN = '{% if comment.excerpt %}: "{{ comment.excerpt|truncatechars:140 }}"{% endif %}'
EXCERPT_FR = "{% if comment.excerpt %} : « {{ comment.excerpt|truncatechars:140 }} »{% endif %}"
