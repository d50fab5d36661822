"""Benchmark: set-based fan-out, side by side with django-notifications-hq, and audiences.

    .venv/bin/python bench/bench_audience.py      (or `make bench BENCH_ARGS=audience`)

Runs in a process of its own against its own database (BENCH_AUDIENCE_DATABASE_URL, default
troubadour_bench_audience on the PostgreSQL of DATABASE_URL), the broker vhost of
CELERY_BROKER_URL and the Redis database of REDIS_URL. Three scenarios:

1. **10,000 in-app recipients, side by side.** One REST event (`POST /api/v1/events/` with an
   API key, through Django's request stack in this process) to 10,000 members on IN_APP, until
   its notifications and in-app deliveries are committed; then django-notifications-hq 1.8.3's
   `notify.send` to the same number of users on the same PostgreSQL (database
   troubadour_bench_notifhq), in a virtualenv the bench creates (var/bench-notifhq-venv:
   Django 4.2, which that package supports). Recipients/s of each and the ratio.
2. **One event to one user**: BENCH_ONE_EVENTS REST events, each timed from the trigger to the
   in-app row being visible (SENT) from another database connection; p50/p95.
3. **100,000-member audience** (BENCH_AUDIENCE_MEMBERS): `audience: {"organization": true}` on
   IN_APP, run in chunks by two worker processes; total time, rows/s (notifications +
   deliveries), and meanwhile organization B's single notifications (IN_APP + EMAIL, one every
   BENCH_B_INTERVAL s): trigger → in-app row visible and trigger → email SENT.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPIENTS = int(os.environ.get("BENCH_FANOUT_INAPP_RECIPIENTS", "10000"))
ONE_EVENTS = int(os.environ.get("BENCH_ONE_EVENTS", "200"))
AUDIENCE = int(os.environ.get("BENCH_AUDIENCE_MEMBERS", "100000"))
B_INTERVAL = float(os.environ.get("BENCH_B_INTERVAL", "0.5"))
WORKERS = int(os.environ.get("BENCH_AUDIENCE_WORKERS", "2"))
NOTIFHQ_VERSION = "1.8.3"
PREFIX = "bench-aud-"


def _database_url() -> str:
    explicit = os.environ.get("BENCH_AUDIENCE_DATABASE_URL")
    if explicit:
        return explicit
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x").rsplit("/", 1)[0]
    return f"{base}/troubadour_bench_audience"


def _ensure_database(url: str, *, fresh: bool = False) -> None:
    """Create the database (dropped first when `fresh`: every run starts from an empty one)."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


# --- django-notifications-hq in its own virtualenv ----------------------------------------------------

NOTIFHQ_SCRIPT = r'''
import json, os, sys, time
import django
from django.conf import settings
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["HQ_DB"],
                           "USER": os.environ["HQ_USER"], "HOST": os.environ["HQ_HOST"], "PORT": os.environ["HQ_PORT"]}},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "notifications"],
    USE_TZ=True, SECRET_KEY="bench", DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth.models import User
from django.db import connection, transaction
from notifications.models import Notification
from notifications.signals import notify
n = int(sys.argv[1])
users = User.objects.bulk_create([User(username=f"u{i}", email=f"u{i}@bench.example") for i in range(n)], batch_size=5000)
actor = User.objects.create(username="actor")
recipients = User.objects.exclude(pk=actor.pk)
started = time.perf_counter()
with transaction.atomic():
    notify.send(actor, recipient=recipients, verb="assigned you a task", description="Benchmark task")
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "rows": Notification.objects.count(), "django": django.get_version()}))
'''


def _notifhq_venv() -> Path:
    venv = ROOT / "var" / "bench-notifhq-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import notifications, django; print(django.get_version())"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"django-notifications-hq=={NOTIFHQ_VERSION}", "Django>=4.2,<4.3", "psycopg[binary]>=3.1"],
                       check=True)
    return python


def notifhq_rate(count: int) -> dict[str, float]:
    python = _notifhq_venv()
    base = urlparse(_database_url())
    _ensure_database(base._replace(path="/troubadour_bench_notifhq").geturl(), fresh=True)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(NOTIFHQ_SCRIPT)
    env = {**os.environ, "HQ_DB": "troubadour_bench_notifhq", "HQ_USER": base.username or "postgres",
           "HQ_HOST": base.hostname or "127.0.0.1", "HQ_PORT": str(base.port or 5432)}
    out = subprocess.run([str(python), handle.name, str(count)], capture_output=True, text=True, env=env, cwd="/tmp")
    os.unlink(handle.name)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "rows": result["rows"], "per_second": result["rows"] / result["seconds"]}


# --- this platform -----------------------------------------------------------------------------------------


def _setup() -> None:
    os.environ["DATABASE_URL"] = _database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from config.celery import app

    app.conf.task_always_eager = False


