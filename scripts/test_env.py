"""Print `export` lines pointing the suite at PostgreSQL, RabbitMQ and Redis when reachable.

Explicit DATABASE_URL / CELERY_BROKER_URL / REDIS_URL win; otherwise the default local ports
are probed. With CI set, a missing service is an error, never a silent skip.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys

SERVICES = [
    ("DATABASE_URL", 5432, "postgres://postgres@127.0.0.1:5432/troubadour"),
    ("CELERY_BROKER_URL", 5672, "amqp://guest:guest@127.0.0.1:5672//"),
    ("REDIS_URL", 6379, "redis://127.0.0.1:6379/0"),
]


def reachable(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    missing = []
    for name, port, default in SERVICES:
        if os.environ.get(name):
            print(f"export {name}={shlex.quote(os.environ[name])}")
        elif reachable(port):
            print(f"export {name}={shlex.quote(default)}")
        else:
            missing.append(name)
    if missing:
        message = f"services not reachable: {', '.join(missing)}"
        if ci:
            print(f"echo {shlex.quote('ERROR: ' + message)} >&2; exit 1")
            return 0
        print(f"echo {shlex.quote('note: ' + message + ' (tests that need them will skip)')} >&2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
