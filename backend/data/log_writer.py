"""Batched, off-path persistence of request logs, rollups, DLP activity and error reports.

The hot path calls ``submit()`` (no I/O, no await). A background task writes everything queued
every ``interval`` seconds in one transaction and publishes live events right away. If the
database is unreachable the batch stays queued and is retried, bounded by ``max_buffer`` records
(the oldest are dropped past that, with an error log saying how many): a crash loses at most one
interval, a clean stop (``close()``) loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError, ValidationError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from backend.data import daily, histogram, last_used
from backend.data.events import EventBus
from backend.data.log_record import ErrorRecord, LogRecord, clip_body
from backend.data.models.dlp import DlpActivity, DlpPolicy
from backend.data.models.logs import (
    ErrorReport,
    KeyRollup,
    MinuteStat,
    OrgMinuteStat,
    RequestLog,
    TagRollup,
    UsageRollup,
)
from backend.data.rollups import upsert_totals

if TYPE_CHECKING:
    from backend.observability.metrics import Metrics

log = logging.getLogger("switchboard.logwriter")

RollupKey = tuple[dt.datetime, int, int, int, str, str]
#: (hour, org, user, app, tag)
TagKey = tuple[dt.datetime, int, int, int, str]
#: (hour, org, user, app, key prefix)
KeyKey = tuple[dt.datetime, int, int, int, str]

#: The database is up but refuses a value (as opposed to being unreachable).
_DATA_ERRORS: tuple[type[Exception], ...] = (
    UnicodeError,
    ValueError,
    TypeError,
    IntegrityError,
    ValidationError,
)


def _max_length(model: type[Model], name: str) -> int | None:
    """The column's length limit (text columns without one have none)."""
    limit: int | None = getattr(model._meta.fields_map[name], "max_length", None)
    return limit


#: Rollups are upserted through the ORM, keyed by these texts: clip them to their columns.
_ROLLUP_MODEL_LEN = _max_length(UsageRollup, "model")
_ROLLUP_PROVIDER_LEN = _max_length(UsageRollup, "provider")
_KEY_PREFIX_LEN = _max_length(KeyRollup, "key_prefix")


