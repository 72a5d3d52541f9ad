"""Keys: every gateway API key the viewer may manage (user and app keys) in one table, with
owner, prefix, dates, last use, spend this period and limits; revoke, rotate (the new secret
shown once, the old key retired at once or after a grace period), limits (the shared limits
dialog, ``state.limits``) and expiry. The API decides who sees which keys: super_admins all,
org_admins their organization's users' and apps', members their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.filters import FilterField, parse_time
from frontend_reflex.state.pager import ListQuery, ServerList

ROUTE = "/keys"
KEY_FIELDS: tuple[FilterField, ...] = (
    FilterField("q", gql="search"),
    FilterField("kind", "choice", choices=("USER", "APP")),
    FilterField("status", "choice", choices=("ACTIVE", "REVOKED", "EXPIRED")),
    FilterField("org", "int", gql="organizationId"),
)
#: (seconds, label) a rotation offers for the old key's grace period.
GRACE_OPTIONS: list[tuple[str, str]] = [
    ("0", "Revoke the old key now"),
    ("300", "Keep the old key 5 minutes"),
    ("3600", "Keep the old key 1 hour"),
    ("86400", "Keep the old key 24 hours"),
    ("604800", "Keep the old key 7 days"),
    ("custom", "Keep the old key for … seconds"),
]
MAX_GRACE_S = 30 * 24 * 3600


def _owner(node: Mapping[str, Any]) -> tuple[str, str]:
    user, app = node.get("user"), node.get("app")
    if isinstance(user, Mapping) and user:
        owner, org = f"{user.get('name')} <{user.get('email')}>", user.get("organization")
    elif isinstance(app, Mapping) and app:
        owner, org = f"app: {app.get('name')}", app.get("organization")
    else:
        owner, org = "—", None
    return owner, fmt.name_of(org) if isinstance(org, Mapping) else "—"


def rate_text(limits: Mapping[str, Any]) -> str:
    parts = []
    if limits.get("requestsPerMinute") is not None:
        parts.append(f"{fmt.number(limits['requestsPerMinute'])} rpm")
    if limits.get("tokensPerMinute") is not None:
        parts.append(f"{fmt.number(limits['tokensPerMinute'])} tpm")
    return " · ".join(parts) or "no limit"


def spend_text(spend: Any, limits: Mapping[str, Any]) -> str:
    """``$1.20 of $10.00 (monthly)``, or ``$1.20 this month`` without a cap."""
    if not isinstance(spend, Mapping):
        return "—"
    period = queries.stored(spend.get("period"), "monthly")
    spent = fmt.spend(spend.get("costUsd"), spend.get("unknownCostRequests"))
    cap = limits.get("spendCapUsd")
    if cap not in (None, ""):
        return f"{spent} of {fmt.money(cap)} ({period})"
    noun = {"daily": "today", "weekly": "this week"}.get(period, "this month")
    return f"{spent} {noun}"


def key_row(node: Mapping[str, Any]) -> dict[str, str]:
    owner, org = _owner(node)
    limits = node.get("limits") or {}
    status = queries.stored(node.get("status"), "active")
    return {
        "id": str(node.get("id") or ""),
        "name": fmt.text(node.get("name"), "(no name)"),
        "prefix": fmt.text(node.get("prefix")),
        "kind": queries.stored(node.get("kind"), "user"),
        "owner": owner,
        "org": org,
        "status": status,
        "created": fmt.when(node.get("createdAt")),
        "expires": fmt.when(node.get("expiresAt")) if node.get("expiresAt") else "never",
        "last_used": fmt.when(node.get("lastUsedAt")) if node.get("lastUsedAt") else "never",
        "spend": spend_text(node.get("spendThisPeriod"), limits),
        "rate": rate_text(limits),
        "locked": "yes" if limits.get("locks") else "",
    }


def grace_seconds(choice: str, custom: str) -> int:
    """The grace period chosen, in seconds (ValueError in words when it cannot be used)."""
    raw = custom.strip() if choice == "custom" else choice
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_GRACE_S:
        raise ValueError(
            f"The grace period must be a whole number of seconds, 0 to {MAX_GRACE_S:,}."
        )
    return int(raw)


def expiry_value(text: str, now: dt.datetime) -> str | None:
    """An expiry typed as ``YYYY-MM-DDTHH:MM`` (UTC) as an ISO time; "" means never."""
    if not text.strip():
        return None
    when = parse_time(text.strip()[:16])
    if when is None:
        raise ValueError("Pick the expiry date and time (UTC), or leave it empty for never.")
    if when <= now:
        raise ValueError("The expiry must be in the future.")
    return when.isoformat()


class KeysState(Choices, ServerList, AuthState):
    FIELDS: ClassVar[tuple[FilterField, ...]] = KEY_FIELDS
    ROUTE: ClassVar[str] = ROUTE
    PAGE_SIZE: ClassVar[int] = 50

    #: The dialog: "revoke", "rotate" or "expiry" of ``chosen`` (a table row); "" when closed.
    action: str = ""
    chosen: dict[str, str] = {}
    grace: str = "0"
    grace_custom: str = ""
    expiry: str = ""
    action_error: str = ""
    action_ok: str = ""
    secret: str = ""

    def _kept_choice(self) -> str:
        return self.filters.get("org", "")

    def _query(self) -> ListQuery:
        return ListQuery(queries.KEYS_PAGE, {"f": self._graphql_filter() or None}, "apiKeys")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return key_row(node)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            yield redirect
            return
        self._read_url()
        self.action = ""
        self.loading = True
        yield
        if self.is_super:
            # The organization select: the first 50 by name, Find, the filter's org kept.
            await self._load_choices()
        failed = await self._first_page()
        if failed is not None:
            yield failed

    @rx.event
    def open_action(self, action: str, row: dict[str, str]) -> None:
        self.action, self.chosen = action, dict(row)
        self.grace, self.grace_custom = "0", ""
        self.expiry = ""
        self.action_error = self.action_ok = ""

    @rx.event
    def close_action(self, _open: bool = False) -> None:
        self.action = ""

    @rx.event
    def set_grace(self, value: str) -> None:
        self.grace = value

    @rx.event
    def set_grace_custom(self, value: str) -> None:
        self.grace_custom = value

    @rx.event
    def set_expiry(self, value: str) -> None:
        self.expiry = value

    async def _run(self, op: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return await self._gql(*op)
        except ApiError as exc:
            self.action_error = exc.message
            return None

    @rx.event
    async def confirm_action(self) -> Any:
        key_id, prefix = self.chosen.get("id", ""), self.chosen.get("prefix", "")
        self.action_error = ""
        if self.action == "revoke":
            if await self._run(queries.revoke_api_key(key_id)) is None:
                return None
            self.action_ok = f"Key {prefix}… is revoked: requests with it are refused from now on."
        elif self.action == "rotate":
            try:
                grace = grace_seconds(self.grace, self.grace_custom)
            except ValueError as exc:
                self.action_error = str(exc)
                return None
            data = await self._run(queries.rotate_key(key_id, grace))
            if data is None:
                return None
            rotated = data.get("rotateApiKey") or {}
            self.secret = str(rotated.get("secret") or "")
            new = (rotated.get("apiKey") or {}).get("prefix", "")
            old = rotated.get("previous") or {}
            ends = (
                f"keeps working until {fmt.when(old.get('expiresAt'))} UTC"
                if grace
                else "is revoked"
            )
            self.action_ok = f"Key {prefix}… rotated to {new}…: the old key {ends}."
        elif self.action == "expiry":
            try:
                at = expiry_value(self.expiry, dt.datetime.now(dt.UTC))
            except ValueError as exc:
                self.action_error = str(exc)
                return None
            if await self._run(queries.set_key_expiry(key_id, at)) is None:
                return None
            self.action_ok = f"Key {prefix}… " + (
                f"expires at {fmt.when(at)} UTC." if at else "no longer expires."
            )
        self.action = ""
        return await self._read_page()

    @rx.event
    def forget_secret(self) -> None:
        self.secret = ""
