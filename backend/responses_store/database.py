"""The database side of the store: batched writes off the request path, reads, deletes, sweeps.

``RowWriter`` works like the log writer (``backend.data.log_writer``): ``submit()`` only queues
and a background task writes what is queued in one transaction; the queue is kept when the
database is unreachable (retried every ``retry_s``, bounded by ``max_pending``, the oldest
dropped with an error log) and ``close()`` writes everything left, so a clean stop loses nothing.
Unlike log rows, a stored response is read back soon (by another instance, when the client's
next turn lands there), so the writer starts as soon as something is queued and only waits
``gap`` between two writes (what arrives meanwhile forms the next batch). A conversation that
goes on pushes its earlier responses' expiry along with it (``extend``), in the same batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque

import orjson
from tortoise.exceptions import IntegrityError, ValidationError
from tortoise.transactions import in_transaction

from backend.data.models.responses import StoredResponse
from backend.responses_store.records import StoredRecord, to_datetime

log = logging.getLogger("switchboard.responses")

#: The database answered but refused a value (as opposed to being unreachable).
_DATA_ERRORS: tuple[type[Exception], ...] = (
    UnicodeError,
    ValueError,
    TypeError,
    IntegrityError,
    ValidationError,
)
_MODEL_LEN = 200


def _row(rec: StoredRecord) -> StoredResponse:
    model = rec.model
    if model is not None and len(model) > _MODEL_LEN:
        model = model[: _MODEL_LEN - 1] + "\u2026"
    return StoredResponse(
        id=rec.id,
        scope=rec.scope,
        org_id=rec.org_id,
        user_id=rec.user_id,
        app_id=rec.app_id,
        request_id=rec.request_id,
        model=model,
        status=rec.status[:20],
        previous_response_id=rec.previous_response_id,
        ancestors=rec.ancestors,
        created_at=to_datetime(rec.created_at),
        expires_at=to_datetime(rec.expires_at),
        response=orjson.dumps(rec.response).decode(),
        input_items=orjson.dumps(rec.input_items).decode(),
    )


def _record(row: StoredResponse) -> StoredRecord:
    return StoredRecord(
        id=row.id,
        scope=row.scope,
        created_at=row.created_at.timestamp(),
        expires_at=row.expires_at.timestamp(),
        response=orjson.loads(row.response),
        input_items=orjson.loads(row.input_items),
        previous_response_id=row.previous_response_id,
        ancestors=list(row.ancestors or []),
        org_id=row.org_id,
        user_id=row.user_id,
        app_id=row.app_id,
        request_id=row.request_id,
    )


async def fetch(ids: list[str], now: float) -> dict[str, tuple[StoredRecord, int]]:
    """The unexpired rows of ``ids`` (any scope: the caller checks it), with their sizes."""
    if not ids:
        return {}
    rows = await StoredResponse.filter(id__in=ids, expires_at__gt=to_datetime(now))
    return {row.id: (_record(row), len(row.response) + len(row.input_items)) for row in rows}


async def delete(response_id: str, scope: str) -> int:
    deleted: int = await StoredResponse.filter(id=response_id, scope=scope).delete()
    return deleted


async def sweep(now: dt.datetime, batch: int = 1000) -> int:
    """Delete rows past their expiry, ``batch`` at a time (short transactions); the count."""
    total = 0
    while True:
        ids = (
            await StoredResponse.filter(expires_at__lte=now)
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return total
        total += await StoredResponse.filter(id__in=list(ids), expires_at__lte=now).delete()
        if len(ids) < batch:
            return total


class RowWriter:
    def __init__(
        self, *, gap_s: float = 0.05, retry_s: float = 0.5, max_pending: int = 20_000
    ) -> None:
        self._gap_s = gap_s
        self._retry_s = retry_s
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self._rows: deque[StoredRecord] = deque()
        #: (new expiry, ids): earlier responses of a conversation that just went on.
        self._extensions: deque[tuple[float, list[str]]] = deque()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0

    # -- no I/O --------------------------------------------------------------------------------
    def submit(self, rec: StoredRecord) -> None:
        self._rows.append(rec)
        self._wake.set()
        while len(self._rows) > self._max_pending:
            self._rows.popleft()
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.error(
                    "stored-response buffer full (database unreachable?): %d dropped", self.dropped
                )

    def extend(self, ids: list[str], expires_at: float) -> None:
        if ids:
            self._extensions.append((expires_at, list(ids)))
            self._wake.set()
            while len(self._extensions) > self._max_pending:
                self._extensions.popleft()

    def forget(self, response_id: str) -> bool:
        """Drop a queued row (deleted before it was written); whether one was queued."""
        kept = [r for r in self._rows if r.id != response_id]
        found = len(kept) != len(self._rows)
        if found:
            self._rows = deque(kept)
        return found

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._extensions)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="responses-flush")

    async def close(self, timeout: float = 30.0) -> None:
        """Stop the loop (never cancelled inside a transaction) and write what is left."""
        self._stop()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.error("shutdown: the stored-response flush loop did not stop in %ss", timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.pending:
            if await self.flush():
                continue
            if asyncio.get_running_loop().time() > deadline:
                log.error("shutdown: %d stored responses could not be written", len(self._rows))
                break
            await asyncio.sleep(0.5)

    async def _loop(self) -> None:
        ok = True
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                # After a failure, retry on time even if nothing new arrives.
                await asyncio.wait_for(self._wake.wait(), None if ok else self._retry_s)
            self._wake.clear()
            ok = await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._gap_s if ok else self._retry_s)

    def _stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    # -- the write -----------------------------------------------------------------------------
    async def flush(self) -> bool:
        """Write what is queued now. Returns False (and keeps the batch) if the DB failed."""
        rows = list(self._rows)
        extensions = list(self._extensions)
        if not rows and not extensions:
            return True
        try:
            await self._write(rows, extensions)
        except _DATA_ERRORS as exc:
            await self._write_each(rows, extensions, exc)
        except Exception as exc:
            log.warning(
                "writing %d stored responses failed (%s), will retry", len(rows), type(exc).__name__
            )
            return False
        else:
            self.written += len(rows)
        written = {id(r) for r in rows}
        self._rows = deque(r for r in self._rows if id(r) not in written)
        for _ in range(len(extensions)):
            self._extensions.popleft()
        return True

    async def _write_each(
        self,
        rows: list[StoredRecord],
        extensions: list[tuple[float, list[str]]],
        first: Exception,
    ) -> None:
        refused = 0
        for rec in rows:
            try:
                await self._write([rec], [])
                self.written += 1
            except _DATA_ERRORS:
                refused += 1
        with contextlib.suppress(*_DATA_ERRORS):
            await self._write([], extensions)
        self.dropped += refused
        log.error(
            "dropped %d stored response(s) the database refused (%s)", refused, type(first).__name__
        )

    @staticmethod
    async def _write(rows: list[StoredRecord], extensions: list[tuple[float, list[str]]]) -> None:
        async with in_transaction() as conn:
            if rows:
                await StoredResponse.bulk_create(
                    [_row(r) for r in rows], ignore_conflicts=True, using_db=conn
                )
            for expires_at, ids in extensions:
                until = to_datetime(expires_at)
                await (
                    StoredResponse.filter(id__in=ids, expires_at__lt=until)
                    .using_db(conn)
                    .update(expires_at=until)
                )