def _hour(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


class LogWriter:
    def __init__(
        self,
        bus: EventBus,
        *,
        interval: float = 0.5,
        max_buffer: int = 200_000,
        after_flush: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        last_used_interval_s: float = last_used.DEFAULT_INTERVAL_S,
    ) -> None:
        self._bus = bus
        #: ``api_keys.last_used_at``, throttled per key (``backend.data.last_used``).
        self._last_used = last_used.LastUsed(last_used_interval_s)
        self._interval = interval
        self._max_buffer = max_buffer
        self._after_flush = after_flush
        #: Counts every submitted record, so the metrics are the log rows' numbers.
        self._metrics = metrics
        self._logs: deque[LogRecord] = deque()
        self._errors: deque[ErrorRecord] = deque()
        self._events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=10_000)
        self._wake_events = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.dropped = 0
        self.written = 0

    # -- hot path ------------------------------------------------------------------------------
    def submit(self, record: LogRecord) -> None:
        if self._metrics is not None:
            self._metrics.observe(record)
        self._logs.append(record)
        self._trim(self._logs)
        if not record.superseded:
            self._events.append(("logs", record.event()))
            self._wake_events.set()

    def submit_error(self, record: ErrorRecord) -> None:
        self._errors.append(record)
        self._trim(self._errors)
        self._events.append(("errors", record.event()))
        self._wake_events.set()

    def _trim(self, queue: deque[Any]) -> None:
        while len(queue) > self._max_buffer:
            queue.popleft()
            self.dropped += 1
            if self._metrics is not None:
                self._metrics.rows_dropped(1)
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.error(
                    "log buffer full (database unreachable?): %d records dropped", self.dropped
                )

    @property
    def pending(self) -> int:
        return len(self._logs) + len(self._errors)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="log-flush"),
            asyncio.create_task(self._publish_loop(), name="log-publish"),
        ]

    async def close(self, timeout: float = 30.0) -> None:
        """Stop the loops and write everything left (retrying briefly if the DB is down).

        The flush loop is asked to stop, never cancelled: cancelling it inside a database
        transaction can leave the connection's transaction lock held, and every later write
        (this final one included) would then wait forever.
        """
        flush_task, publish_task = self._tasks or (None, None)
        self._stopping.set()
        if publish_task is not None:
            publish_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publish_task
        if flush_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(flush_task), timeout)
            except TimeoutError:
                log.error("shutdown: the log flush loop did not stop in %ss", timeout)
        await self._publish_pending()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.pending:
            if await self.flush():
                continue
            if asyncio.get_running_loop().time() > deadline:
                log.error("shutdown: %d log records could not be written", self.pending)
                break
            await asyncio.sleep(0.5)
        with contextlib.suppress(Exception):
            await self._write_last_used(force=True)
        if self._after_flush is not None:
            with contextlib.suppress(Exception):
                await self._after_flush()

    async def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if self._metrics is not None:
                # Sampled once per interval, off the request path: the backlog before the write.
                self._metrics.queue_depth(self.pending)
            await self.flush()
            if self._after_flush is not None:
                try:
                    await self._after_flush()
                except Exception as exc:
                    log.warning("counter flush failed: %s", type(exc).__name__)

    async def _publish_loop(self) -> None:
        while True:
            await self._wake_events.wait()
            self._wake_events.clear()
            await self._publish_pending()

    async def _publish_pending(self) -> None:
        while self._events:
            channel, event = self._events.popleft()
            try:
                await self._bus.publish(channel, event)
            except Exception as exc:  # live view is best effort: the row is still written
                log.warning("publishing %s event failed: %s", channel, type(exc).__name__)

    # -- the write -----------------------------------------------------------------------------
    async def flush(self) -> bool:
        """Write what is queued now. Returns False (and keeps the batch) if the DB failed."""
        logs = list(self._logs)
        errors = list(self._errors)
        if not logs and not errors:
            # Key uses noted earlier may have come due since (their throttle ran out).
            try:
                await self._write_last_used()
            except Exception as exc:
                log.warning("writing keys' last use failed (%s), will retry", type(exc).__name__)
            return True
        try:
            await self._write(logs, errors)
        except _DATA_ERRORS as exc:
            # The database answered but refused something in the batch: write record by
            # record so one unwritable record cannot block every other one for good.
            await self._write_each(logs, errors, exc)
        except Exception as exc:
            log.warning(
                "writing %d log records failed (%s), will retry",
                len(logs) + len(errors),
                type(exc).__name__,
            )
            return False
        else:
            self.written += len(logs)
        for _ in range(len(logs)):
            self._logs.popleft()
        for _ in range(len(errors)):
            self._errors.popleft()
        return True

    async def _write_each(
        self, logs: list[LogRecord], errors: list[ErrorRecord], first: Exception
    ) -> None:
        unwritable = 0
        for record in logs:
            try:
                await self._write([record], [])
                self.written += 1
            except _DATA_ERRORS:
                unwritable += 1
        for error in errors:
            try:
                await self._write([], [error])
            except _DATA_ERRORS:
                unwritable += 1
        self.dropped += unwritable
        if self._metrics is not None and unwritable:
            self._metrics.rows_dropped(unwritable)
        log.error(
            "dropped %d log record(s) the database refused (%s)", unwritable, type(first).__name__
        )

    async def _write_last_used(self, *, force: bool = False) -> None:
        uses = self._last_used.take(force=force)
        if not uses:
            return
        try:
            async with in_transaction() as conn:
                await last_used.write(conn, uses)
        except BaseException:
            self._last_used.give_back(uses)
            raise

    async def _write(self, logs: list[LogRecord], errors: list[ErrorRecord]) -> None:
        for r in logs:
            if r.key_prefix and (r.user_id is not None or r.app_id is not None):
                self._last_used.note(r.key_prefix, r.created_at)
        uses = self._last_used.take()
        try:
            await self._write_batch(logs, errors, uses)
        except BaseException:
            self._last_used.give_back(uses)
            raise

    async def _write_batch(
        self, logs: list[LogRecord], errors: list[ErrorRecord], uses: dict[str, dt.datetime]
    ) -> None:
        rollups: dict[RollupKey, dict[str, Any]] = {}
        tag_rollups: dict[TagKey, dict[str, Any]] = {}
        key_rollups: dict[KeyKey, dict[str, Any]] = {}
        minutes: dict[tuple[dt.datetime, int], dict[str, Any]] = {}
        activity: list[dict[str, Any]] = []
        policy_touch: dict[tuple[str, int], dt.datetime] = {}
        for r in logs:
            if not r.superseded:
                _add_rollup(rollups, r)
                _add_tag_rollups(tag_rollups, r)
                _add_key_rollup(key_rollups, r)
            _add_minute(minutes, r)
            for a in r.dlp_activity:
                activity.append(a)
                owner = a.get("app_id") or a.get("org_id")
                if owner is not None:
                    scope_key = ("app" if a.get("app_id") else "org", int(owner))
                    when: dt.datetime = a["created_at"]
                    policy_touch[scope_key] = max(when, policy_touch.get(scope_key, when))
        async with in_transaction() as conn:
            if logs:
                await _insert_many(conn, RequestLog, [_row(r) for r in logs])
            if errors:
                await _insert_many(conn, ErrorReport, [_error_fields(e) for e in errors])
            if activity:
                await _insert_many(conn, DlpActivity, activity)
            for (scope, owner), when in policy_touch.items():
                filt = {"organization_id": owner} if scope == "org" else {"app_id": owner}
                await (
                    DlpPolicy.filter(scope=scope, **filt)
                    .using_db(conn)
                    .update(last_activity_at=when)
                )
            # Two statements per table whatever the number of keys (data/rollups.py).
            await upsert_totals(conn, UsageRollup, ROLLUP_KEY, rollups, _merge_hist, _db_value)
            await upsert_totals(conn, TagRollup, TAG_KEY, tag_rollups, _add_totals, _db_value)
            await upsert_totals(conn, KeyRollup, KEY_KEY, key_rollups, _add_totals, _db_value)
            await upsert_totals(
                conn, MinuteStat, ("bucket",), _minute_batch(minutes, None), _merge_hist, _db_value
            )
            await upsert_totals(
                conn,
                OrgMinuteStat,
                ("bucket", "org_id"),
                _minute_batch(minutes, "org"),
                _merge_hist,
                _db_value,
            )
            # The same totals per day, for long windows (data/daily.py, data/windows.py).
            await daily.write(
                conn,
                {"usage": rollups, "key": key_rollups, "tag": tag_rollups},
                add=_add_totals,
                add_with_hist=_merge_hist,
                convert=_db_value,
            )
            await last_used.write(conn, uses)


