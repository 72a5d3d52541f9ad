"""A log row holds a bounded body, whoever built the record (issue 13 item 12).

An oversized body used to be handed to the database as is: past what one value may hold the
batch was refused with an error the writer took for an outage, and retried for good.
"""

from __future__ import annotations

import datetime as dt

from backend.data.events import LocalBus
from backend.data.log_record import MAX_BODY_CHARS, LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.logs import RequestLog


async def test_oversized_bodies_are_clipped_when_written(db: str) -> None:
    writer = LogWriter(LocalBus())
    now = dt.datetime.now(dt.UTC)
    big = "é" * (3 * MAX_BODY_CHARS)
    writer.submit(LogRecord("big", now, "/v1/messages", request_body=big, response_body=big))
    writer.submit(LogRecord("small", now, "/v1/messages", response_body="fine"))
    assert await writer.flush()
    rows = {r.request_id: r for r in await RequestLog.all()}
    for body in (rows["big"].request_body, rows["big"].response_body):
        assert body is not None
        assert len(body) == MAX_BODY_CHARS and body.endswith("[clipped]")
        assert body.startswith("é" * 1000)
    assert rows["small"].response_body == "fine"
    assert writer.pending == 0 and writer.dropped == 0
