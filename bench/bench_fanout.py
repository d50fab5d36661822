"""Benchmark: one event fanned out to 10,000 recipients on IN_APP + EMAIL.

    .venv/bin/python bench/bench_fanout.py        (or `make bench`)

PostgreSQL (its own database, troubadour_bench, created and migrated if needed) and RabbitMQ
(CELERY_BROKER_URL) are required; Redis is used when REDIS_URL is set. Two Celery worker
processes (prefork, one child each) consume the delivery queue; email goes to Django's
in-memory backend inside the workers, so the figures measure the platform, not an SMTP server.

Prints:
- recipients/s until the notification and delivery rows are committed (event_emit),
- deliveries/s from the trigger until every delivery is SENT/DELIVERED,
- p50/p95 latency from trigger to sent (delivery.sent_at - notification.created_at).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_BENCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/troubadour_bench"
RECIPIENTS = int(os.environ.get("BENCH_FANOUT_RECIPIENTS", "10000"))
WORKERS = int(os.environ.get("BENCH_FANOUT_WORKERS", "2"))
TIMEOUT = float(os.environ.get("BENCH_FANOUT_TIMEOUT", "900"))
PREFIX = "bench-fanout-"


def _bench_database_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    current = os.environ.get("DATABASE_URL", "")
    if explicit:
        return explicit
    # Never the development database: only an URL already pointing at the bench one is kept.
    return current if current.rstrip("/").endswith("/troubadour_bench") else DEFAULT_BENCH_DATABASE_URL


def _ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_dsn = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from config.celery import app

    # Another benchmark in this process may have made tasks eager: this one needs real workers.
    app.conf.task_always_eager = False


def _worker_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.update(
        DATABASE_URL=database_url,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    env.setdefault("SECRET_KEY", "bench-only-secret")
    return env


def _start_workers(database_url: str, log_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    from common.queues import Queue

    workers = []
    for index in range(WORKERS):
        log_path = log_dir / f"bench-fanout-worker-{os.getpid()}-{index}.log"  # concurrent runs keep their own logs
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", f"{Queue.DELIVERY.value},{Queue.DELIVERY_BULK.value}", "-c", "1",
            "-P", "prefork", "-n", f"bench{index}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "INFO",
        ]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_worker_env(database_url), stdout=log_path.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        workers.append((proc, log_path))
    deadline = time.monotonic() + 90
    for proc, log_path in workers:
        while " ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop_workers(workers)
                raise RuntimeError(f"worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
    return workers


def _stop_workers(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for proc, _ in workers:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc, _ in workers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _cleanup_previous_runs() -> None:
    from accounts.models import Organization, User

    Organization.objects.filter(slug__startswith=PREFIX).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


def _create_recipients(count: int):
    from django.contrib.auth.hashers import make_password

    from accounts.models import Membership, MembershipRole, Organization, User

    tag = uuid.uuid4().hex[:8]
    organization = Organization.objects.create(name="Fan-out benchmark", slug=f"{PREFIX}{tag}")
    password = make_password(None)
    users = User.objects.bulk_create(
        [
            User(username=f"{PREFIX}{tag}-{i}", email=f"{PREFIX}{tag}-{i}@bench.example", display_name=f"Reader {i}",
                 password=password)
            for i in range(count)
        ],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [Membership(user=u, organization=organization, role=MembershipRole.MEMBER) for u in users], batch_size=2000
    )
    return organization, users


def _purge_delivery_queue() -> None:
    from kombu import Exchange, Queue

    from config.celery import app

    with app.connection_for_write() as conn:
        queue = Queue("delivery", Exchange("delivery", type="direct"), routing_key="delivery")(conn.default_channel)
        queue.declare()
        queue.purge()


def _latency_percentiles(event_id: str) -> tuple[float, float, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM d.sent_at - n.created_at)),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM d.sent_at - n.created_at)),
                   MAX(EXTRACT(EPOCH FROM d.sent_at - n.created_at))
            FROM notifications_notificationdelivery d
            JOIN notifications_notification n ON n.id = d.notification_id
            WHERE n.event_id = %s AND d.sent_at IS NOT NULL
            """,
            [event_id],
        )
        p50, p95, worst = cursor.fetchone()
    return float(p50 or 0), float(p95 or 0), float(worst or 0)


def main() -> dict[str, float]:
    database_url = _bench_database_url()
    _ensure_database(database_url)
    _setup_django(database_url)
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("amqp"):
        raise RuntimeError("bench_fanout needs RabbitMQ: set CELERY_BROKER_URL=amqp://...")

    from django.conf import settings
    from django.db import transaction

    from notifications.engine.intake import event_emit
    from notifications.enums import DELIVERY_SUCCESS_STATUSES, Channel
    from notifications.models import NotificationDelivery

    print(f"fan-out: {RECIPIENTS} recipients x IN_APP+EMAIL, {WORKERS} worker processes, "
          f"redis={'on' if settings.REDIS_URL else 'off'}", flush=True)
    _cleanup_previous_runs()
    organization, users = _create_recipients(RECIPIENTS)
    _purge_delivery_queue()
    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = _start_workers(database_url, log_dir)
    try:
        started = time.perf_counter()
        with transaction.atomic():
            result = event_emit(
                organization=organization, type="task.assigned", recipient_ids=[u.pk for u in users],
                channels=[Channel.IN_APP, Channel.EMAIL], actor={"type": "system", "id": "bench"},
                resource={"type": "task", "id": "BENCH-1", "name": "Benchmark task"},
                data={"taskTitle": "Benchmark task", "projectName": "Fan-out"},
            )
        committed = time.perf_counter()
        expected = NotificationDelivery.objects.filter(notification__event_id=result.event_id).count()
        print(f"rows committed: {len(result.notifications)} notifications, {expected} deliveries "
              f"in {committed - started:.2f}s -> {len(result.notifications) / (committed - started):,.0f} recipients/s",
              flush=True)

        done = 0
        while True:
            done = NotificationDelivery.objects.filter(
                notification__event_id=result.event_id, status__in=list(DELIVERY_SUCCESS_STATUSES)
            ).count()
            if done >= expected:
                break
            if time.perf_counter() - started > TIMEOUT:
                raise RuntimeError(f"only {done}/{expected} deliveries sent after {TIMEOUT:.0f}s")
            time.sleep(0.25)
        finished = time.perf_counter()
        p50, p95, worst = _latency_percentiles(result.event_id)
        figures = {
            "recipients": float(len(result.notifications)),
            "deliveries": float(expected),
            "emit_seconds": committed - started,
            "recipients_per_second": len(result.notifications) / (committed - started),
            "all_sent_seconds": finished - started,
            "deliveries_per_second": expected / (finished - started),
            "p50_seconds": p50,
            "p95_seconds": p95,
            "max_seconds": worst,
        }
        print(f"all {expected} deliveries sent {finished - started:.2f}s after the trigger "
              f"-> {figures['deliveries_per_second']:,.0f} deliveries/s", flush=True)
        print(f"trigger -> sent latency: p50 {p50:.2f}s, p95 {p95:.2f}s, max {worst:.2f}s", flush=True)
        for _proc, log_path in workers:
            log_path.unlink(missing_ok=True)  # kept only when the run failed
        return figures
    finally:
        _stop_workers(workers)


if __name__ == "__main__":
    main()
