"""Benchmark: POST 500 invitations through the API, 5 times, on PostgreSQL and RabbitMQ.

    DEBUG=true .venv/bin/python bench/bench_invitations.py      (or: make bench BENCH_ARGS=invitations)

The request is measured as production runs it: tasks are NOT eager. The request validates the
batch, checks pending invitees, bulk-inserts the invitations and their history, and after commit
emits the one `story.invitation` event (intake, routing, bulk inserts) and publishes the delivery
batches to the broker. A real `celery worker` process, on the same bench database and broker,
delivers them (500 emails to Django's locmem backend), as workers do in production; the bench
waits for it between runs so the next request does not compete with it for the CPU, and reports
how long the worker took as a separate figure.

Uses its own database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/troubadour_bench),
created and migrated if needed, never the development one, and the broker of BENCH_BROKER_URL
(default CELERY_BROKER_URL; it must be AMQP).
"""
from __future__ import annotations

import atexit
import os
import signal
import statistics
import subprocess
import sys
import tempfile
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
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL") or os.environ.get("CELERY_BROKER_URL", "")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
STYLES = ("respectful", "business", "jovial")
DELIVERY_TIMEOUT_S = 300


def _ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_dsn = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _process_env(media_root: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=BENCH_DATABASE_URL,
        CELERY_BROKER_URL=BENCH_BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="false",  # production: the request stops at publishing
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-secret",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        MEDIA_ROOT=media_root,
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def _setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    try:
        setup_test_environment()  # "testserver" allowed for the test client
    except RuntimeError:  # another benchmark in this process already did it
        pass


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    from common.queues import ALL_QUEUES

    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ALL_QUEUES, "-c", "2",
        "-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    # Wait until it consumes: a ping through the broker is answered only by a ready worker.
    from config.celery import app

    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if app.control.ping(destination=[f"bench-{os.getpid()}@{os.uname().nodename}"], timeout=1.0):
                return proc
    except BaseException:
        _stop_worker(proc)  # never leave a worker consuming from the broker behind
        raise
    _stop_worker(proc)
    raise RuntimeError(f"celery worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def _stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_delivered(story_id: int, expected: int) -> None:
    """Until the worker has sent `expected` invitation emails of the story (it runs in its own process)."""
    from django.db import connection

    from invitations.models import StoryInvitation
    from notifications.enums import DeliveryStatus
    from notifications.models import NotificationDelivery

    notifications = StoryInvitation.objects.filter(story_id=story_id).values("notification_id")
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        sent = NotificationDelivery.objects.filter(
            notification_id__in=notifications, channel="EMAIL", status=DeliveryStatus.SENT
        ).count()
        if sent >= expected:
            return
        connection.close()  # a fresh snapshot each poll
        time.sleep(0.05)
    raise RuntimeError(f"the worker sent {sent} of {expected} emails in {DELIVERY_TIMEOUT_S} s")


def _wait_narrations_ready(story_id: int) -> None:
    from narrations.models import NarrationStatus, StoryNarration

    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while StoryNarration.objects.filter(story_id=story_id).exclude(status=NarrationStatus.READY).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("narration pre-generation did not finish")
        time.sleep(0.1)


def _items(tag: str, n: int) -> list[dict]:
    return [{"email": f"{tag}-{i}@bench.example", "conversation_style": STYLES[i % len(STYLES)]} for i in range(n)]


def main() -> None:
    if not BENCH_BROKER_URL.startswith("amqp"):
        raise SystemExit("bench_invitations needs RabbitMQ: set CELERY_BROKER_URL (or BENCH_BROKER_URL) to an amqp:// URL.")
    _ensure_database(BENCH_DATABASE_URL)
    media_root = tempfile.mkdtemp(prefix="troubadour-bench-media-")
    env = _process_env(media_root)
    _setup_django(env)

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Membership, MembershipRole, Organization, User
    from narrations.services import story_create

    assert not settings.CELERY_TASK_ALWAYS_EAGER
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
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

    log_path = Path(media_root) / "worker.log"
    worker = _start_worker(env, log_path)
    atexit.register(_stop_worker, worker)  # also on Ctrl-C or a crash outside the try below
    try:
        # Warm-up: creates the three narration rows (pre-generated by the worker) and warms caches.
        warm = client.post(url, {"invitations": _items(f"warm-{tag}", len(STYLES))}, content_type="application/json")
        assert warm.status_code == 201, warm.content
        _wait_delivered(story.pk, len(STYLES))
        _wait_narrations_ready(story.pk)

        timings: list[float] = []
        worker_timings: list[float] = []
        query_counts: list[int] = []
        delivered = len(STYLES)
        for run in range(RUNS):
            payload = {"message": "Benchmark", "invitations": _items(f"{tag}-r{run}", BATCH)}
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.post(url, payload, content_type="application/json")
                elapsed = time.perf_counter() - started
            timings.append(elapsed * 1000)
            assert response.status_code == 201, response.content[:500]
            body = response.json()
            assert len(body["invitations"]) == BATCH
            assert all(not n["created"] for n in body["narrations"])  # the rows already existed
            query_counts.append(len(queries))
            delivered += BATCH
            _wait_delivered(story.pk, delivered)
            worker_timings.append((time.perf_counter() - started) * 1000)
    finally:
        _stop_worker(worker)

    print(f"POST {BATCH} invitations × {RUNS} (PostgreSQL {connection.settings_dict['NAME']}, "
          f"broker {urlparse(BENCH_BROKER_URL).hostname}, tasks not eager):")
    print(f"  request: median {statistics.median(timings):.1f} ms · min {min(timings):.1f} ms · "
          f"max {max(timings):.1f} ms")
    print(f"  runs: {', '.join(f'{t:.1f}' for t in timings)} ms")
    print(f"  queries per request: {', '.join(map(str, sorted(set(query_counts))))} "
          "(session auth, validation, inserts, the story.invitation event; delivery is queued)")
    print(f"  until the worker had sent all {BATCH} emails: median {statistics.median(worker_timings):.1f} ms "
          "from the start of the request")


if __name__ == "__main__":
    main()
