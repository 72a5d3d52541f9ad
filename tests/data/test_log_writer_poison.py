"""One unwritable record must never stop the log: the rest is written, the bad one accounted."""

from __future__ import annotations

import datetime as dt

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.logs import RequestLog


async def test_odd_text_and_numbers_are_written_not_retried_forever(db: str) -> None:
    writer = LogWriter(LocalBus())
    now = dt.datetime.now(dt.UTC)
    writer.submit(LogRecord("ok", now, "/v1/messages", requested_model="fine"))
    writer.submit(LogRecord("surrogate", now, "/v1/messages", requested_model="bad\ud800x"))
    writer.submit(LogRecord("nul", now, "/v1/messages", error_message="a\x00b"))
    writer.submit(LogRecord("huge", now, "/v1/messages", input_tokens=10**15))
    # A caller can name a model of any length; the column holds 200 characters.
    writer.submit(LogRecord("long", now, "/v1/messages", requested_model="x" * 5000))
    assert await writer.flush()
    rows = {r.request_id: r for r in await RequestLog.all()}
    assert set(rows) == {"ok", "surrogate", "nul", "huge", "long"}
    assert rows["long"].requested_model == "x" * 199 + "\u2026"
    assert writer.dropped == 0
    assert rows["surrogate"].requested_model == "bad?x"
    assert rows["nul"].error_message == "a\ufffdb"
    assert rows["huge"].input_tokens == 2**31 - 1
    assert writer.pending == 0


async def test_a_refused_record_is_dropped_and_the_others_written(db: str) -> None:
    writer = LogWriter(LocalBus())
    now = dt.datetime.now(dt.UTC)
    writer.submit(LogRecord("a", now, "/v1/messages"))
    # A status the column cannot take makes the database refuse just this record.
    writer.submit(LogRecord("b", now, "/v1/messages", status="not-a-number"))  # type: ignore[arg-type]
    writer.submit(LogRecord("c", now, "/v1/messages"))
    assert await writer.flush()
    assert {r.request_id for r in await RequestLog.all()} == {"a", "c"}
    assert writer.dropped == 1 and writer.pending == 0
