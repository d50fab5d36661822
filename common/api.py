"""API glue shared by every app: the one place where domain errors become HTTP answers."""
from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import TroubadourError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, TroubadourError):
        detail = exc.detail
        body = detail if isinstance(detail, (dict, list)) else {"detail": str(detail)}
        if isinstance(body, list):
            body = {"detail": body}
        return Response(body, status=exc.status_code)
    if isinstance(exc, (ValueError,)) and getattr(exc, "_troubadour_bad_input", False):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
