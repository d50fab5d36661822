import io
import wave

import pytest
from django.core.files.storage import default_storage

from common.exceptions import ProviderPermanentError, ProviderTransientError
from narrations.engines import NarrationJob, get_engine
from narrations.engines.elevenlabs import ElevenLabsClient, ElevenLabsEngine
from narrations.engines.local import LocalEngine, load_espeak
from narrations.segmenter import NARRATOR, ScriptLine
from narrations.styles import get_style

from .conftest import FAKE_MP3, TTS_API_KEY


def job(style="parent_to_child", script=None, **kwargs):
    return NarrationJob(
        narration_id=7,
        story_id=3,
        title="The Lantern",
        language="en",
        style=get_style(style),
        script=script
        or [ScriptLine(NARRATOR, "Once upon a time."), ScriptLine("Tom", "Hello there."), ScriptLine(NARRATOR, "The end.")],
        **kwargs,
    )


# --- choosing an engine -----------------------------------------------------------


def test_local_engine_is_the_default_without_a_key(settings):
    settings.NARRATION_ENGINE = ""
    settings.ELEVENLABS_API_KEY = ""
    assert isinstance(get_engine(), LocalEngine)


def test_elevenlabs_is_chosen_when_a_key_is_set(settings):
    settings.NARRATION_ENGINE = ""
    settings.ELEVENLABS_API_KEY = "k" * 20
    assert isinstance(get_engine(), ElevenLabsEngine)
    settings.NARRATION_ENGINE = "local"
    assert isinstance(get_engine(), LocalEngine)


# --- local engine -------------------------------------------------------------------


def test_local_engine_writes_real_wav_audio_through_storage(local_engine):
    assert load_espeak() is not None, "the espeakng-loader wheel ships libespeak-ng"
    the_job = job()
    result = get_engine().narrate(the_job)
    assert result.engine == "local"
    assert [s["index"] for s in result.segments] == [0, 1, 2]
    assert [s["speaker"] for s in result.segments] == [NARRATOR, "Tom", NARRATOR]
    for segment in result.segments:
        assert segment["audio_path"] == f"narrations/3/7/{segment['index']}.wav"
        with default_storage.open(segment["audio_path"]) as fh:
            data = fh.read()
        assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
            frames = wav.getnframes()
            pcm = wav.readframes(frames)
        assert frames > 22050 // 10  # more than a tenth of a second of sound
        assert any(pcm[i] for i in range(0, len(pcm), 2))  # not silence
        assert segment["duration_ms"] == frames * 1000 // 22050
    # The style's pause follows every segment but the last.
    assert result.total_duration_ms == sum(s["duration_ms"] for s in result.segments) > 0


def test_local_engine_rerun_overwrites_the_same_files(local_engine):
    first = get_engine().narrate(job())
    second = get_engine().narrate(job())
    assert [s["audio_path"] for s in first.segments] == [s["audio_path"] for s in second.segments]
    assert sorted(default_storage.listdir("narrations/3/7")[1]) == ["0.wav", "1.wav", "2.wav"]


def test_slower_style_makes_longer_audio(local_engine):
    script = [ScriptLine(NARRATOR, "The quick brown fox jumps over the lazy dog near the river bank.")] * 2
    slow = get_engine().narrate(job("parent_to_child", script=script))
    fast = get_engine().narrate(job("playful", script=script))
    assert slow.total_duration_ms > fast.total_duration_ms


def test_local_engine_falls_back_to_text_when_the_library_is_missing(local_engine, tmp_path):
    local_engine.NARRATION_ESPEAK_LIBRARY = str(tmp_path / "missing" / "libespeak-ng.so")
    style = get_style("business")
    result = get_engine().narrate(job("business"))
    assert result.engine == "local-text"
    assert all(s["audio_path"] is None for s in result.segments)
    words = [len(line.split()) for line in ("Once upon a time.", "Hello there.", "The end.")]
    expected = [round(w * 60_000 / style.words_per_minute) for w in words]
    expected = [expected[0] + style.pause_ms, expected[1] + style.pause_ms, expected[2]]
    assert [s["duration_ms"] for s in result.segments] == expected
    assert not default_storage.exists("narrations/3/7")


def test_local_engine_falls_back_when_the_voice_data_is_missing(local_engine, tmp_path):
    local_engine.NARRATION_ESPEAK_DATA = str(tmp_path / "no-data")
    result = get_engine().narrate(job())
    assert result.engine == "local-text"
    assert all(s["audio_path"] is None and s["duration_ms"] > 0 for s in result.segments)