def _organization(tag: str, members: int):
    """An organization with `members` members, created set-based (engine.setwrite)."""
    from django.db import transaction

    from accounts.models import Membership, Organization, User
    from notifications.engine import setwrite

    organization = Organization.objects.create(name=f"Bench {tag}", slug=f"{PREFIX}{tag}")
    with transaction.atomic():
        ids = setwrite.sequence_ids(User, members)
        setwrite.rows_insert(User, per_row={
            "id": ids, "username": [f"{PREFIX}{tag}-{i}" for i in range(members)],
            "email": [f"{PREFIX}{tag}-{i}@bench.example" for i in range(members)],
        }, constants={"password": "!", "display_name": "Reader", "is_active": True})
        setwrite.rows_insert(Membership, per_row={"user_id": ids},
                             constants={"organization_id": organization.pk, "role": "member"})
    return organization, ids


def _api_client(organization):
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    _, raw = api_key_create(organization=organization, name="bench")
    client = APIClient(HTTP_HOST="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def _event_type() -> str:
    from notifications.models import EventType

    EventType.objects.filter(key="task.assigned").update(is_active=True)
    return "task.assigned"


def inapp_rate(count: int) -> dict[str, float]:
    from notifications.enums import Channel
    from notifications.models import NotificationDelivery

    organization, ids = _organization("inapp", count)
    client = _api_client(organization)
    body = {"type": _event_type(), "recipient_ids": [str(pk) for pk in ids], "channels": [Channel.IN_APP],
            "resource": {"type": "task", "id": "B-1", "name": "Benchmark task"}, "data": {"taskTitle": "Benchmark task"}}
    # Warm-up: an event to one member, then one to 200 (a fan-out above the inline publish limit),
    # so that the measured request does not pay what a web process pays once (importing the task
    # modules on its first task publish, first use of each query).
    for warm_count in (1, 200):
        client.post("/api/v1/events/", {**body, "recipient_ids": [str(pk) for pk in ids[:warm_count]]}, format="json")
    started = time.perf_counter()
    answer = client.post("/api/v1/events/", body, format="json")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 202, answer.content[:500]
    event_id = answer.json()["event_id"]
    sent = NotificationDelivery.objects.filter(notification__event_id=event_id, channel=Channel.IN_APP,
                                               status="SENT").count()
    assert sent == count, (sent, count)
    return {"seconds": elapsed, "rows": count, "per_second": count / elapsed}


def _visible_after(event_id: str, started: float, *, channel: str, statuses: tuple[str, ...], timeout: float = 120):
    """Seconds from `started` until the event's delivery on `channel` reaches `statuses`, seen from a
    connection of its own (what another process — the inbox API, a socket — would read)."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    global _probe
    if "_probe" not in globals() or _probe.closed:
        _probe = psycopg.connect(dbname=settings["NAME"], user=settings["USER"] or "postgres",
                                 host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432, autocommit=True)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        row = _probe.execute(
            "SELECT 1 FROM notifications_notificationdelivery d JOIN notifications_notification n ON n.id = d.notification_id"
            " WHERE n.event_id = %s AND d.channel = %s AND d.status = ANY(%s)", [event_id, channel, list(statuses)],
        ).fetchone()
        if row:
            return time.perf_counter() - started
        time.sleep(0.001)
    return float("nan")


def one_user_latency(events: int) -> dict[str, float]:
    from notifications.enums import Channel

    organization, ids = _organization("one", 1)
    client = _api_client(organization)
    latencies, answers = [], []
    for i in range(events):
        started = time.perf_counter()
        answer = client.post("/api/v1/events/", {"type": _event_type(), "recipient_ids": [str(ids[0])],
                                                 "channels": [Channel.IN_APP], "data": {"taskTitle": f"one {i}"}},
                             format="json")
        answers.append(time.perf_counter() - started)
        latencies.append(_visible_after(answer.json()["event_id"], started, channel=Channel.IN_APP, statuses=("SENT",)))
    return {"answer_p50_ms": _pct(answers, 50) * 1000, "visible_p50_ms": _pct(latencies, 50) * 1000,
            "visible_p95_ms": _pct(latencies, 95) * 1000}


def _pct(values: list[float], pct: int) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]


def _start_workers(log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    procs = []
    for index in range(WORKERS):
        log = log_dir / f"bench-audience-worker-{os.getpid()}-{index}.log"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,events,delivery", "-c", "1", "-P", "prefork",
             "-n", f"aud{index}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", "INFO"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 90
        while " ready." not in log.read_text(errors="replace"):
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    import signal

    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def audience_run(members: int) -> dict[str, float]:
    from django.conf import settings

    from batchjobs.models import BatchJob
    from notifications.enums import Channel
    from notifications.models import NotificationDelivery

    a, _ = _organization("a", members)
    b, b_ids = _organization("b", 1)
    client_a, client_b = _api_client(a), _api_client(b)
    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    from config.celery import app

    app.control.purge()
    workers = _start_workers(log_dir)
    try:
        started = time.perf_counter()
        answer = client_a.post("/api/v1/events/", {"type": _event_type(), "audience": {"organization": True},
                                                   "channels": [Channel.IN_APP], "data": {"taskTitle": "Everyone"}},
                               format="json")
        assert answer.status_code == 202, answer.content[:500]
        job_id, event_id = answer.json()["batch_job_id"], answer.json()["event_id"]
        b_visible, b_sent = [], []
        while True:
            state = BatchJob.objects.get(pk=job_id).metadata["fanout"]
            if state["done"]:
                break
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"fan-out not done after 30 min: {state}")
            t0 = time.perf_counter()
            ans = client_b.post("/api/v1/events/", {"type": _event_type(), "recipient_ids": [str(b_ids[0])],
                                                    "channels": [Channel.IN_APP, Channel.EMAIL]}, format="json")
            b_event = ans.json()["event_id"]
            b_visible.append(_visible_after(b_event, t0, channel=Channel.IN_APP, statuses=("SENT",)))
            b_sent.append(_visible_after(b_event, t0, channel=Channel.EMAIL, statuses=("SENT", "DELIVERED"), timeout=300))
            time.sleep(max(0.0, B_INTERVAL - (time.perf_counter() - t0)))
        total = time.perf_counter() - started
        written = NotificationDelivery.objects.filter(notification__event_id=event_id).count()
        return {"members": members, "total_seconds": total, "rows": written * 2, "rows_per_second": written * 2 / total,
                "recipients_per_second": written / total, "b_samples": len(b_visible),
                "b_inapp_visible_p95_ms": _pct(b_visible, 95) * 1000, "b_email_sent_p50_s": _pct(b_sent, 50),
                "b_email_sent_p95_s": _pct(b_sent, 95), "b_email_sent_max_s": max(b_sent) if b_sent else float("nan")}
    finally:
        _stop(workers)


def run() -> dict[str, dict[str, float]]:
    _setup()
    from django.conf import settings

    print(f"database {settings.DATABASES['default']['NAME']}, broker {settings.CELERY_BROKER_URL.rsplit('@', 1)[-1]}, "
          f"redis {'on' if settings.REDIS_URL else 'off'}", flush=True)
    figures: dict[str, dict[str, float]] = {}
    ours = inapp_rate(RECIPIENTS)
    theirs = notifhq_rate(RECIPIENTS)
    figures["inapp_10k"] = {"ours_per_second": ours["per_second"], "ours_seconds": ours["seconds"],
                            "notifhq_per_second": theirs["per_second"], "notifhq_seconds": theirs["seconds"],
                            "ratio": ours["per_second"] / theirs["per_second"]}
    print(f"{RECIPIENTS:,} in-app recipients: Troubadour {ours['seconds']:.2f}s ({ours['per_second']:,.0f}/s) | "
          f"django-notifications-hq {NOTIFHQ_VERSION} notify.send {theirs['seconds']:.2f}s "
          f"({theirs['per_second']:,.0f}/s) -> {figures['inapp_10k']['ratio']:.1f}x (target >= 10x)", flush=True)
    one = one_user_latency(ONE_EVENTS)
    figures["one_user"] = one
    print(f"one event to one user ({ONE_EVENTS} events): answer p50 {one['answer_p50_ms']:.1f} ms; trigger -> in-app row "
          f"visible p50 {one['visible_p50_ms']:.1f} ms, p95 {one['visible_p95_ms']:.1f} ms (target p95 < 50 ms)", flush=True)
    if AUDIENCE:
        aud = audience_run(AUDIENCE)
        figures["audience"] = aud
        print(f"audience of {AUDIENCE:,} (in-app, {WORKERS} workers): {aud['total_seconds']:.1f}s total, "
              f"{aud['recipients_per_second']:,.0f} recipients/s, {aud['rows_per_second']:,.0f} rows/s "
              f"(notifications + deliveries)", flush=True)
        print(f"organization B meanwhile ({aud['b_samples']} single events, IN_APP + EMAIL): in-app visible p95 "
              f"{aud['b_inapp_visible_p95_ms']:.1f} ms; email SENT p50 {aud['b_email_sent_p50_s']:.2f}s, "
              f"p95 {aud['b_email_sent_p95_s']:.2f}s, max {aud['b_email_sent_max_s']:.2f}s", flush=True)
    return figures


def main() -> dict:
    """Run in a process of its own (its own database, whatever `make bench` configured before)."""
    env = {**os.environ, "BENCH_AUDIENCE_DATABASE_URL": _database_url()}
    _ensure_database(env["BENCH_AUDIENCE_DATABASE_URL"], fresh=True)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run"], cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"bench_audience exited with {out.returncode}")
    return {}


if __name__ == "__main__":
    if "--run" in sys.argv:
        result = run()
        print(json.dumps(result, default=float), flush=True)
    else:
        main()
