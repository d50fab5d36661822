"""Liveness and readiness probes, and the error answers Django gives before a view runs."""
from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views import defaults


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


# --- error pages -------------------------------------------------------------------------------
# Django answers a URL that matches no route (a non-numeric id, say), an oversized form and an
# unhandled error itself, before DRF is involved; under /api/ clients expect JSON there too.


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to do this."}, status=403)
    return defaults.permission_denied(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
