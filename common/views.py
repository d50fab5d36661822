"""Liveness and readiness probes."""
from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse


def live(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_cache() -> str:
    cache.set("health:ping", "1", 5)
    if cache.get("health:ping") != "1":
        raise RuntimeError("cache did not return the value written")
    return "ok"


def _check_broker() -> str:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def ready(request):
    checks = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}
    state: dict[str, str] = {}
    healthy = True
    for name, check in checks.items():
        try:
            state[name] = check()
        except Exception as exc:  # the probe reports, it never raises
            healthy = False
            state[name] = f"error: {exc.__class__.__name__}"
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": state}, status=200 if healthy else 503)
