"""The shipped event taxonomy (seed 004, section 5.2) as data: every event type of the seed,
plus the story invitation events, with its default criticality, default and allowed
channels, variable mapping and English/French copy. `notifications.taxonomy` builds the
per-channel templates from it and loads them (`catalog_load()`).
"""
from __future__ import annotations

from .definitions import ALL_CHANNELS, CRITICAL, LANGUAGES, Copy, EventDefinition
from .operations import OPERATIONS_EVENTS
from .work import WORK_EVENTS

EVENTS: list[EventDefinition] = [*WORK_EVENTS, *OPERATIONS_EVENTS]
EVENTS_BY_KEY: dict[str, EventDefinition] = {event.key: event for event in EVENTS}

__all__ = ["ALL_CHANNELS", "CRITICAL", "EVENTS", "EVENTS_BY_KEY", "LANGUAGES", "Copy", "EventDefinition"]
