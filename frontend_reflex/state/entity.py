"""The one piece every list page's state shares: load behind the role guard, fetch, page,
create from a form, edit in a dialog, act on a row, and ask before anything destructive.

A page declares what differs and nothing else::

    class AppsState(EntityState, AuthState):
        FIELDS = (FilterField("q", gql="search"),)      # its filters, if any (``filters``)
        ROUTE = "/apps"                                 # where they are kept in the address
        def _query(self) -> ListQuery: ...              # one server page (``pager``)
        def _row(self, node) -> dict[str, str]: ...     # a node as a table row
        def _create_op(self, form) -> tuple[Op, str]: ...   # the mutation and the "done" text
        def _update_op(self, row, form) -> Op: ...          # the mutation for the edit dialog

plus ``_fetch_options()`` for the forms' option lists (``choices.Choices``: bounded and
searchable, ``_on_edit`` keeps the row's current value offered), and, for a confirmed action, a
``_confirmed_<action>(row)`` coroutine (``ask("delete", row)`` opens the dialog; "Yes" runs it).
Errors never escape: form mistakes and the gateway's refusals land in ``create_error`` /
``edit_error`` / ``table_error`` as words next to what caused them.

``BoundedEntityState`` is the same with the list fetched whole (``_fetch_rows``) and paged in the
browser: only for lists the API answers whole, without cursors (aliases, agents, the catalog).
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.api import ApiError
from frontend_reflex.queries import Op
from frontend_reflex.state.pager import ServerList
from frontend_reflex.state.paging import PAGE_SIZE, Paged
from frontend_reflex.validate import FormError

#: How a confirmation reads, per action: (title, what happens, button).
CONFIRM_TEXT: dict[str, tuple[str, str, str]] = {
    "delete": ("Delete {label}?", "This cannot be undone.", "Delete"),
    "revoke": (
        "Revoke {label}?",
        "Requests with this key are refused from now on. This cannot be undone.",
        "Revoke",
    ),
    "suspend": (
        "Suspend {label}?",
        "They cannot sign in and their keys are refused until you activate them again.",
        "Suspend",
    ),
    "deactivate": (
        "Deactivate {label}?",
        "Its keys are refused until you activate it again.",
        "Deactivate",
    ),
}


#: Row fields that name a row in a confirmation, most telling first.
LABEL_KEYS = ("label", "name", "requested", "model", "primary", "prefix", "id")


def confirm_text(action: str, label: str) -> tuple[str, str, str]:
    """The dialog's words; ``delete_rule`` reads as ``delete`` (the verb before ``_``)."""
    verb = action.split("_", 1)[0]
    title, body, button = CONFIRM_TEXT.get(verb, ("{label}: are you sure?", "", verb.capitalize()))
    return title.format(label=label or "this"), body, button


class Confirmable(rx.State, mixin=True):
    """Ask before a destructive action: ``ask(action, row)``, then ``_confirmed_<action>``."""

    confirm_action: str = ""
    confirm_row: dict[str, str] = {}
    confirm_title: str = ""
    confirm_body: str = ""
    confirm_button: str = ""

    @rx.var
    def confirm_open(self) -> bool:
        return self.confirm_action != ""

    def _ask(self, action: str, row: dict[str, str]) -> None:
        """Open the confirmation (from another handler: ``self._ask("suspend", row)``)."""
        label = next((row[k] for k in LABEL_KEYS if row.get(k)), "")
        self.confirm_title, self.confirm_body, self.confirm_button = confirm_text(action, label)
        self.confirm_row = dict(row)
        self.confirm_action = action

    @rx.event
    def ask(self, action: str, row: dict[str, str]) -> None:
        self._ask(action, row)

    @rx.event
    def cancel_confirm(self, _open: bool = False) -> None:
        self.confirm_action = ""

    @rx.event
    async def confirmed(self) -> Any:
        action, row = self.confirm_action, dict(self.confirm_row)
        self.confirm_action = ""
        handler = getattr(self, f"_confirmed_{action}", None)
        return None if handler is None else await handler(row)


