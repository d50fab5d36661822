"""Offline narration: eSpeak NG through ctypes, no account and no network.

The library and its voice data come from the `espeakng-loader` wheel; the paths can be
overridden with settings.NARRATION_ESPEAK_LIBRARY / NARRATION_ESPEAK_DATA. When the library
cannot be loaded the engine still works: it returns text segments with durations estimated
from the style's words per minute, and no audio.
"""
from __future__ import annotations

import ctypes
import io
import logging
import os
import threading
import wave
from pathlib import Path

from django.conf import settings

from common.exceptions import ProviderTransientError

from ..segmenter import NARRATOR, ScriptLine
from .base import NarrationEngine, NarrationJob, NarrationResult, RenderedAudio

logger = logging.getLogger(__name__)

SAMPLE_RATE = 22050
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # without it a bad data path makes the library call exit()
ESPEAK_RATE = 1
ESPEAK_PITCH = 3
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
# Characters get distinct pitches so dialogue is easy to follow with one voice.
_CHARACTER_PITCHES = (38, 64, 44, 58, 34, 70)
_NARRATOR_PITCH = 50

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

# eSpeak NG keeps global state (one voice, one callback, one output buffer): every call into
# it, from any thread of the process, goes through this lock.
_LOCK = threading.Lock()
_LOAD_LOCK = threading.Lock()
_LIBRARIES: dict[tuple[str, str], EspeakLibrary | None] = {}


class EspeakUnavailable(RuntimeError):
    pass


def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader

        return espeakng_loader.get_library_path(), str(Path(espeakng_loader.__file__).parent / "espeak-ng-data")
    except ImportError:
        return "", ""


def configured_paths() -> tuple[str, str]:
    library, data = _default_paths()
    return (
        str(getattr(settings, "NARRATION_ESPEAK_LIBRARY", "") or library),
        str(getattr(settings, "NARRATION_ESPEAK_DATA", "") or data),
    )


class EspeakLibrary:
    def __init__(self, library_path: str, data_path: str) -> None:
        if not library_path or not os.path.exists(library_path):
            raise EspeakUnavailable(f"eSpeak NG library not found at {library_path!r}")
        if not data_path or not os.path.isdir(data_path):
            raise EspeakUnavailable(f"eSpeak NG data not found at {data_path!r}")
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise EspeakUnavailable(f"cannot load eSpeak NG: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        with _LOCK:
            rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), ESPEAK_INITIALIZE_DONT_EXIT)
            if rate <= 0:
                raise EspeakUnavailable(f"eSpeak NG failed to initialise (code {rate})")
            self._chunks: list[bytes] = []
            # Keep a reference: the C side only holds a raw pointer to this thunk.
            self._callback = _SYNTH_CALLBACK(self._on_audio)
            lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.sample_rate = rate

    def _on_audio(self, wav, numsamples, events) -> int:
        if wav and numsamples > 0:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, *, language: str, words_per_minute: int, pitch: int) -> bytes:
        """16-bit mono PCM at `self.sample_rate`."""
        encoded = text.encode("utf-8")
        with _LOCK:
            self._chunks = []
            if self.lib.espeak_SetVoiceByName(language.encode()) != 0:
                self.lib.espeak_SetVoiceByName(b"en")
            self.lib.espeak_SetParameter(ESPEAK_RATE, int(words_per_minute), 0)
            self.lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
            status = self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            pcm = b"".join(self._chunks)
            self._chunks = []
        if status != 0:
            raise EspeakUnavailable(f"eSpeak NG synthesis failed (code {status})")
        return pcm


def load_espeak() -> EspeakLibrary | None:
    """The process's eSpeak NG, or None when it cannot be loaded (logged once per path)."""
    key = configured_paths()
    # Initialising twice would re-register the callback and steal the first instance's audio.
    with _LOAD_LOCK:
        if key not in _LIBRARIES:
            try:
                _LIBRARIES[key] = EspeakLibrary(*key)
            except EspeakUnavailable as exc:
                logger.warning("local narration falls back to text only: %s", exc)
                _LIBRARIES[key] = None
        return _LIBRARIES[key]


def wav_bytes(pcm: bytes, *, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


class LocalEngine(NarrationEngine):
    code = "local"
    text_only_code = "local-text"

    def __init__(self) -> None:
        self._espeak: EspeakLibrary | None = None
        self._pitches: dict[str, int] = {}

    def result_code(self) -> str:
        return self.code if self._espeak is not None else self.text_only_code

    def narrate(self, job: NarrationJob) -> NarrationResult:
        self._espeak = load_espeak()
        self._pitches = {}
        return super().narrate(job)

    def _pitch(self, speaker: str) -> int:
        if speaker == NARRATOR:
            return _NARRATOR_PITCH
        if speaker not in self._pitches:
            self._pitches[speaker] = _CHARACTER_PITCHES[len(self._pitches) % len(_CHARACTER_PITCHES)]
        return self._pitches[speaker]

    def render_line(self, line: ScriptLine, *, job: NarrationJob, is_last: bool) -> RenderedAudio:
        style = job.style
        pause_ms = 0 if is_last else style.pause_ms
        if self._espeak is None:
            return RenderedAudio(None, "wav", style.estimate_duration_ms(line.text) + pause_ms)
        rate = self._espeak.sample_rate
        try:
            pcm = self._espeak.synthesize(
                line.text, language=job.language or "en", words_per_minute=style.words_per_minute,
                pitch=self._pitch(line.speaker),
            )
        except EspeakUnavailable as exc:
            raise ProviderTransientError(str(exc)) from exc
        pcm += b"\x00\x00" * (rate * pause_ms // 1000)
        samples = len(pcm) // 2
        return RenderedAudio(wav_bytes(pcm, sample_rate=rate), "wav", samples * 1000 // rate)
