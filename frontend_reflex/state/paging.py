"""Client-side pages over a list fetched whole, so long tables never grow past one screen.

Only for lists the API answers whole, without cursors, and that are bounded by what admins
configure rather than by traffic or head count: model aliases, agent configurations, the model
catalog, DLP protections (one per organization and app). Everything that can grow pages on the
server instead (``state.pager.ServerList``).
"""

from __future__ import annotations

import reflex as rx

PAGE_SIZE = 15


class Paged(rx.State, mixin=True):
    rows: list[dict[str, str]] = []
    page: int = 0
    loading: bool = False
    error: str = ""

    @rx.var
    def page_rows(self) -> list[dict[str, str]]:
        start = self.page * PAGE_SIZE
        return self.rows[start : start + PAGE_SIZE]

    @rx.var
    def page_label(self) -> str:
        total = len(self.rows)
        if total == 0:
            return "0 rows"
        start = self.page * PAGE_SIZE
        return f"{start + 1}–{min(start + PAGE_SIZE, total)} of {total}"

    @rx.var
    def has_prev(self) -> bool:
        return self.page > 0

    @rx.var
    def has_next(self) -> bool:
        return (self.page + 1) * PAGE_SIZE < len(self.rows)

    @rx.event
    def next_page(self) -> None:
        if (self.page + 1) * PAGE_SIZE < len(self.rows):
            self.page += 1

    @rx.event
    def prev_page(self) -> None:
        self.page = max(0, self.page - 1)
