"""The one list style of the REST API: cursor pages, `{next, previous, results}`
(`common.schema.cursor_page` documents it), ordered newest first unless a list says otherwise.

A malformed `cursor` or `page_size` is a 400 naming the parameter, never a 404 or a silent default.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound as DrfNotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import ValidationError


class CursorPage(CursorPagination):
    ordering: Any = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_size_query_param)
        if raw not in (None, "") and not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= 10**6):
            raise ValidationError({self.page_size_query_param: ["Expected a positive whole number."]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except DrfNotFound:
            raise ValidationError({self.cursor_query_param: ["Not a cursor this list gave out."]}) from None


def cursor_paginated(request: Request, queryset: QuerySet, serialize: Callable[[Any], Any], *,
                     ordering: Sequence[str] | None = None, view: Any = None) -> Response:
    """One page of `queryset` (re-ordered by `ordering`, default newest first), each row through `serialize`."""
    paginator = CursorPage()
    if ordering is not None:
        paginator.ordering = tuple(ordering)
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([serialize(row) for row in page])
