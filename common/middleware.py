"""Request checks that run before any view, and headers every page answers with."""
from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.signals import request_finished
from django.http import JsonResponse

from common.logging import CORRELATION_ID, REQUEST_ID, clean_id, new_id


class RequestIdMiddleware:
    """Every request gets an id (the caller's `X-Request-ID` if it is plain, else a new one),
    answered in `X-Request-ID` and carried by every log line and Celery task it causes.
    `X-Correlation-ID` names a wider operation; it defaults to the request id."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_id(request.headers.get("X-Request-ID")) or new_id()
        # Set, not scoped: Django logs a 4xx/5xx answer after the middleware chain has returned,
        # and that line must carry the ids too; they are forgotten when the response is closed.
        REQUEST_ID.set(request_id)
        CORRELATION_ID.set(clean_id(request.headers.get("X-Correlation-ID")) or request_id)
        request.request_id = request_id
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _forget_request_ids(**kwargs) -> None:
    REQUEST_ID.set("")
    CORRELATION_ID.set("")


request_finished.connect(_forget_request_ids, dispatch_uid="common.middleware.forget_request_ids")


class RejectNulQueryMiddleware:
    """Under /api/, a query string holding a NUL character is a 400 before any filter sees it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            return JsonResponse({"detail": "NUL characters are not allowed in the query string."}, status=400)
        return self.get_response(request)


class PageSecurityHeadersMiddleware:
    """The headers every HTML page carries besides the CSP (added by csp.middleware.CSPMiddleware,
    which must come before this one in MIDDLEWARE so that it sees the response after it).

    Pages show one person's data: like the invitation landing page, they stay out of shared
    caches (a view that chose its own Cache-Control keeps it). Referrer-Policy, nosniff and
    Cross-Origin-Opener-Policy come from SecurityMiddleware; X-Frame-Options from its own middleware.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy:
            response.headers.setdefault("Permissions-Policy", policy)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "private, no-store")
            if request.path.startswith("/admin/") and apps.is_installed("unfold"):
                # The admin theme runs Alpine.js, which compiles its attribute expressions with
                # new Function(): the staff-only admin is the one place script-src allows eval.
                # Still no inline script and no remote host there.
                response._csp_update = {"script-src": ["'unsafe-eval'"]}
        return response
