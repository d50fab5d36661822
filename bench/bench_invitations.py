"""Benchmark: POST 500 invitations through the API, 5 times, on PostgreSQL.

    DEBUG=true .venv/bin/python bench/bench_invitations.py

Uses its own database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/troubadour_bench),
created and migrated if needed, never the development one. Each run invites fresh addresses
in three styles whose narration rows already exist, so the timing covers validation, the
pending-invitee check, the bulk inserts and the after-commit notification step: one
`story.invitation` event for the batch (intake, routing, bulk inserts) and, tasks being eager
here, its delivery in the same request (rendering and 500 emails to the locmem backend) — work a
worker does in production.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_BENCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/troubadour_bench"


def _bench_database_url() -> str:
    # `make bench` (scripts/bench.py) already points DATABASE_URL at troubadour_bench; standalone,
    # any other DATABASE_URL (a development database) is ignored on purpose.
    explicit = os.environ.get("BENCH_DATABASE_URL")
    current = os.environ.get("DATABASE_URL", "")
    if explicit:
        return explicit
    return current if current.rstrip("/").endswith("/troubadour_bench") else DEFAULT_BENCH_DATABASE_URL


BENCH_DATABASE_URL = _bench_database_url()
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
STYLES = ("respectful", "business", "jovial")


def _ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_dsn = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Narration rows are created once, in the warm-up, and notification deliveries run inline:
    # nothing is queued to a broker.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    try:
        setup_test_environment()  # locmem email, "testserver" allowed
    except RuntimeError:  # another benchmark in this process already did it
        pass


def _items(tag: str, n: int) -> list[dict]:
    return [{"email": f"{tag}-{i}@bench.example", "conversation_style": STYLES[i % len(STYLES)]} for i in range(n)]


def main() -> None:
    _ensure_database(BENCH_DATABASE_URL)
    _setup_django()

    from django.core import mail
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Membership, MembershipRole, Organization, User
    from narrations.services import story_create

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:8]
    user = User.objects.create_user(username=f"bench-{tag}", email=f"bench-{tag}@bench.example", password=None)
    organization = Organization.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    Membership.objects.create(user=user, organization=organization, role=MembershipRole.OWNER)
    story = story_create(
        owner=user,
        title="Benchmark story",
        content='The tide came in.\n\nAnna: "Hold the rope."\n\nThey held it until morning.',
        characters=[{"name": "Anna"}],
        organization=organization,
    )
    client = Client()
    client.force_login(user)
    url = f"/api/v1/stories/{story.pk}/invitations/"

    warm = client.post(url, {"invitations": _items(f"warm-{tag}", len(STYLES))}, content_type="application/json")
    assert warm.status_code == 201, warm.content

    from celery.signals import task_postrun, task_prerun

    # Time and queries of the delivery tasks run inline, to tell the request's own share from
    # the worker's (in production the request stops at queueing them).
    delivery = {"started": 0.0, "ms": 0.0, "queries_at_start": 0, "queries": 0}

    def _delivery_started(task=None, **_kwargs) -> None:
        if task is not None and task.name == "notifications.deliver_batch":
            delivery["started"] = time.perf_counter()
            delivery["queries_at_start"] = len(connection.queries)

    def _delivery_finished(task=None, **_kwargs) -> None:
        if task is not None and task.name == "notifications.deliver_batch":
            delivery["ms"] += (time.perf_counter() - delivery["started"]) * 1000
            delivery["queries"] += len(connection.queries) - delivery["queries_at_start"]

    task_prerun.connect(_delivery_started, weak=False)
    task_postrun.connect(_delivery_finished, weak=False)

    timings: list[float] = []
    delivery_timings: list[float] = []
    query_count = delivery_queries = 0
    for run in range(RUNS):
        mail.outbox = []
        delivery.update(ms=0.0, queries=0)
        payload = {"message": "Benchmark", "invitations": _items(f"{tag}-r{run}", BATCH)}
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.post(url, payload, content_type="application/json")
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.content[:500]
        assert len(response.json()["invitations"]) == BATCH
        assert len(mail.outbox) == BATCH
        assert len({m.body for m in mail.outbox}) == BATCH  # each invitee their own link
        query_count = len(queries)
        delivery_timings.append(delivery["ms"])
        delivery_queries = delivery["queries"]

    print(f"POST {BATCH} invitations × {RUNS} (PostgreSQL, {connection.settings_dict['NAME']}):")
    print(f"  median {statistics.median(timings):.1f} ms · min {min(timings):.1f} ms · max {max(timings):.1f} ms")
    print(f"  runs: {', '.join(f'{t:.1f}' for t in timings)} ms")
    print(f"  queries per request: {query_count} (session auth, the notification event and its delivery included)")
    own = [t - d for t, d in zip(timings, delivery_timings, strict=True)]
    print(f"  of which delivery (a worker's job in production): median {statistics.median(delivery_timings):.1f} ms, "
          f"{delivery_queries} queries")
    print(f"  the request without delivery: median {statistics.median(own):.1f} ms, {query_count - delivery_queries} queries")


if __name__ == "__main__":
    main()
