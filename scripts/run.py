"""`make run`: the whole platform on embedded defaults, in one terminal.

Migrates a SQLite database, loads demo data, then starts the web server, a Celery worker,
Celery beat and the AMQP event consumer on a broker that needs no server (kombu's
filesystem transport). Ctrl-C stops every process.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> int:
    port = os.environ.get("PORT", "8000")
    env = dict(os.environ)
    env.setdefault("TROUBADOUR_EMBEDDED", "1")
    env.setdefault("DEBUG", "true")
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # /metrics adds up web, worker and consumer counters from here; a fresh start begins at zero.
    var_dir = Path(env.get("TROUBADOUR_VAR_DIR", ROOT / "var"))
    metrics_dir = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir / "metrics")))
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)

    def manage(*args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)

    print("Preparing the database…", flush=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("createcachetable")
    manage("seed_demo")

    commands = {
        # The same ASGI app as `make serve`, in one uvicorn process (the in-memory channel layer
        # is per process); it consumes the in-app exchange on the embedded broker.
        "web": [PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", port,
                "--lifespan", "on", "--ws-ping-interval", "20"],
        "worker": [PY, "-m", "celery", "-A", "config", "worker", "-c", "2", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle"],
        "beat": [PY, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
    }
    if (ROOT / "notifications" / "management" / "commands" / "consume_events.py").exists():
        commands["events"] = [PY, "manage.py", "consume_events"]
    if (ROOT / "notifications" / "management" / "commands" / "consume_commands.py").exists():
        commands["commands"] = [PY, "manage.py", "consume_commands"]

    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in commands.items():
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nStopping…", flush=True)
        # SIGTERM to each main process only: a Celery worker then shuts its own pool down
        # warmly; the whole group is killed only if it is still there after the deadline.
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    time.sleep(2)
    print(
        "\n"
        "  Troubadour is running (web, worker, beat" + (", event consumer" if "events" in procs else "") + ").\n"
        f"  Open   http://127.0.0.1:{port}/\n"
        "  Login  demo / troubadour-demo   (staff console: /admin/)\n"
        "  Email  written to var/outbox/   Ctrl-C stops everything.\n",
        flush=True,
    )
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None and not stopping:
                print(f"{name} exited with {proc.returncode}; stopping the rest.", flush=True)
                stop()
                return 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
