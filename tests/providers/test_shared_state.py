"""Circuit breakers and rate limits are shared by every worker: another process (a second
Celery worker) sees the state this one wrote, and the other way round."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from providers.resilience import CircuitBreaker, CircuitPolicy, CircuitState, RateLimiter

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
OTHER_WORKER = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from providers.resilience import CircuitBreaker, CircuitPolicy, RateLimiter
key = sys.argv[1]
breaker = CircuitBreaker(key, CircuitPolicy(threshold=2, cooldown=60, window=120))
breaker.record_failure()
print(breaker.record_failure(), flush=True)
print(RateLimiter(key, per_minute=1, per_day=None).acquire().allowed, flush=True)
sys.stdin.readline()
print(breaker.state(), flush=True)
"""


def test_a_circuit_opened_by_one_process_is_open_for_another_and_closes_for_both():
    key = f"xproc-{uuid.uuid4().hex}"
    other = subprocess.Popen([sys.executable, "-c", OTHER_WORKER, key], cwd=ROOT, env={**os.environ, "SECRET_KEY": "test-secret"}, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert other.stdout.readline().strip() == CircuitState.OPEN, other.stderr.read() if other.poll() is not None else ""
        assert other.stdout.readline().strip() == "True"  # the other process took the minute's only slot

        breaker = CircuitBreaker(key, CircuitPolicy(threshold=2, cooldown=60, window=120))
        assert breaker.state() == CircuitState.OPEN and breaker.allow() is False
        assert RateLimiter(key, per_minute=1, per_day=None).acquire().allowed is False

        breaker.record_success()  # e.g. a passing health check here closes it there too
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == CircuitState.CLOSED
    finally:
        other.kill()
        other.wait(timeout=10)
        CircuitBreaker(key, CircuitPolicy(threshold=2, cooldown=60, window=120)).reset()