class EntityForms(Confirmable, mixin=True):
    """Load, create, edit and row actions of one list page, whichever way it is paged."""

    create_error: str = ""
    create_ok: str = ""
    table_error: str = ""
    editing: dict[str, str] = {}
    edit_error: str = ""

    # -- declarations (overridden by each page) -----------------------------------------------
    def _access(self) -> dict[str, bool]:
        """The guard's arguments: who may open the page."""
        return {"admin": True}

    async def _fetch(self, *, first_page: bool = False) -> Any:
        """Read the list again (None, or the redirect a lost session needs)."""
        raise NotImplementedError

    async def _start(self) -> Any:
        """What opening the page reads (after the guard)."""
        return await self._fetch(first_page=True)

    def _create_op(self, form: dict[str, Any]) -> tuple[Op, str]:
        raise FormError("This list cannot be added to here.")

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> Op:
        raise FormError("This list cannot be edited here.")

    def _on_edit(self, row: dict[str, str]) -> None:
        """What else opening the edit dialog sets (a bounded select's current value)."""

    # -- shared behaviour ---------------------------------------------------------------------
    @rx.var
    def edit_open(self) -> bool:
        return bool(self.editing)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(**self._access())  # type: ignore[attr-defined]
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._start()

    @rx.event
    async def reload(self) -> Any:
        return await self._fetch()

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.create_ok = ""
        try:
            op, done = self._create_op(form)
            await self._gql(*op)  # type: ignore[attr-defined]
        except FormError as exc:
            self.create_error = str(exc)
            return None
        except ApiError as exc:
            self.create_error = exc.message
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        self.create_error = ""
        self.create_ok = done
        # Lists are newest first: page one shows what was just made.
        return await self._fetch(first_page=True)

    @rx.event
    def open_edit(self, row: dict[str, str]) -> None:
        self._on_edit(row)
        self.editing = dict(row)
        self.edit_error = ""

    @rx.event
    def close_edit(self, _open: bool = False) -> None:
        self.editing = {}

    @rx.event
    async def save_edit(self, form: dict[str, Any]) -> Any:
        try:
            await self._gql(*self._update_op(self.editing, form))  # type: ignore[attr-defined]
        except FormError as exc:
            self.edit_error = str(exc)
            return None
        except ApiError as exc:
            self.edit_error = exc.message
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        self.editing = {}
        return await self._fetch()

    async def _act(self, row: dict[str, str], op: Op, *, label: str = "") -> Any:
        """Run a row's mutation; its refusal is shown above the table, naming the row."""
        try:
            await self._gql(*op)  # type: ignore[attr-defined]
        except ApiError as exc:
            self.table_error = f"{label or row.get('name') or row.get('id')}: {exc.message}"
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        self.table_error = ""
        return await self._fetch()


class EntityState(EntityForms, ServerList, mixin=True):
    """A list that can grow: one server page at a time with the API's true total."""

    async def _fetch_options(self) -> None:
        """Fill the forms' option lists (a page without any keeps this)."""

    async def _start(self) -> Any:
        """The filter in the address, the forms' options, then page one."""
        self._read_url()
        try:
            await self._fetch_options()
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        return await self._first_page()

    async def _fetch(self, *, first_page: bool = False) -> Any:
        return await (self._first_page() if first_page else self._read_page())


class BoundedEntityState(EntityForms, Paged, mixin=True):
    """A list the API answers whole (module docstring): fetched at once, paged in the browser."""

    async def _fetch_rows(self) -> None:
        raise NotImplementedError

    async def _fetch(self, *, first_page: bool = False) -> Any:
        try:
            await self._fetch_rows()
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        self.error = ""
        self.loading = False
        self.page = 0 if first_page else min(self.page, max(0, (len(self.rows) - 1) // PAGE_SIZE))
        return None
