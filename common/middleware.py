"""Request checks that run before any view."""
from __future__ import annotations

from django.http import JsonResponse


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
