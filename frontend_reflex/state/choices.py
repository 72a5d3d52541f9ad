"""Option lists that stay small however many rows exist: the one piece every select of
organizations or users shares (forms' owner and organization, the Keys' and Audit Log's filters,
the User Activity Export, the Gateway Logs' three selects).

A select offers the first ``OPTION_LIMIT`` by name matching a "Find" box (the API's own search,
through ``find_choices``), never the whole table; the value chosen (a filter from the address,
an edit dialog's current organization or owner, the user picked) stays offered first even when
it is not among them, and a note says when the list is cut. A page's state declares::

    class AppsState(Choices, EntityState, AuthState):
        CHOICE_KIND = "org"                      # what the select lists ("org" or "user")
        def _kept_choice(self) -> str: ...       # the value that must stay (default: the pick)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import reflex as rx

from frontend_reflex import fmt
from frontend_reflex.api import ApiError

#: Options a select offers at most (by name); the Find box narrows them through the API.
OPTION_LIMIT = 50


class Kind(NamedTuple):
    """What a select lists: the search document (the first ``$n`` by name matching ``$q``,
    with ``totalCount``), the document for one row by id, and the plural for the note."""

    search: str
    one: str
    plural: str


KINDS: dict[str, Kind] = {
    "org": Kind(
        "query OrgChoices($q: String, $n: Int) { list: organizations(first: $n, search: $q, "
        "sort: NAME_ASC) { nodes { id name } totalCount } }",
        "query($id: Int!) { one: organization(id: $id) { id name } }",
        "organizations",
    ),
    "user": Kind(
        "query UserChoices($q: String, $n: Int) { list: users(first: $n, filter: {search: $q}, "
        "sort: NAME_ASC) { nodes { id name email } totalCount } }",
        "query($id: Int!) { one: user(id: $id) { id name email } }",
        "users",
    ),
    "app": Kind(
        "query AppChoices($q: String, $n: Int) { list: apps(first: $n, search: $q, "
        "sort: NAME_ASC) { nodes { id name } totalCount } }",
        "query($id: Int!) { one: app(id: $id) { id name } }",
        "apps",
    ),
}


def option_of(node: Mapping[str, Any]) -> dict[str, str]:
    """A row as an option: users read "Name <email>", the rest their name."""
    name = node.get("name") or node.get("id")
    label = f"{name} <{node['email']}>" if node.get("email") else str(name)
    return {"value": str(node.get("id")), "label": label}


def with_kept(options: list[dict[str, str]], kept: dict[str, str] | None) -> list[dict[str, str]]:
    """``options`` with ``kept`` first when it is not among them."""
    if kept is None or any(o["value"] == kept["value"] for o in options):
        return options
    return [kept, *options]


def cut_note(counts: Mapping[str, int], search: str) -> str:
    """Which selects show only part of what matches, in words ("" when every one is whole);
    ``counts`` maps a plural ("users") to how many match."""
    cut = [f"{n:,} {plural}" for plural, n in counts.items() if n > OPTION_LIMIT]
    if not cut:
        return ""
    matching = f' matching "{search}"' if search else ""
    return (
        f"The first {OPTION_LIMIT} by name of {', '.join(cut)}{matching} are offered: "
        "type in Find to narrow them."
    )


async def find(state: Any, kind: str, search: str) -> tuple[list[dict[str, str]], int]:
    """The first ``OPTION_LIMIT`` options of ``kind`` matching ``search``, and how many match."""
    data = await state._gql(KINDS[kind].search, {"q": search or None, "n": OPTION_LIMIT})
    conn = data.get("list") or {}
    return [option_of(n) for n in fmt.nodes(conn)], int(fmt.to_float(conn.get("totalCount")))


async def known(
    state: Any, kind: str, value: str, seen: list[dict[str, str]]
) -> dict[str, str] | None:
    """The option for ``value``: from ``seen`` (options shown before), else read by id, else
    "#id" (a value that reads as no row: the select still shows it is chosen)."""
    if not value:
        return None
    hit = next((o for o in seen if o["value"] == value), None)
    if hit is not None:
        return hit
    try:
        one = (await state._gql(KINDS[kind].one, {"id": int(value)})).get("one")
    except (ApiError, ValueError):
        one = None
    return option_of(one) if one else {"value": value, "label": f"#{value}"}


class Choices(rx.State, mixin=True):
    """One bounded, searchable select of ``CHOICE_KIND`` (module docstring)."""

    CHOICE_KIND: ClassVar[str] = "org"

    choice_options: list[dict[str, str]] = []
    choice_search: str = ""
    choice_note: str = ""
    #: The value picked in the select (kept offered when a search leaves it out).
    choice_pick: str = ""

    def _kept_choice(self) -> str:
        """The value that must stay offered (a page whose select is a filter overrides this)."""
        return self.choice_pick

    async def _load_choices(self) -> None:
        """The first options matching Find, the kept value first; on a refusal the select keeps
        what it had (the form or the address still works with an id)."""
        search = self.choice_search.strip()
        try:
            options, total = await find(self, self.CHOICE_KIND, search)
            kept = await known(self, self.CHOICE_KIND, self._kept_choice(), self.choice_options)
        except ApiError:
            return
        self.choice_options = with_kept(options, kept)
        self.choice_note = cut_note({KINDS[self.CHOICE_KIND].plural: total}, search)

    def _keep_option(self, value: str, label: str) -> None:
        """Offer ``value`` (already named, e.g. a row's organization) and make it the pick."""
        self.choice_pick = value
        if value:
            self.choice_options = with_kept(self.choice_options, {"value": value, "label": label})

    @rx.event
    async def find_choices(self, value: str) -> None:
        """The Find box: narrow the select (not a filter)."""
        self.choice_search = str(value)[:100]
        await self._load_choices()

    @rx.event
    def pick_choice(self, value: str) -> None:
        self.choice_pick = str(value)
