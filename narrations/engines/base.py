"""The narration engine contract.

An engine turns a `NarrationJob` (a script of lines, the style, the voices) into segments
with audio, written through Django's storage API.

Contract:
- `narrate(job)` returns a `NarrationResult`: one segment per script line, in order, each
  `{index, speaker, text, audio_path, duration_ms}`; `audio_path` is a storage name (or None
  when the engine produced text only) and `duration_ms` includes the style's pause after the
  segment, so the sum is the running time of the narration.
- Audio for segment `i` of narration `n` of story `s` is stored at
  `narrations/<s>/<n>/<i>.<ext>`; a re-run overwrites the same names, so running an engine
  twice for one narration is harmless.
- An engine keeps no state between jobs that changes its output and never touches the
  database: the caller (narrations.services) owns locking, status and bookkeeping.
- Failures raise `common.exceptions.ProviderTransientError` (worth retrying later: timeouts,
  connection errors, rate limits, provider outages) or `ProviderPermanentError` (retrying
  will not help: bad credentials, rejected input). Nothing else is expected to escape.
- `code` names the engine on the narration row (`StoryNarration.engine`); an engine may
  report a more precise code in the result (e.g. the local engine without its TTS library).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ..segmenter import ScriptLine
from ..styles import StyleSpec


@dataclass(frozen=True)
class NarrationJob:
    narration_id: int
    story_id: int
    title: str
    language: str
    style: StyleSpec
    script: list[ScriptLine]
    narrator_voice: str = ""
    # Character name → provider voice id, for engines that give characters their own voice.
    character_voices: dict[str, str] = field(default_factory=dict)
    # Where the audio goes: `narrations/<story_id>` for stories, another folder for other content.
    audio_prefix: str = ""


@dataclass
class NarrationResult:
    engine: str
    segments: list[dict]

    @property
    def total_duration_ms(self) -> int:
        return sum(int(s["duration_ms"]) for s in self.segments)


@dataclass(frozen=True)
class RenderedAudio:
    data: bytes | None  # None: text only
    extension: str
    duration_ms: int


def audio_storage_name(job: NarrationJob, index: int, extension: str) -> str:
    prefix = job.audio_prefix or f"narrations/{job.story_id}"
    return f"{prefix}/{job.narration_id}/{index}.{extension}"


def store_audio(name: str, data: bytes) -> str:
    # Storage backends rename on collision; a regeneration must replace the file instead.
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


class NarrationEngine(ABC):
    code: ClassVar[str]

    @abstractmethod
    def render_line(self, line: ScriptLine, *, job: NarrationJob, is_last: bool) -> RenderedAudio:
        """Audio for one script line (its duration including the style's trailing pause)."""

    def result_code(self) -> str:
        return self.code

    def narrate(self, job: NarrationJob) -> NarrationResult:
        segments: list[dict] = []
        for index, line in enumerate(job.script):
            rendered = self.render_line(line, job=job, is_last=index == len(job.script) - 1)
            path = None
            if rendered.data is not None:
                path = store_audio(audio_storage_name(job, index, rendered.extension), rendered.data)
            segments.append(
                {
                    "index": index,
                    "speaker": line.speaker,
                    "text": line.text,
                    "audio_path": path,
                    "duration_ms": int(rendered.duration_ms),
                }
            )
        return NarrationResult(engine=self.result_code(), segments=segments)
