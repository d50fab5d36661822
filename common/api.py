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
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, (ValueError,)) and getattr(exc, "_troubadour_bad_input", False):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if _pool_exhausted(exc):
        # Every pooled connection of this process stayed busy (DB_POOL_SIZE): nothing was done;
        # the caller is told to come back rather than handed a 500.
        return Response({"detail": "The service is busy; retry shortly."}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "1"})
    return drf_exception_handler(exc, context)


def _pool_exhausted(exc: Exception) -> bool:
    from django.db import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - the pool is in requirements.txt
        return False
    return isinstance(exc.__cause__, PoolTimeout)


# PostgreSQL `integer` (Django IntegerField, PositiveIntegerField and the ids of older tables).
# A serializer field that is written to such a column declares these bounds, so an oversized
# number is a 400 field error instead of a database error.
DB_INT_MAX = 2**31 - 1
DB_INT_MIN = -(2**31)
# `bigint`: the primary keys (DEFAULT_AUTO_FIELD is BigAutoField) a field refers to.
DB_BIGINT_MAX = 2**63 - 1
