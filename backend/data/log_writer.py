"""Batched, off-path persistence of request logs, rollups, DLP activity and error reports.

The hot path calls ``submit()`` (no I/O, no await). A background task writes everything queued
every ``interval`` seconds in one transaction and publishes live events right away. If the
database is unreachable the batch stays queued and is retried, bounded by ``max_buffer`` records
(the oldest are dropped past that, with an error log saying how many): a crash loses at most one
interval, a clean stop (``close()``) loses nothing.

A flush sums its records into rollup totals (``batch``: one pass, integer keys) and encodes the
log rows for the driver (``rows``) a chunk at a time, letting the event loop run between
chunks, before it opens the transaction; the rollups go in two statements per table
(``rollups``), the daily tables from the hourly totals (``daily``). On SQLite the database's own
work runs in aiosqlite's thread without the GIL (benchmarks/README.md, "Round two").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError, ValidationError
from tortoise.transactions import in_transaction

from backend.data import batch as batch_mod
from backend.data import daily, last_used, rows
from backend.data.batch import KEY_KEY, ROLLUP_KEY, TAG_KEY, Batch
from backend.data.events import EventBus
from backend.data.log_record import ErrorRecord, LogRecord
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

#: Records aggregated and encoded between two turns of the event loop during a flush: ~1.2 ms
#: of CPU on this machine (~12 µs a record, flush_bench.py), below the 2 ms p99 target.
CHUNK = 100

#: The database is up but refuses a value (as opposed to being unreachable).
_DATA_ERRORS: tuple[type[Exception], ...] = (
    UnicodeError,
    ValueError,
    TypeError,
    IntegrityError,
    ValidationError,
)


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
        #: One flush at a time: a flush awaits between taking its records and removing them
        #: from the queue, and a second one in between would write the same records again.
        self._flushing = asyncio.Lock()
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
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
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
        note = self._last_used.note
        for start in range(0, len(logs), CHUNK):
            if start:
                await asyncio.sleep(0)
            for r in logs[start : start + CHUNK]:
                if r.key_prefix and (r.user_id is not None or r.app_id is not None):
                    note(r.key_prefix, r.created_at)
        uses = self._last_used.take()
        try:
            await self._write_batch(logs, errors, uses)
        except BaseException:
            self._last_used.give_back(uses)
            raise

    async def _write_batch(
        self, logs: list[LogRecord], errors: list[ErrorRecord], uses: dict[str, dt.datetime]
    ) -> None:
        # The CPU work (rollup sums, rows encoded for the driver) is done before the
        # transaction, CHUNK records at a time with the event loop let run in between: a
        # flush of thousands of records held the loop for ~100 ms in one stretch before.
        batch = Batch()
        log_sql, log_values = "", []
        activity: list[dict[str, Any]] = []
        policy_touch: dict[tuple[str, int], dt.datetime] = {}
        db = RequestLog._meta.db
        for start in range(0, len(logs), CHUNK):
            if start:
                await asyncio.sleep(0)
            chunk = logs[start : start + CHUNK]
            batch.add(chunk)
            log_sql, values = rows.insert_values(db, RequestLog, [rows.log_row(r) for r in chunk])
            log_values += values
            for r in chunk:
                for a in r.dlp_activity:
                    activity.append(a)
                    owner = a.get("app_id") or a.get("org_id")
                    if owner is not None:
                        scope_key = ("app" if a.get("app_id") else "org", int(owner))
                        when: dt.datetime = a["created_at"]
                        policy_touch[scope_key] = max(when, policy_touch.get(scope_key, when))
        # ~3 µs a key each: a flush over a thousand users has a thousand keys.
        usage = batch.usage()
        await asyncio.sleep(0)
        keys, tags = batch.keys(), batch.tags()
        await asyncio.sleep(0)
        add, merge, convert = batch_mod.add_totals, batch_mod.merge_hist, rows.encoders
        async with in_transaction() as conn:
            if logs:
                await conn.execute_many(log_sql, log_values)
            if errors:
                await rows.insert_many(conn, ErrorReport, [rows.error_row(e) for e in errors])
            if activity:
                await rows.insert_many(conn, DlpActivity, activity)
            for (scope, owner), when in policy_touch.items():
                filt = {"organization_id": owner} if scope == "org" else {"app_id": owner}
                await (
                    DlpPolicy.filter(scope=scope, **filt)
                    .using_db(conn)
                    .update(last_activity_at=when)
                )
            # Two statements per table whatever the number of keys (data/rollups.py).
            await upsert_totals(conn, UsageRollup, ROLLUP_KEY, usage, merge, convert)
            await upsert_totals(conn, TagRollup, TAG_KEY, tags, add, convert)
            await upsert_totals(conn, KeyRollup, KEY_KEY, keys, add, convert)
            await upsert_totals(conn, MinuteStat, ("bucket",), batch.minutes(False), merge, convert)
            await upsert_totals(
                conn, OrgMinuteStat, ("bucket", "org_id"), batch.minutes(True), merge, convert
            )
            # The same totals per day, for long windows (data/daily.py, data/windows.py).
            await daily.write(
                conn,
                {"usage": usage, "key": keys, "tag": tags},
                add=add,
                add_with_hist=merge,
                encoders=convert,
            )
            await last_used.write(conn, uses)
