"""Filters kept in the page's address, for the server pages of ``state.pager``.

A list page (Gateway Logs, Keys...) declares its filter fields once (``FilterField``) as the
``FIELDS`` of its ``ServerList`` state. The filter then:

- lives in the URL's query string (``?org=3&model=gpt-4o&errors=1&range=24h``), so a view can
  be shared or bookmarked: the page reads it on load (``_read_url``) and rewrites the address,
  without a reload, whenever it changes (``_url_script``);
- is cleaned the same way whether it came from a link or a form (unknown names dropped, a
  non-number in a number field dropped, a choice outside its choices dropped);
- becomes the GraphQL filter input (``to_graphql``), typed per field.

Pages are read one at a time with the API's cursors (``pager.ServerList``); the total is the
API's own count, never the number of rows loaded (``count_label``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

#: Time windows a list offers: (value, label); "custom" takes a start and an end (UTC).
TIME_PRESETS: list[tuple[str, str]] = [
    ("", "Any time"),
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom range"),
]
_PRESET_SPAN = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
#: How a custom start or end is typed: an HTML datetime-local value, read as UTC.
TIME_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True, slots=True)
class FilterField:
    """One filter: its URL parameter (and key in the state's ``filters``), and how it is sent.

    ``kind``: ``text``; ``int`` (an id); ``bool`` ("1" when on); ``choice`` (one of
    ``choices``, e.g. an enum's names); ``time`` (``TIME_FORMAT``, UTC); ``range`` (a
    ``TIME_PRESETS`` value: sent as ``since``/``until`` by ``to_graphql``, not as itself).
    ``gql``: the GraphQL input field ("" for the same name; "-" when not sent directly).
    """

    name: str
    kind: str = "text"
    gql: str = ""
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return self.gql or self.name


def parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _clean_one(field: FilterField, raw: Any) -> str:
    value = str(raw if raw is not None else "").strip()[:200]
    if not value:
        return ""
    if field.kind == "int":
        return value if value.isdigit() else ""
    if field.kind == "bool":
        return "1" if value.lower() in ("1", "true", "on", "yes") else ""
    if field.kind == "choice":
        return value if value in field.choices else ""
    if field.kind == "range":
        return value if value in dict(TIME_PRESETS) else ""
    if field.kind == "time":
        return value[:16] if parse_time(value[:16]) else ""
    return value


def clean(fields: Iterable[FilterField], raw: Mapping[str, Any]) -> dict[str, str]:
    """Every field's value ("" when absent or unfit): a link and a form are read alike."""
    return {f.name: _clean_one(f, raw.get(f.name)) for f in fields}


def query_string(fields: Iterable[FilterField], values: Mapping[str, str]) -> str:
    """``?a=1&b=x`` of the fields that are set, in declaration order ("" when none is)."""
    pairs = [(f.name, values[f.name]) for f in fields if values.get(f.name)]
    return f"?{urlencode(pairs)}" if pairs else ""


def window(
    values: Mapping[str, str], now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[since, until)`` of the ``range`` preset, or of ``since``/``until`` when custom."""
    preset = values.get("range", "")
    if preset in _PRESET_SPAN:
        return now - _PRESET_SPAN[preset], None
    if preset == "custom":
        return parse_time(values.get("since", "")), parse_time(values.get("until", ""))
    return None, None


def to_graphql(
    fields: Iterable[FilterField], values: Mapping[str, str], now: dt.datetime
) -> dict[str, Any]:
    """The GraphQL filter input of ``values`` (only what is set)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name, "")
        if not value or f.gql == "-" or f.kind in ("range", "time"):
            continue
        if f.kind == "int":
            out[f.input_name] = int(value)
        elif f.kind == "bool":
            out[f.input_name] = True
        else:
            out[f.input_name] = value
    since, until = window(values, now)
    if since is not None:
        out["since"] = since.isoformat()
    if until is not None:
        out["until"] = until.isoformat()
    return out


def window_error(values: Mapping[str, str]) -> str:
    """A custom range that cannot be read, in words ("" when fine)."""
    if values.get("range") != "custom":
        return ""
    since, until = parse_time(values.get("since", "")), parse_time(values.get("until", ""))
    if since is None and until is None:
        return "Pick a start or an end for the custom range."
    if since is not None and until is not None and until <= since:
        return "The end of the range is before its start."
    return ""


def count_label(start: int, shown: int, total: int, exact: bool) -> str:
    """``1–50 of 1,234`` (``of more than 10,000`` when the API stopped counting)."""
    if total == 0 and shown == 0:
        return "0 rows"
    of = f"{total:,}" if exact else f"more than {total:,}"
    return f"{start + 1:,}–{start + shown:,} of {of}"
