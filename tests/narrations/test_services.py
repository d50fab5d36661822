import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from common.exceptions import (
    NotFound,
    ProviderPermanentError,
    ProviderTransientError,
    ValidationError,
)
from narrations.models import ConversationStyle, NarrationStatus, StoryNarration
from narrations.selectors import narration_serialize
from narrations.services import (
    narration_generate,
    narration_pregenerate_enqueue,
    narrations_ensure_shared,
    story_create,
)
from narrations.tasks import narration_pregenerate

from ..conftest import wait_until
from .conftest import StoryCharacterFactory, StoryFactory

pytestmark = pytest.mark.postgres
ALL_STYLES = list(ConversationStyle.values)


# --- story_create -------------------------------------------------------------------


@pytest.mark.django_db
def test_story_create_with_characters(user, organization):
    story = story_create(
        owner=user, title="  The Lantern ", content="Once.", characters=[{"name": "Mira"}, {"name": "Tom", "description": "x"}]
    )
    assert story.title == "The Lantern"
    assert story.organization == organization
    assert list(story.characters.values_list("name", "description")) == [("Mira", ""), ("Tom", "x")]


@pytest.mark.django_db
def test_story_create_is_all_or_nothing(user):
    with pytest.raises(ValidationError) as info:
        story_create(owner=user, title="T", content="Once.", characters=[{"name": "Mira"}, {"name": "mira"}])
    assert "characters" in info.value.detail
    with pytest.raises(ValidationError) as info:
        story_create(owner=user, title="", content=" ")
    assert set(info.value.detail) == {"title", "content"}
    assert not user.stories.exists()


# --- narrations_ensure_shared ------------------------------------------------------------


def _ensure_queries(story, styles):
    with CaptureQueriesContext(connection) as ctx:
        rows, new_ids = narrations_ensure_shared(story=story, styles=styles)
    return len(ctx.captured_queries), rows, new_ids


@pytest.mark.django_db
def test_ensure_shared_query_count_does_not_grow_with_styles(story, user, organization):
    other = StoryFactory(owner=user, organization=organization)
    few, rows_few, new_few = _ensure_queries(story, ["respectful", "business"])
    many, rows_many, new_many = _ensure_queries(other, ALL_STYLES)
    assert few == many <= 3
    assert set(rows_few) == {"respectful", "business"} and sorted(new_few) == sorted(r.pk for r in rows_few.values())
    assert set(rows_many) == set(ALL_STYLES) and len(new_many) == 8
    row = rows_many["siblings"]
    assert (row.user, row.segments, row.status, row.narrator_profile) == (None, None, NarrationStatus.PENDING, "default")


@pytest.mark.django_db
def test_ensure_shared_reuses_existing_rows(story):
    first, new_first = narrations_ensure_shared(story=story, styles=["respectful", "business", "jovial"])
    assert len(new_first) == 3
    count, again, new_again = _ensure_queries(story, ["jovial", "respectful", "jovial"])
    assert count == 1 and new_again == []
    assert {k: v.pk for k, v in again.items()} == {"jovial": first["jovial"].pk, "respectful": first["respectful"].pk}
    rows, new_ids = narrations_ensure_shared(story=story, styles=["respectful", "siblings", "playful"])
    assert rows["respectful"].pk == first["respectful"].pk
    assert sorted(new_ids) == sorted([rows["siblings"].pk, rows["playful"].pk])
    assert StoryNarration.objects.filter(story=story).count() == 5
    # Profiles are separate shared rows.
    rows, new_ids = narrations_ensure_shared(story=story, styles=["respectful"], narrator_profile="grandpa")
    assert new_ids == [rows["respectful"].pk] != [first["respectful"].pk]


@pytest.mark.django_db
def test_ensure_shared_rejects_unknown_styles_before_writing(story):
    with pytest.raises(ValidationError):
        narrations_ensure_shared(story=story, styles=["respectful", "sarcastic"])
    assert not StoryNarration.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ensure_shared_is_safe_under_concurrency(story):
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait()
            narrations_ensure_shared(story=story, styles=ALL_STYLES)
        except BaseException as exc:  # noqa: BLE001 -- surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    per_style = StoryNarration.objects.filter(story=story).values("conversation_style").annotate(n=Count("id"))
    assert {row["conversation_style"]: row["n"] for row in per_style} == {code: 1 for code in ALL_STYLES}


# --- narration_generate ------------------------------------------------------------------


@pytest.mark.django_db
def test_generate_with_the_local_engine(story, local_engine):
    rows, _ = narrations_ensure_shared(story=story, styles=["parent_to_child"])
    narration = narration_generate(narration_id=rows["parent_to_child"].pk)
    assert narration.status == NarrationStatus.READY
    assert (narration.engine, narration.attempts, narration.error) == ("local", 1, "")
    assert narration.generated_at and narration.generation_started_at
    speakers = [s["speaker"] for s in narration.segments]
    assert speakers == ["Narrator", "Narrator", "Mira", "Tom", "Narrator"]
    assert story.owner.get_display_name() in narration.segments[0]["text"]
    body = narration_serialize(narration)
    assert body["status"] == "ready" and body["total_duration_ms"] == sum(s["duration_ms"] for s in body["segments"])
    assert body["segments"][2]["audio_url"] == f"/media/narrations/{story.pk}/{narration.pk}/2.wav"
    assert set(body["segments"][0]) == {"index", "speaker", "text", "audio_url", "duration_ms"}


@pytest.mark.django_db
def test_serialize_before_generation_has_no_segments(story):
    rows, _ = narrations_ensure_shared(story=story, styles=["business"])
    body = narration_serialize(rows["business"])
    assert body == {
        "id": rows["business"].pk, "conversation_style": "business", "status": "pending", "segments": [],
        "total_duration_ms": None,
    }


