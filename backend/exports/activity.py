"""A user's API activity as CSV rows, read in keyset pages so memory stays flat.

Only the rows the caller may read are exported: ``scope`` holds the filters
``backend.admin.logs.activity_scope`` computed (the organization each request was made under,
never the user's current one). Columns are fixed (``COLUMNS``). Bodies are exported as stored:
the conversation after DLP redaction, so no raw detected value and no credential can appear here.
Nothing else from the row that could hold a secret (the key's hash, provider credentials) exists
in the log table.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

from backend.data.models.logs import RequestLog

COLUMNS = (
    "time",
    "request_id",
    "key_prefix",
    "endpoint",
    "requested_model",
    "actual_model",
    "provider",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "request",
    "response",
)
_DB_FIELDS = (
    "id",
    "created_at",
    "request_id",
    "key_prefix",
    "endpoint",
    "requested_model",
    "actual_model",
    "provider",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "request_body",
    "response_body",
)
PAGE_ROWS = 500


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _numeric(value):
        # Keep spreadsheet apps from evaluating text from conversations as a formula.
        return "'" + value
    return value


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


async def activity_csv(
    user_id: int,
    *,
    scope: Mapping[str, Any],
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page_rows: int = PAGE_ROWS,
) -> AsyncIterator[bytes]:
    """Yield the CSV (header first) of the non-superseded requests of ``user_id`` within ``scope``,
    oldest first."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    yield buf.getvalue().encode()
    last_id = 0
    while True:
        qs = RequestLog.filter(**scope).filter(user_id=user_id, superseded=False, id__gt=last_id)
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        if until is not None:
            qs = qs.filter(created_at__lt=until)
        rows = await qs.order_by("id").limit(page_rows).values_list(*_DB_FIELDS)
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        for row in rows:
            writer.writerow([_cell(c) for c in row[1:]])
        last_id = rows[-1][0]
        yield buf.getvalue().encode()
