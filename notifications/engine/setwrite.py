"""Set-based row writes for the fan-out: ``INSERT … SELECT … FROM unnest(…)`` on PostgreSQL.

What differs per recipient travels as one array per column (ids, user ids, addresses, locale,
the index of the recipient's situation); what differs per situation (status, trace, rendered
content) as short arrays indexed by that situation; what the whole event shares as single
parameters. The server builds every row: no model instance, no per-row Python formatting, a
JSON document parsed once per situation instead of once per row.

The statement goes through a server-side-binding psycopg cursor (the arrays travel as
parameters, not as SQL literals) inside Django's connection and transaction, and is added to
Django's query log so that query-count assertions still see it.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, cast

from django.db import connection, models


def _prep(field: models.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.dumps(value, cls=field.encoder)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    return value


def _element(value: Any) -> str:
    """One element of a PostgreSQL array literal (quoted unless NULL or a number)."""
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    text = str(value)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def array_literal(values: Sequence[Any]) -> str:
    """``values`` as the text of a PostgreSQL array (``{1,2,NULL}``, ``{"a","b"}``), cast by the statement.

    Thousands of elements are formatted here in one pass; psycopg's generic list dumper walks and
    type-checks every element in Python and was a tenth of a 10,000-recipient request.
    """
    if values and all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _sql_type(field: models.Field) -> str:
    if isinstance(field, models.JSONField):
        return "jsonb"
    db_type = field.db_type(connection) or "text"
    if db_type.startswith("varchar") or db_type.startswith("char"):
        return "text"  # the column's own length check applies on insert
    return db_type


def sequence_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys of ``model`` from its sequence, in one query."""
    if count <= 0:
        return []
    qn = connection.ops.quote_name
    return [row[0] for row in execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [qn(model._meta.db_table), model._meta.pk.column, count], fetch=True,
    )]


def execute(sql: str, params: Sequence[Any], *, fetch: bool = False, label: str = "") -> list[tuple]:
    """Run one statement with server-side binding on Django's connection (and its transaction)."""
    import psycopg

    connection.ensure_connection()
    started = time.monotonic()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall() if fetch else []
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{sql[:2000]} {label}".strip(), "time": f"{time.monotonic() - started:.3f}"})
    return rows


def rows_insert(
    model: type[models.Model],
    *,
    per_row: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    per_group: Mapping[str, Sequence[Any]] | None = None,
    group_of_row: Sequence[int] | None = None,
    plan: Mapping[str, Sequence[Any]] | None = None,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert one row per element of the ``per_row`` arrays (all of one length) in ONE statement.

    Keys are field attnames. ``per_group`` values are picked by ``group_of_row`` (1-based);
    ``constants`` are the same for every row; any other field gets its model default
    (``auto_now``/``auto_now_add`` fields: now). ``plan`` (arrays, one of them
    ``g``) multiplies rows: every row is joined with the plan entries whose ``g`` equals the
    row's group. A constant given as ``"plan:<name>"`` or ``"sql:<expression>"`` is taken from
    the plan or computed by the server.
    """
    from django.utils import timezone

    constants = dict(constants or {})
    per_group = dict(per_group or {})
    now = timezone.now()
    params: list[Any] = []
    row_columns: list[str] = []
    row_arrays: list[str] = []
    fields = [f for f in model._meta.concrete_fields if not getattr(f, "generated", False)]
    by_attname = {f.attname: f for f in fields}
    for name, values in per_row.items():
        field = by_attname.get(name)
        if field is None:  # a helper column (e.g. a recipient's email used to build an address)
            kind = "bigint" if name.endswith("_id") else "text"
            row_arrays.append(f"%s::{kind}[]")
            params.append(array_literal(values))
        else:
            row_arrays.append(f"%s::{_sql_type(field)}[]")
            plain = not isinstance(field, models.JSONField) and all(v is None or type(v) in (int, str) for v in values)
            params.append(array_literal(values if plain else [_prep(field, v) for v in values]))
        row_columns.append(name)
    if group_of_row is not None:
        row_arrays.append("%s::int[]")
        params.append(array_literal(group_of_row or []))
        row_columns.append("_g")
    source = f"unnest({', '.join(row_arrays)}) AS r({', '.join(_q(c) for c in row_columns)})"
    plan_sql = ""
    if plan is not None:
        plan_arrays, plan_columns = [], []
        for name, values in plan.items():
            sample = next((v for v in values if v is not None), None)
            if isinstance(sample, bool):
                pg = "boolean"
            elif isinstance(sample, int):
                pg = "int"
            elif isinstance(sample, dict | list):
                pg = "jsonb"
                values = [json.dumps(v) if v is not None else None for v in values]
            elif hasattr(sample, "isoformat"):
                pg = "timestamptz"
            else:
                pg = "text"
            plan_arrays.append(f"%s::{pg}[]")
            params.append(list(values))
            plan_columns.append(name)
        plan_sql = f" JOIN unnest({', '.join(plan_arrays)}) AS p({', '.join(_q(c) for c in plan_columns)}) ON p.g = r._g"
    columns: list[str] = []
    exprs: list[str] = []
    head_params: list[Any] = []
    for field in fields:
        name = field.attname
        if name in per_row:
            expr = f"r.{_q(name)}"
        elif name in per_group:
            expr = f"(%s::{_sql_type(field)}[])[r._g]"
            head_params.append([_prep(field, v) for v in per_group[name]])
        elif name in constants:
            value = constants[name]
            if isinstance(value, str) and value.startswith("plan:"):
                expr = f"p.{_q(value[5:])}::{_sql_type(field)}"
            elif isinstance(value, str) and value.startswith("sql:"):
                expr = value[4:]
            else:
                expr = f"%s::{_sql_type(field)}"
                head_params.append(_prep(field, value))
        elif field.primary_key:
            continue
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            expr = f"%s::{_sql_type(field)}"
            head_params.append(now)
        else:
            expr = f"%s::{_sql_type(field)}"
            head_params.append(_prep(field, field.get_default()))
        columns.append(_q(cast(str, field.column)))  # a concrete field always has a column
        exprs.append(expr)
    table = _q(model._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} FROM {source}{plan_sql}"
    if returning:
        # RETURNING names concrete fields, which always have a column.
        sql += f" RETURNING {', '.join(_q(cast(str, cast(models.Field, model._meta.get_field(c)).column)) for c in returning)}"
    count = len(next(iter(per_row.values()))) if per_row else 0
    return execute(sql, head_params + params, fetch=bool(returning), label=f"-- {count} rows")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)
