"""Narration fixtures: stories, and a loopback server that speaks the ElevenLabs TTS API."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import factory
import pytest

from narrations.models import Story, StoryCharacter

from ..factories import UserFactory

TTS_API_KEY = "xi-test-key-0123456789abcdef"
# A few MPEG frame headers' worth of bytes: the engine only stores and measures them.
FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 4000


class StoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Story

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"The Lantern Keeper {n}")
    content = (
        "The lighthouse stood alone on the cliff.\n\n"
        'Mira: "Is anyone up there?"\n'
        '"Only me," said Tom.'
    )


class StoryCharacterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoryCharacter

    story = factory.SubFactory(StoryFactory)
    name = factory.Sequence(lambda n: f"Character {n}")


@pytest.fixture
def story(user, organization):
    s = StoryFactory(owner=user, organization=organization)
    StoryCharacterFactory(story=s, name="Mira")
    StoryCharacterFactory(story=s, name="Tom", voice_id="voice-tom")
    return s


@dataclass
class TtsServer:
    """What the fake provider saw, and what it should answer next."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    # Statuses to answer, consumed in order; 200 (with audio) once empty.
    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 200


def _handler(state: TtsServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            prefix = "/v1/text-to-speech/"
            path, _, query = self.path.partition("?")
            with state.lock:
                state.requests.append(
                    {"path": path, "query": query, "headers": dict(self.headers), "body": json.loads(raw or b"{}")}
                )
            if state.delay_s:
                time.sleep(state.delay_s)
            if not path.startswith(prefix) or not path[len(prefix):]:
                return self._reply(404, b'{"detail": {"status": "not_found"}}', "application/json")
            if self.headers.get("xi-api-key") != TTS_API_KEY:
                return self._reply(
                    401, b'{"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}', "application/json"
                )
            body = json.loads(raw or b"{}")
            if not body.get("text") or not body.get("model_id"):
                return self._reply(422, b'{"detail": [{"msg": "field required"}]}', "application/json")
            status = state.next_status()
            if status != 200:
                message = {"status": "error", "message": f"simulated {status}"}
                return self._reply(status, json.dumps({"detail": message}).encode(), "application/json")
            return self._reply(200, FAKE_MP3, "audio/mpeg")

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Timeout tests hang up on purpose; the resulting broken pipe is expected.
        pass


@pytest.fixture
def tts_server():
    state = TtsServer()
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def elevenlabs(settings, tts_server):
    """Route the narration engine to the loopback ElevenLabs."""
    settings.NARRATION_ENGINE = "elevenlabs"
    settings.ELEVENLABS_API_KEY = TTS_API_KEY
    settings.ELEVENLABS_BASE_URL = tts_server.url
    settings.ELEVENLABS_MODEL_ID = "eleven_multilingual_v2"
    settings.ELEVENLABS_DEFAULT_VOICE_ID = "voice-narrator"
    return tts_server


@pytest.fixture
def local_engine(settings):
    settings.NARRATION_ENGINE = "local"
    settings.ELEVENLABS_API_KEY = ""
    return settings
