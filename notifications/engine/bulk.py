"""Bulk inserts for the fan-out: PostgreSQL COPY instead of one huge INSERT.

A 10,000-recipient event writes 10,000 notifications, 20,000+ deliveries and 10,000 audit
rows. Django's ``bulk_create`` sends them as ``INSERT … SELECT * FROM UNNEST(%s::type[], …)``
with client-side binding: psycopg spells every array out as a quoted literal (seconds of
Python for the JSON columns alone) and the server parses a query of tens of megabytes.
``COPY … FROM STDIN`` streams the same rows with no quoting and no parsing of SQL.

COPY does not return the new ids, so they are taken from the table's sequence first, in
one query (``nextval`` over ``generate_series``): two round trips per table, whatever the
number of rows. Other databases (the embedded SQLite run) keep ``bulk_create``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, connections, models, router
from django.utils import timezone


def _copy_columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not getattr(f, "generated", False)]


def _prepare(obj: models.Model, fields: list[models.Field], now: Any) -> tuple[Any, ...]:
    row: list[Any] = []
    for f in fields:
        if f.is_relation:
            value = getattr(obj, f.attname)
            if value is None and cast(models.ForeignObject, f).is_cached(obj):  # a concrete relation: a ForeignObject
                # Assigned as an instance before that instance had its id (bulk-created just before).
                related = cast(models.ForeignObject, f).get_cached_value(obj)
                if related is not None:
                    value = related.pk
                    setattr(obj, f.attname, value)
            row.append(value)
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            setattr(obj, f.attname, now)
            row.append(now)
            continue
        value = getattr(obj, f.attname)
        if value is not None:
            if isinstance(f, models.JSONField):
                value = json.dumps(value, cls=f.encoder)
            elif isinstance(value, str) and type(value) is not str:
                value = str(value)  # TextChoices members: their value, not their name
        row.append(value)
    return tuple(row)


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model], *, batch_size: int | None = None,
                with_ids: bool = True) -> None:
    """Insert ``objs`` and set their primary keys, like ``bulk_create`` without conflict handling.

    Signals are not sent (neither does ``bulk_create``). ``auto_now``/``auto_now_add`` fields
    get one timestamp for the whole call. ``with_ids=False`` (rows nobody reads back, such as
    audit rows) lets the table's own default number them: one round trip instead of two.
    """
    if not objs:
        return
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(list(objs), batch_size=batch_size)  # type: ignore[attr-defined]  # the stubs' Model declares no manager; every model here has objects
        return
    meta = model._meta
    table = meta.db_table
    pk_column = meta.pk.column
    missing = [obj for obj in objs if obj.pk is None] if with_ids else []
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if missing:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [qn(table), pk_column, len(missing)],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
            for obj, pk in zip(missing, ids, strict=True):
                obj.pk = pk
        fields = _copy_columns(model)
        if not with_ids:
            fields = [f for f in fields if f is not meta.pk]
        now = timezone.now()
        sql = f"COPY {qn(table)} ({', '.join(qn(cast(str, f.column)) for f in fields)}) FROM STDIN"
        started = time.monotonic()
        # Django's cursor wrapper does not know COPY: the raw psycopg cursor streams it.
        with cursor.cursor.copy(sql) as copy:
            for obj in objs:
                copy.write_row(_prepare(obj, fields, now))
        if connection.queries_logged:
            # Keep COPY visible to query logs and to the tests that count queries.
            connection.queries_log.append(
                {"sql": f"{sql} -- {len(objs)} rows", "time": f"{time.monotonic() - started:.3f}"}
            )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def _json_cell(field: models.Field, value: Any) -> Any:
    """A column value as plain JSON, for ``jsonb_to_recordset`` (which casts it to the column type)."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.loads(json.dumps(value, cls=field.encoder)) if field.encoder else value
    if isinstance(value, (str, int, float, bool)):
        return str(value) if isinstance(value, str) and type(value) is not str else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)  # Decimal, UUID: their text form


def bulk_update_rows(model: type[models.Model], objs: list, fields: list[str]) -> None:
    """``bulk_update`` in one ``UPDATE … FROM`` on PostgreSQL.

    Django's ``bulk_update`` builds one CASE expression per field and row, which costs more
    Python time than the whole send for a batch of 100; other databases keep using it. The
    rows travel as one JSON document read by ``jsonb_to_recordset``: one parameter whatever
    the number of rows, serialized by the json module (psycopg would quote every element of
    a per-column array, or scan a query text that grows with the rows for its placeholders).
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields)  # type: ignore[attr-defined]  # the stubs' Model declares no manager; every model here has objects
        return
    meta = model._meta
    # Concrete fields named by the caller, and the primary key: each has a column.
    columns = [cast(models.Field, meta.get_field(name)) for name in fields]
    pk = meta.pk
    quote = connection.ops.quote_name
    rows = [
        {"pk_": _json_cell(pk, obj.pk), **{column.column: _json_cell(column, getattr(obj, column.attname)) for column in columns}}
        for obj in objs
    ]
    assignments = ", ".join(f"{quote(cast(str, column.column))} = v.{quote(cast(str, column.column))}" for column in columns)
    definitions = ", ".join(
        [f"{quote('pk_')} {pk.db_type(connection)}"] + [f"{quote(cast(str, column.column))} {column.db_type(connection)}" for column in columns]
    )
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS v({definitions}) WHERE t.{quote(cast(str, pk.column))} = v.{quote('pk_')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])
