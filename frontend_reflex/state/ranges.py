"""A date range with presets, shared by the pages that read a window (analytics, usage, audit).

Windows are UTC, like every time the dashboard shows. A preset is relative to now; "custom"
takes two dates, both days included. The page's state mixes ``RangeState`` in and implements
``_refresh()`` (what to read again when the range changes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import reflex as rx

#: (value, label): what the range select offers.
PRESETS: list[tuple[str, str]] = [
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("mtd", "This month"),
    ("custom", "Custom dates"),
]
_DAYS = {"7d": 7, "30d": 30, "90d": 90}


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def window(
    preset: str, since_day: str = "", until_day: str = "", now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """``[since, until)`` of a preset (or of two inclusive ``YYYY-MM-DD`` days for "custom")."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    today = now.date()
    if preset == "24h":
        end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        return end - dt.timedelta(hours=24), end
    if preset in _DAYS:
        return _midnight(today - dt.timedelta(days=_DAYS[preset] - 1)), _midnight(
            today + dt.timedelta(days=1)
        )
    if preset == "mtd":
        return _midnight(today.replace(day=1)), _midnight(today + dt.timedelta(days=1))
    first = dt.date.fromisoformat(since_day)
    last = dt.date.fromisoformat(until_day)
    if last < first:
        raise ValueError("The end date is before the start date.")
    return _midnight(first), _midnight(last + dt.timedelta(days=1))


def describe(since: dt.datetime, until: dt.datetime) -> str:
    """``2026-03-04 – 2026-03-10 (UTC)``, or with hours for a window not on day boundaries."""
    last = until - dt.timedelta(microseconds=1)
    if since.time() == dt.time() and until.time() == dt.time():
        return f"{since:%Y-%m-%d} – {last:%Y-%m-%d} (UTC)"
    return f"{since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} (UTC)"


class RangeState(rx.State, mixin=True):
    preset: str = "7d"
    since_day: str = ""
    until_day: str = ""
    range_label: str = ""
    range_error: str = ""

    def _window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The chosen window (and its label), or None with ``range_error`` said in words."""
        try:
            since, until = window(self.preset, self.since_day, self.until_day)
        except ValueError as exc:
            self.range_error = str(exc) if "before" in str(exc) else "Pick both dates (YYYY-MM-DD)."
            return None
        self.range_error = ""
        self.range_label = describe(since, until)
        if self.preset != "custom":
            self.since_day = f"{since:%Y-%m-%d}"
            self.until_day = f"{until - dt.timedelta(microseconds=1):%Y-%m-%d}"
        return since, until

    async def _refresh(self) -> Any:
        raise NotImplementedError

    @rx.event
    async def set_preset(self, value: str) -> Any:
        self.preset = value if value in dict(PRESETS) else "7d"
        return await self._refresh()

    @rx.event
    async def set_since_day(self, value: str) -> Any:
        self.since_day, self.preset = value, "custom"
        return await self._refresh()

    @rx.event
    async def set_until_day(self, value: str) -> Any:
        self.until_day, self.preset = value, "custom"
        return await self._refresh()
