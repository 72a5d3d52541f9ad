"""How the log writer's values become what the database driver takes: one encoder per column.

Tortoise converts a value through its field's ``to_db_value`` (a type check, a coercion and the
field's validators): ~1 µs a value, and a flush converts ~40 values per log row plus every
rollup row's. Most columns are plain ints, floats, bools, decimals and texts whose conversion
is the identity, so ``encoders(model)`` builds, once per table, a function per column that
passes such a value through as it is and calls the field's own ``to_db_value`` for anything
else (datetimes, JSON, an unexpected type): the same result, the same errors.

Every text goes through ``text`` with its column's length first, so no value a caller sends
(a model name of any length, a NUL, a lone surrogate) can make the database refuse a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tortoise.fields.base import Field
from tortoise.fields.data import JSONField
from tortoise.models import Model
from tortoise.validators import MaxLengthValidator

from backend.data.log_record import ErrorRecord, LogRecord, clip_body

Encoder = Callable[[Any], Any]

#: Field types whose base ``to_db_value`` returns a value of exactly that type unchanged.
_PLAIN = (int, float, bool, Decimal, str)


def max_length(model: type[Model], name: str) -> int | None:
    """The column's length limit (text columns without one have none)."""
    limit: int | None = getattr(model._meta.fields_map[name], "max_length", None)
    return limit


def text(value: str | None, limit: int | None = None) -> str | None:
    """``value`` made fit for a text column of ``limit`` characters."""
    # PostgreSQL text cannot hold NUL and no database takes a lone surrogate, and a model name
    # or an upstream answer is outside text: one such value would fail every batch it is in.
    # ``limit`` is the column's max_length: a caller may send a model name of any length.
    if not value:
        return value
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def int32(value: int) -> int:
    # An upstream may report absurd usage; an INTEGER column must still take the row.
    return max(0, min(int(value), 2**31 - 1))


def _encoder(model: type[Model], name: str) -> Encoder:
    field = model._meta.fields_map[name]
    limit = max_length(model, name)
    convert = field.to_db_value
    plain = type(field).to_db_value is Field.to_db_value and field.field_type in _PLAIN

    def general(value: Any) -> Any:
        return convert(text(value, limit) if isinstance(value, str) else value, model)

    if isinstance(field, JSONField) and not field.validators:
        dumps = field.encoder

        def encode_json(value: Any) -> Any:
            # JSONField.to_db_value of None or a plain dict or list, without its checks.
            if value is None:
                return None
            if value.__class__ is dict or value.__class__ is list:
                return dumps(value)
            return general(value)

        return encode_json
    if not plain:
        return general
    kind: type = field.field_type
    if kind is str:
        # A text clipped to its column passes the only validator a text column has.
        if not all(isinstance(v, MaxLengthValidator) for v in field.validators) or (
            field.validators and limit is None
        ):
            return general
        nullable = field.null

        def encode_text(value: Any) -> Any:
            if value.__class__ is str:
                return text(value, limit)
            if value is None and nullable:
                return None
            return general(value)

        return encode_text
    if field.validators:
        return general

    def encode_plain(value: Any) -> Any:
        # Without validators the base conversion of None or a value of the exact type is it.
        if value is None or value.__class__ is kind:
            return value
        return general(value)

    return encode_plain


_ENCODERS: dict[type[Model], dict[str, Encoder]] = {}


def encoders(model: type[Model]) -> dict[str, Encoder]:
    """Column name -> encoder, for every field of ``model`` (built on first use)."""
    found = _ENCODERS.get(model)
    if found is None:
        found = _ENCODERS[model] = {name: _encoder(model, name) for name in model._meta.fields_map}
    return found


async def insert_many(conn: Any, model: type[Model], rows: list[dict[str, Any]]) -> None:
    """One executemany of plain values, converted and validated as the model's fields would.

    ``bulk_create`` builds a model instance per row first, which cost more CPU than everything
    else the writer does; the SQL and the per-field conversions are the same.
    """
    await conn.execute_many(*insert_values(conn, model, rows))


def insert_values(
    conn: Any, model: type[Model], rows: list[dict[str, Any]]
) -> tuple[str, list[list[Any]]]:
    """The insert statement of ``model`` and ``rows`` as its parameters."""
    executor = conn.executor_class(model=model, db=conn)
    fields = model._meta.fields_map
    encode = encoders(model)
    columns = [(name, encode[name]) for name in executor.regular_columns]
    for row in rows:  # a column a row leaves out gets the field's default, as in the ORM
        for name, _ in columns:
            if name not in row:
                default = fields[name].default
                row[name] = default() if callable(default) else default
    values = [[enc(row[name]) for name, enc in columns] for row in rows]
    return executor.insert_query, values


def log_row(r: LogRecord) -> dict[str, Any]:
    """The ``gateway_logs`` row of a record."""
    return dict(
        request_id=r.request_id,
        created_at=r.created_at,
        key_prefix=r.key_prefix,
        user_id=r.user_id,
        app_id=r.app_id,
        org_id=r.org_id,
        endpoint=r.endpoint,
        requested_model=r.requested_model,
        actual_model=r.actual_model,
        provider=r.provider,
        deployment=text(r.deployment, 64),
        status=r.status,
        error_type=r.error_type,
        error_message=r.error_message,
        error_code=r.error_code,
        upstream_status=r.upstream_status,
        refusal=r.refusal,
        input_tokens=int32(r.input_tokens),
        output_tokens=int32(r.output_tokens),
        cached_tokens=int32(r.cached_tokens),
        reasoning_tokens=int32(r.reasoning_tokens),
        cost_usd=r.cost_usd,
        price=r.price,
        latency_ms=r.latency_ms,
        ttft_ms=r.ttft_ms,
        streamed=r.streamed,
        attempts=r.attempts,
        superseded=r.superseded,
        cache_hit=r.cache_hit,
        agent_id=r.agent_id,
        tier=r.tier,
        tags=list(r.tags) or None,
        # Clipped here too, whoever built the record: one oversized value would make the
        # database refuse the batch, and a refusal it does not name as bad data is retried.
        request_body=clip_body(r.request_body),
        response_body=clip_body(r.response_body),
    )


def error_row(e: ErrorRecord) -> dict[str, Any]:
    """The ``error_reports`` row of a report."""
    return {
        "created_at": e.created_at,
        "source": e.source,
        "type": e.type,
        "error": e.error,
        "model": e.model,
        "user_id": e.user_id,
        "org_id": e.org_id,
        "agent": e.agent,
        "version": e.version,
        "request_id": e.request_id,
    }
