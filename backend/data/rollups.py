"""Rollup rows written in a fixed number of statements per flush, however many keys a flush has.

A flush used to read each rollup key's row (``SELECT ... FOR UPDATE``) and save it: two round
trips per distinct (hour, user, app, organization, model, provider), so a flush over a thousand
active users cost two thousand statements. ``upsert_totals`` does it in two per table:

1. one ``SELECT`` (``FOR UPDATE`` on PostgreSQL) of the rows the batch's keys already have,
   narrowed by each key column's values, returned as plain tuples (no model instance per row);
2. one ``executemany`` of ``INSERT ... ON CONFLICT (key) DO UPDATE SET total = excluded.total``
   with the new totals (the row's + the batch's) computed in Python.

The addition stays in Python because SQLite keeps ``DecimalField`` as text: ``cost_usd +
excluded.cost_usd`` in SQL would add floats. Both SQLite (3.24+) and PostgreSQL take the
statement; the key columns are each table's unique constraint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tortoise.models import Model

Key = tuple[Any, ...]
Totals = dict[str, Any]


def _norm(value: Any) -> Any:
    """Key values as the batch builds them: aware UTC datetimes (a database may return naive)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return value


async def upsert_totals(
    conn: Any,
    model: type[Model],
    key_fields: Sequence[str],
    batch: dict[Key, Totals],
    merge: Callable[[Totals | None, Totals], Totals],
    convert: Callable[[type[Model], str, Any], Any],
) -> None:
    """Add ``batch`` (key -> totals of this flush) to ``model``'s rows, two statements in all.

    ``merge(existing, batch_totals)`` returns the row's new totals (``existing`` is None for a
    new key); ``convert(model, column, value)`` turns a value into what the driver takes.
    """
    if not batch:
        return
    total_fields = list(next(iter(batch.values())).keys())
    existing = await _existing(conn, model, key_fields, total_fields, batch.keys())
    fields = model._meta.fields_map
    # Every insertable column: a new row gets the field's default where the batch says nothing.
    columns = [*key_fields, *total_fields]
    others = [
        name
        for name in conn.executor_class(model=model, db=conn).regular_columns
        if name not in columns
    ]
    columns += others
    rows = []
    for key, totals in batch.items():
        merged = merge(existing.get(tuple(_norm(v) for v in key)), totals)
        values = dict(zip(key_fields, key, strict=True))
        values.update(merged)
        for name in others:
            default = fields[name].default
            values[name] = default() if callable(default) else default
        rows.append([convert(model, name, values[name]) for name in columns])
    sql = _upsert_sql(conn, model, key_fields, columns, total_fields)
    await conn.execute_many(sql, rows)


async def _existing(
    conn: Any,
    model: type[Model],
    key_fields: Sequence[str],
    total_fields: Sequence[str],
    keys: Iterable[Key],
) -> dict[Key, Totals]:
    keys = list(keys)
    narrow = {
        f"{name}__in": sorted({k[i] for k in keys}, key=repr) for i, name in enumerate(key_fields)
    }
    query = model.filter(**narrow).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    found = await query.values_list(*key_fields, *total_fields)
    n = len(key_fields)
    return {
        tuple(_norm(v) for v in row[:n]): dict(zip(total_fields, row[n:], strict=True))
        for row in found
    }


def _upsert_sql(
    conn: Any,
    model: type[Model],
    key_fields: Sequence[str],
    columns: list[str],
    total_fields: Sequence[str],
) -> str:
    """Insert every column; on a key already there, set only the totals (the other columns
    keep what the row has)."""
    table = model._meta.db_table
    fields = model._meta.fields_map

    def column(name: str) -> str:
        return f'"{fields[name].source_field or name}"'

    postgres = conn.capabilities.dialect == "postgres"
    marks = ", ".join(f"${i}" if postgres else "?" for i in range(1, len(columns) + 1))
    quoted = ", ".join(column(c) for c in columns)
    keys = ", ".join(column(k) for k in key_fields)
    updates = ", ".join(f"{column(n)} = EXCLUDED.{column(n)}" for n in total_fields)
    return (
        f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}) '
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )
