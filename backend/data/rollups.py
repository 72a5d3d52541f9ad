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

Building the upsert's rows is per-key CPU on the event loop (~5 µs a key and table, and a flush
over a thousand users has a thousand keys in each of fifteen tables): the values go through one
encoder per column (``rows.encoders``), and the loop is let run every ``CHUNK`` rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tortoise.fields.base import Field
from tortoise.models import Model

Key = tuple[Any, ...]
Totals = dict[str, Any]
#: model -> column -> the function that turns a value into what the driver takes
Encoders = Callable[[type[Model]], dict[str, Callable[[Any], Any]]]

#: Rows built between two turns of the event loop.
CHUNK = 100


def _norm(value: Any) -> Any:
    """Key values as the batch builds them: aware UTC datetimes (a database may return naive)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not dt.UTC:
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return value


async def upsert_totals(
    conn: Any,
    model: type[Model],
    key_fields: Sequence[str],
    batch: dict[Key, Totals],
    merge: Callable[[Totals | None, Totals], Totals],
    encoders: Encoders,
) -> None:
    """Add ``batch`` (key -> totals of this flush) to ``model``'s rows, two statements in all.

    ``merge(existing, batch_totals)`` returns the row's new totals (``existing`` is None for a
    new key); ``encoders(model)`` gives each column's conversion to what the driver takes.
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
    encode = encoders(model)
    key_enc = [encode[name] for name in key_fields]
    total_enc = [(name, encode[name]) for name in total_fields]
    other_enc = [(fields[name].default, encode[name]) for name in others]
    rows = []
    for i, (key, totals) in enumerate(batch.items()):
        if i and not i % CHUNK:
            await asyncio.sleep(0)
        merged = merge(existing.get(tuple(_norm(v) for v in key)), totals)
        row = [enc(v) for enc, v in zip(key_enc, key, strict=True)]
        row += [enc(merged[name]) for name, enc in total_enc]
        row += [enc(d() if callable(d) else d) for d, enc in other_enc]
        rows.append(row)
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
    if conn.capabilities.dialect == "postgres":
        # Another process's flush may add to the same rows at the same time: without a lock
        # both would read a row's old totals and the later upsert would overwrite the earlier
        # one's additions (and a row that does not exist yet cannot be locked with FOR UPDATE,
        # which Tortoise's values_list left out anyway). One transaction-scoped lock per table
        # serialises that read-add-write across processes; SQLite has one writer at a time.
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_lock_id(model)])
    names = [*key_fields, *total_fields]
    query = model.filter(**narrow).using_db(conn).values(*names)
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    # The rows as the driver returns them, converted here only where a column needs it:
    # Tortoise's own conversion costs ~15 µs a row, all in one step of the event loop.
    _, found = await conn.execute_query(sql, params)
    fields = model._meta.fields_map
    convert = [(name, _to_python(fields[name])) for name in names]
    n = len(key_fields)
    out: dict[Key, Totals] = {}
    for i, row in enumerate(found):
        if i and not i % CHUNK:
            await asyncio.sleep(0)
        values = [row[name] if c is None else c(row[name]) for name, c in convert]
        out[tuple(_norm(v) for v in values[:n])] = dict(zip(total_fields, values[n:], strict=True))
    return out


def _to_python(field: Any) -> Callable[[Any], Any] | None:
    """The field's conversion of a raw value; None where the driver's value is already it."""
    if type(field).to_python_value is Field.to_python_value and field.field_type in (int, str):
        return None
    convert: Callable[[Any], Any] = field.to_python_value
    return convert


#: Arbitrary constant the rollup tables' advisory lock ids are made from.
_LOCK_BASE = 0x5B_0000_0000


def _lock_id(model: type[Model]) -> int:
    return _LOCK_BASE + zlib.crc32(model._meta.db_table.encode())


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