def _text(value: str | None, limit: int | None = None) -> str | None:
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


def _int32(value: int) -> int:
    # An upstream may report absurd usage; an INTEGER column must still take the row.
    return max(0, min(int(value), 2**31 - 1))


async def _insert_many(conn: Any, model: type[Model], rows: list[dict[str, Any]]) -> None:
    """One executemany of plain values, converted and validated by the model's own fields.

    ``bulk_create`` builds a model instance per row first, which cost more CPU than everything
    else the writer does; the SQL and the per-field conversions are the same. Every text value
    goes through ``_text`` with its column's length here, so no caller can write one unfit.
    """
    executor = conn.executor_class(model=model, db=conn)
    fields = model._meta.fields_map
    columns = [
        (name, fields[name].to_db_value, _max_length(model, name))
        for name in executor.regular_columns
    ]
    for row in rows:  # a column a row leaves out gets the field's default, as in the ORM
        for name, _, _ in columns:
            if name not in row:
                default = fields[name].default
                row[name] = default() if callable(default) else default
    values = [
        [
            convert(_text(v, limit) if isinstance(v := row[name], str) else v, model)
            for name, convert, limit in columns
        ]
        for row in rows
    ]
    await conn.execute_many(executor.insert_query, values)


def _row(r: LogRecord) -> dict[str, Any]:
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
        deployment=_text(r.deployment, 64),
        status=r.status,
        error_type=r.error_type,
        error_message=r.error_message,
        error_code=r.error_code,
        upstream_status=r.upstream_status,
        refusal=r.refusal,
        input_tokens=_int32(r.input_tokens),
        output_tokens=_int32(r.output_tokens),
        cached_tokens=_int32(r.cached_tokens),
        reasoning_tokens=_int32(r.reasoning_tokens),
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


def _error_fields(e: ErrorRecord) -> dict[str, Any]:
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


def _add_rollup(rollups: dict[RollupKey, dict[str, Any]], r: LogRecord) -> None:
    key: RollupKey = (
        _hour(r.created_at),
        r.user_id or 0,
        r.app_id or 0,
        r.org_id or 0,
        _text(r.actual_model or r.requested_model, _ROLLUP_MODEL_LEN) or "",
        _text(r.provider, _ROLLUP_PROVIDER_LEN) or "",
    )
    agg = rollups.get(key)
    if agg is None:
        agg = rollups[key] = {**_zero_totals(), "latency_hist": {}}
    _count(agg, r)
    hist: dict[str, int] = agg["latency_hist"]
    k = histogram.bucket_key(r.latency_ms)
    hist[k] = hist.get(k, 0) + 1


def _zero_totals() -> dict[str, Any]:
    """The totals a usage or key rollup keeps, before any request."""
    return {
        "requests": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cost_usd": Decimal(0),
        "unknown_cost_requests": 0,
        "latency_ms_sum": 0.0,
    }


def _count(agg: dict[str, Any], r: LogRecord) -> None:
    """Adds one request to the totals a usage or key rollup keeps."""
    agg["requests"] += 1
    agg["unknown_cost_requests"] += 1 if r.unknown_cost else 0
    agg["errors"] += 1 if r.status >= 400 else 0
    agg["input_tokens"] += r.input_tokens
    agg["output_tokens"] += r.output_tokens
    agg["cached_tokens"] += r.cached_tokens
    agg["cost_usd"] += r.cost_usd or 0
    agg["latency_ms_sum"] += r.latency_ms