@pytest.mark.django_db
def test_ready_narration_is_returned_without_running_the_engine(story, elevenlabs, django_assert_max_num_queries):
    rows, _ = narrations_ensure_shared(story=story, styles=["jovial"])
    narration_generate(narration_id=rows["jovial"].pk)
    calls = len(elevenlabs.requests)
    with django_assert_max_num_queries(1):
        again = narration_generate(narration_id=rows["jovial"].pk)
    assert again.status == NarrationStatus.READY and len(elevenlabs.requests) == calls
    # force regenerates (and overwrites the same audio names).
    forced = narration_generate(narration_id=rows["jovial"].pk, force=True)
    assert len(elevenlabs.requests) == 2 * calls and forced.attempts == 2
    assert [s["audio_path"] for s in forced.segments] == [s["audio_path"] for s in again.segments]


@pytest.mark.django_db
def test_failure_is_recorded_and_a_retry_succeeds(story, elevenlabs):
    rows, _ = narrations_ensure_shared(story=story, styles=["business"])
    narration_id = rows["business"].pk
    elevenlabs.script = [503]
    with pytest.raises(ProviderTransientError):
        narration_generate(narration_id=narration_id)
    failed = StoryNarration.objects.get(pk=narration_id)
    assert failed.status == NarrationStatus.FAILED and failed.attempts == 1
    assert "503" in failed.error and failed.segments is None and failed.engine == "elevenlabs"
    assert narration_serialize(failed)["segments"] == []

    ready = narration_generate(narration_id=narration_id)
    assert ready.status == NarrationStatus.READY and ready.attempts == 2 and ready.error == ""
    assert StoryNarration.objects.get(pk=narration_id).segments == ready.segments


@pytest.mark.django_db
def test_permanent_failure_is_recorded(story, elevenlabs, settings):
    settings.ELEVENLABS_API_KEY = "not-the-right-key"
    rows, _ = narrations_ensure_shared(story=story, styles=["business"])
    with pytest.raises(ProviderPermanentError):
        narration_generate(narration_id=rows["business"].pk)
    row = StoryNarration.objects.get(pk=rows["business"].pk)
    assert row.status == NarrationStatus.FAILED and "401" in row.error
    assert "not-the-right-key" not in row.error


@pytest.mark.django_db
def test_unknown_narration_is_not_found():
    with pytest.raises(NotFound):
        narration_generate(narration_id=987654)


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_generations_run_the_engine_once(story, elevenlabs):
    rows, _ = narrations_ensure_shared(story=story, styles=["siblings"])
    narration_id = rows["siblings"].pk
    elevenlabs.delay_s = 0.02  # a realistic request, so the callers truly overlap
    barrier = threading.Barrier(10)
    results: list = []
    errors: list[BaseException] = []

    def visit():
        try:
            barrier.wait()
            results.append(narration_generate(narration_id=narration_id))
        except BaseException as exc:  # noqa: BLE001 -- surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=visit) for _ in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    row = StoryNarration.objects.get(pk=narration_id)
    segments = len(row.segments)
    # One engine run: one TTS request per segment, one attempt on the row.
    assert len(elevenlabs.requests) == segments == 5
    assert row.attempts == 1 and row.status == NarrationStatus.READY
    assert len(results) == 10 and all(r.status == NarrationStatus.READY for r in results)
    assert {tuple(s["audio_path"] for s in r.segments) for r in results} == {tuple(s["audio_path"] for s in row.segments)}


# --- pre-generation -----------------------------------------------------------------------


@pytest.mark.django_db
def test_enqueue_waits_for_commit_and_queues_each_id_once(story, django_capture_on_commit_callbacks):
    _, new_ids = narrations_ensure_shared(story=story, styles=["business", "jovial"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        narration_pregenerate_enqueue(narration_ids=[*new_ids, new_ids[0]])
    assert len(callbacks) == 2


@pytest.mark.django_db
def test_pregenerate_task_is_idempotent_and_ignores_vanished_rows(story, local_engine):
    rows, _ = narrations_ensure_shared(story=story, styles=["playful"])
    narration_pregenerate.run(rows["playful"].pk)
    narration_pregenerate.run(rows["playful"].pk)
    row = StoryNarration.objects.get(pk=rows["playful"].pk)
    assert row.status == NarrationStatus.READY and row.attempts == 1
    narration_pregenerate.run(123456789)  # logged and ignored


def test_pregenerate_task_retry_policy():
    assert narration_pregenerate.name == "narrations.pregenerate"
    from config.celery import app

    assert app.amqp.router.route({}, narration_pregenerate.name)["queue"].name == "narration"  # task_routes
    assert narration_pregenerate.autoretry_for == (ProviderTransientError,)
    assert narration_pregenerate.max_retries == 3 and narration_pregenerate.retry_backoff


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_pregeneration_runs_on_a_real_worker(live_worker, user, organization):
    story = StoryFactory(owner=user, organization=organization)
    StoryCharacterFactory(story=story, name="Mira")
    with transaction.atomic():
        _, new_ids = narrations_ensure_shared(story=story, styles=["respectful", "siblings"])
        narration_pregenerate_enqueue(narration_ids=new_ids)
    wait_until(
        lambda: StoryNarration.objects.filter(pk__in=new_ids, status=NarrationStatus.READY).count() == 2,
        timeout=60,
        message="both narrations ready",
    )
    for row in StoryNarration.objects.filter(pk__in=new_ids):
        assert row.attempts == 1 and row.engine in {"local", "local-text"} and row.segments