# --- ElevenLabs client against the loopback server ------------------------------------


def client(server, **kwargs):
    return ElevenLabsClient(api_key=TTS_API_KEY, base_url=server.url, model_id="eleven_multilingual_v2", **kwargs)


def test_elevenlabs_engine_sends_the_style_and_writes_the_audio(elevenlabs):
    result = get_engine().narrate(job("jovial", character_voices={"Tom": "voice-tom"}))
    assert result.engine == "elevenlabs"
    assert len(elevenlabs.requests) == 3
    style = get_style("jovial")
    for request, line in zip(elevenlabs.requests, job().script):
        assert request["headers"]["xi-api-key"] == TTS_API_KEY
        assert request["headers"]["Accept"] == "audio/mpeg"
        assert request["body"]["text"] == line.text
        assert request["body"]["model_id"] == "eleven_multilingual_v2"
        assert request["body"]["voice_settings"] == style.voice.as_dict()
        assert "output_format=mp3_44100_128" in request["query"]
    assert [r["path"] for r in elevenlabs.requests] == [
        "/v1/text-to-speech/voice-narrator",
        "/v1/text-to-speech/voice-tom",
        "/v1/text-to-speech/voice-narrator",
    ]
    for segment in result.segments:
        assert segment["audio_path"] == f"narrations/3/7/{segment['index']}.mp3"
        with default_storage.open(segment["audio_path"]) as fh:
            assert fh.read() == FAKE_MP3
    spoken = len(FAKE_MP3) * 8 * 1000 // 128_000
    assert [s["duration_ms"] for s in result.segments] == [spoken + style.pause_ms, spoken + style.pause_ms, spoken]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_outages_are_transient(tts_server, status):
    tts_server.script = [status]
    with pytest.raises(ProviderTransientError) as info:
        client(tts_server).text_to_speech(voice_id="v", text="Hi", voice_settings={})
    assert str(status) in str(info.value) and f"simulated {status}" in str(info.value)


def test_bad_credentials_are_permanent_and_the_key_is_not_echoed(tts_server):
    bad = ElevenLabsClient(api_key="wrong-key-abcdef", base_url=tts_server.url, model_id="m")
    with pytest.raises(ProviderPermanentError) as info:
        bad.text_to_speech(voice_id="v", text="Hi", voice_settings={})
    assert info.value.code == "401"
    assert "Invalid API key" in str(info.value)
    assert "wrong-key-abcdef" not in str(info.value) and "wrong-key-abcdef" not in repr(bad)


def test_rejected_input_is_permanent(tts_server):
    with pytest.raises(ProviderPermanentError) as info:
        client(tts_server).text_to_speech(voice_id="v", text="", voice_settings={})
    assert info.value.code == "422"


def test_timeouts_and_refused_connections_are_transient(tts_server):
    tts_server.delay_s = 1.0
    with pytest.raises(ProviderTransientError, match="timed out"):
        client(tts_server, timeout=(1.0, 0.1)).text_to_speech(voice_id="v", text="Hi", voice_settings={})
    tts_server.delay_s = 0
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = ElevenLabsClient(api_key=TTS_API_KEY, base_url=f"http://127.0.0.1:{closed_port}", model_id="m")
    with pytest.raises(ProviderTransientError, match="unreachable"):
        refused.text_to_speech(voice_id="v", text="Hi", voice_settings={})


def test_missing_key_is_permanent(settings):
    settings.NARRATION_ENGINE = "elevenlabs"
    settings.ELEVENLABS_API_KEY = ""
    with pytest.raises(ProviderPermanentError):
        get_engine()


def test_local_engine_is_safe_across_threads(local_engine):
    """eSpeak NG has global state; concurrent narrations must not mix their audio."""
    import threading

    def script(n):
        return [ScriptLine(NARRATOR, f"Story number {n} begins here."), ScriptLine("Tom", f"I am in story {n}.")]

    def run(n, out):
        out[n] = get_engine().narrate(
            NarrationJob(narration_id=100 + n, story_id=9, title="T", language="en", style=get_style("jovial"),
                         script=script(n))
        )

    concurrent: dict = {}
    threads = [threading.Thread(target=run, args=(n, concurrent)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    expected: dict = {}
    for n in range(4):  # the same work, one at a time
        run(n, expected)
    for n in range(4):
        # eSpeak NG varies by a few milliseconds between runs; mixed-up audio would be off by seconds.
        for got, want in zip(concurrent[n].segments, expected[n].segments):
            assert abs(got["duration_ms"] - want["duration_ms"]) < 100
            assert got["duration_ms"] > 500