def _add_key_rollup(rollups: dict[KeyKey, dict[str, Any]], r: LogRecord) -> None:
    if not r.key_prefix:
        return
    key: KeyKey = (
        _hour(r.created_at),
        r.org_id or 0,
        r.user_id or 0,
        r.app_id or 0,
        _text(r.key_prefix, _KEY_PREFIX_LEN) or "",
    )
    _count(rollups.setdefault(key, _zero_totals()), r)


def _add_minute(minutes: dict[tuple[dt.datetime, int], dict[str, Any]], r: LogRecord) -> None:
    """Per minute and organization the request was made under (0: none)."""
    if r.superseded:
        return
    agg = minutes.setdefault(
        (_minute(r.created_at), r.org_id or 0),
        {
            "requests": 0,
            "errors": 0,
            "tokens": 0,
            "cost_usd": Decimal(0),
            "unknown_cost_requests": 0,
            "hist": {},
        },
    )
    agg["requests"] += 1
    agg["unknown_cost_requests"] += 1 if r.unknown_cost else 0
    agg["errors"] += 1 if r.status >= 400 else 0
    agg["tokens"] += r.input_tokens + r.output_tokens
    agg["cost_usd"] += r.cost_usd or 0
    hist: dict[str, int] = agg["hist"]
    k = histogram.bucket_key(r.latency_ms)
    hist[k] = hist.get(k, 0) + 1


def _add_tag_rollups(rollups: dict[TagKey, dict[str, Any]], r: LogRecord) -> None:
    for tag in r.tags:
        key: TagKey = (_hour(r.created_at), r.org_id or 0, r.user_id or 0, r.app_id or 0, tag)
        agg = rollups.setdefault(
            key,
            {
                "requests": 0,
                "errors": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": Decimal(0),
                "unknown_cost_requests": 0,
            },
        )
        agg["requests"] += 1
        agg["errors"] += 1 if r.status >= 400 else 0
        agg["input_tokens"] += r.input_tokens
        agg["output_tokens"] += r.output_tokens
        agg["cost_usd"] += r.cost_usd or 0
        agg["unknown_cost_requests"] += 1 if r.unknown_cost else 0


#: Each rollup table's unique key, in the order ``_add_rollup``/``_add_tag_rollups`` build it.
ROLLUP_KEY = ("bucket", "user_id", "app_id", "org_id", "model", "provider")
TAG_KEY = ("bucket", "org_id", "user_id", "app_id", "tag")
KEY_KEY = ("bucket", "org_id", "user_id", "app_id", "key_prefix")


def _db_value(model: type[Model], name: str, value: Any) -> Any:
    """``value`` as ``model``'s column ``name`` is written (texts made fit, as in rows)."""
    if isinstance(value, str):
        value = _text(value, _max_length(model, name))
    return model._meta.fields_map[name].to_db_value(value, model)


def _add_totals(row: dict[str, Any] | None, batch: dict[str, Any]) -> dict[str, Any]:
    """A rollup row's totals plus this flush's (a new row: the flush's)."""
    if row is None:
        return batch
    added = {name: row[name] + value for name, value in batch.items() if name != "cost_usd"}
    added["cost_usd"] = Decimal(row["cost_usd"]) + batch["cost_usd"]
    return added


def _minute_batch(
    minutes: dict[tuple[dt.datetime, int], dict[str, Any]], by: str | None
) -> dict[tuple[Any, ...], Any]:
    """Rows of ``minute_stats`` (``by`` None: organizations summed) or ``org_minute_stats``
    ("org": one per organization, requests under none left out)."""
    out: dict[tuple[Any, ...], Any] = {}
    for (bucket, org_id), agg in minutes.items():
        if by is not None and not org_id:
            continue
        key = (bucket,) if by is None else (bucket, org_id)
        row = out.get(key)
        batch = {
            "requests": agg["requests"],
            "errors": agg["errors"],
            "tokens": agg["tokens"],
            "cost_usd": agg["cost_usd"],
            "unknown_cost_requests": agg["unknown_cost_requests"],
            "latency_hist": dict(agg["hist"]),
        }
        out[key] = batch if row is None else _merge_hist(row, batch)
    return out


def _merge_hist(row: dict[str, Any] | None, batch: dict[str, Any]) -> dict[str, Any]:
    """Totals added and latency histograms merged (a row older than its histogram has null)."""
    if row is None:
        return batch
    hist = dict(row["latency_hist"] or {})
    histogram.merge(hist, batch["latency_hist"])
    merged = _add_totals(
        {k: v for k, v in row.items() if k != "latency_hist"},
        {k: v for k, v in batch.items() if k != "latency_hist"},
    )
    merged["latency_hist"] = hist
    return merged
