"""ElevenLabs text-to-speech (https://elevenlabs.io/docs/api-reference/text-to-speech).

One `POST /v1/text-to-speech/{voice_id}` per segment, authenticated with the `xi-api-key`
header, answering `audio/mpeg` bytes. The style's voice settings go with every request.
"""
from __future__ import annotations

import logging

import requests
from django.conf import settings

from common.exceptions import ProviderPermanentError, ProviderTransientError

from ..segmenter import NARRATOR, ScriptLine
from .base import NarrationEngine, NarrationJob, RenderedAudio

logger = logging.getLogger(__name__)

OUTPUT_FORMAT = "mp3_44100_128"
_BITRATE_BPS = 128_000
_TRANSIENT_STATUSES = {408, 409, 425, 429}


def _provider_message(response: requests.Response) -> str:
    """The provider's own explanation, if any (never echoes request headers)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("status") or detail)[:200]
    return str(detail)[:200]


class ElevenLabsClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model_id: str,
        timeout: tuple[float, float] = (5.0, 60.0),
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise ProviderPermanentError("ElevenLabs API key is not configured.")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.model_id = model_id
        self.timeout = timeout
        self.session = session or requests.Session()

    def __repr__(self) -> str:  # keep the key out of tracebacks and logs
        return f"ElevenLabsClient(base_url={self.base_url!r}, model_id={self.model_id!r})"

    def text_to_speech(self, *, voice_id: str, text: str, voice_settings: dict[str, float]) -> bytes:
        url = f"{self.base_url}/v1/text-to-speech/{voice_id}"
        try:
            response = self.session.post(
                url,
                params={"output_format": OUTPUT_FORMAT},
                headers={"xi-api-key": self._api_key, "Accept": "audio/mpeg", "Content-Type": "application/json"},
                json={"text": text, "model_id": self.model_id, "voice_settings": voice_settings},
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise ProviderTransientError(f"ElevenLabs timed out: {exc.__class__.__name__}") from None
        except requests.ConnectionError as exc:
            raise ProviderTransientError(f"ElevenLabs unreachable: {exc.__class__.__name__}") from None
        except requests.RequestException as exc:
            raise ProviderTransientError(f"ElevenLabs request failed: {exc.__class__.__name__}") from None
        status = response.status_code
        if status == 200:
            if not response.content:
                raise ProviderTransientError("ElevenLabs returned an empty body.")
            return response.content
        message = f"ElevenLabs answered {status}: {_provider_message(response)}"
        logger.warning("text-to-speech failed: %s", message)
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise ProviderTransientError(message, code=str(status))
        raise ProviderPermanentError(message, code=str(status))


class ElevenLabsEngine(NarrationEngine):
    code = "elevenlabs"

    def __init__(self, client: ElevenLabsClient | None = None) -> None:
        self.client = client or ElevenLabsClient(
            api_key=settings.ELEVENLABS_API_KEY,
            base_url=settings.ELEVENLABS_BASE_URL,
            model_id=settings.ELEVENLABS_MODEL_ID,
            timeout=tuple(getattr(settings, "ELEVENLABS_TIMEOUT", (5.0, 60.0))),
        )

    def _voice_for(self, line: ScriptLine, job: NarrationJob) -> str:
        narrator = job.narrator_voice or settings.ELEVENLABS_DEFAULT_VOICE_ID
        if line.speaker == NARRATOR:
            return narrator
        return job.character_voices.get(line.speaker) or narrator

    def render_line(self, line: ScriptLine, *, job: NarrationJob, is_last: bool) -> RenderedAudio:
        audio = self.client.text_to_speech(
            voice_id=self._voice_for(line, job), text=line.text, voice_settings=job.style.voice.as_dict()
        )
        # Constant-bitrate MP3: the size gives the running time without decoding it.
        spoken_ms = len(audio) * 8 * 1000 // _BITRATE_BPS
        return RenderedAudio(audio, "mp3", spoken_ms + (0 if is_last else job.style.pause_ms))
