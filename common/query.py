"""Query-string values read by the APIs: every malformed one is a 400 naming its parameter.

`str.isdigit()` is true for "²" and "٣" (int() then fails) and for ids beyond `bigint`
(the database then fails); `parse_datetime` raises ValueError for a well-shaped but
impossible date ("2024-13-45T00:00:00"). Each of those answered 500.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .api import DB_BIGINT_MAX
from .exceptions import ValidationError


def is_db_id(raw: str) -> bool:
    """An ASCII decimal that fits a `bigint` primary key."""
    return isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) <= DB_BIGINT_MAX


def query_id(raw: str, *, name: str) -> int:
    if not is_db_id(raw):
        raise ValidationError({name: ["Expected an id."]})
    return int(raw)


def query_datetime(raw: str, *, name: str) -> datetime:
    """An ISO 8601 date-time (naive ones are UTC)."""
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: ["Expected an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z."]})
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def query_int(raw: str, *, name: str, minimum: int = 0, maximum: int = DB_BIGINT_MAX) -> int:
    text = raw.strip() if isinstance(raw, str) else ""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError({name: ["Expected an integer."]})
    value = int(text)
    if not minimum <= value <= maximum:
        raise ValidationError({name: [f"Expected an integer between {minimum} and {maximum}."]})
    return value



class AnyLookup:
    """``field__any=[ids]``: ``field = ANY(%s)`` with the ids as ONE array parameter.

    Thousands of ids through ``__in`` cost a SQL text of thousands of placeholders to build and
    parse; ``IN (SELECT unnest(…))`` lets the planner guess the array's size (and pick a nested
    loop over it). ``= ANY(array)`` is one parameter and a plain filter or index condition.
    Registered on every field when this module is imported; other databases get ``IN``.
    """


def _register_any_lookup() -> None:
    from django.db.models import Field, ForeignObject, Lookup

    class _Any(Lookup):
        lookup_name = "any"
        prepare_rhs = False
        can_use_none_as_rhs = False

        def get_db_prep_lookup(self, value, connection):
            return ("%s", [list(value)])

        def as_sql(self, compiler, connection):
            lhs, lhs_params = self.process_lhs(compiler, connection)
            values = [int(v) for v in self.rhs]
            if connection.vendor != "postgresql":
                if not values:
                    return "1 = 0", list(lhs_params)
                return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, values]

    Field.register_lookup(_Any)
    ForeignObject.register_lookup(_Any)


_register_any_lookup()


def id_array(ids: Iterable[int]) -> list[int]:
    """The ids for a ``field__any=`` lookup (see AnyLookup)."""
    return [int(pk) for pk in ids]
