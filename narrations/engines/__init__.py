"""Narration engines. `get_engine()` picks one from settings:

NARRATION_ENGINE = "elevenlabs" or "local" forces it; empty (the default) means ElevenLabs
when ELEVENLABS_API_KEY is set, the offline local engine otherwise.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import NarrationEngine, NarrationJob, NarrationResult


def get_engine() -> NarrationEngine:
    choice = (getattr(settings, "NARRATION_ENGINE", "") or "").strip().lower()
    if not choice:
        choice = "elevenlabs" if getattr(settings, "ELEVENLABS_API_KEY", "") else "local"
    if choice == "elevenlabs":
        from .elevenlabs import ElevenLabsEngine

        return ElevenLabsEngine()
    if choice == "local":
        from .local import LocalEngine

        return LocalEngine()
    raise ImproperlyConfigured(f"NARRATION_ENGINE must be 'local' or 'elevenlabs', not {choice!r}")


__all__ = ["NarrationEngine", "NarrationJob", "NarrationResult", "get_engine"]
