"""`make bench`: run every benchmark in bench/ (PostgreSQL + RabbitMQ required).

Each bench/bench_*.py module exposes main(); pass names to run a subset:
    make bench BENCH_ARGS="invitations"
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ensure_database(base_url: str, name: str) -> None:
    """Create the bench database if needed and migrate it (benchmarks never touch the dev database)."""
    import subprocess

    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": f"{base_url}/{name}"})


def main(argv: list[str]) -> int:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("make bench needs PostgreSQL (DATABASE_URL) and RabbitMQ (CELERY_BROKER_URL).", file=sys.stderr)
        return 2
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/troubadour_bench"
    os.environ.setdefault("SECRET_KEY", "bench-secret")
    _ensure_database(base, "troubadour_bench")
    names = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
    wanted = [n for n in names if not argv or n in argv]
    failures = 0
    for name in wanted:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        try:
            module.main()
        except Exception as exc:  # report and go on with the next benchmark
            failures += 1
            print(f"bench {name} failed: {exc!r}", flush=True)
        print(f"=== {name} done in {time.perf_counter() - started:.1f}s ===", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
