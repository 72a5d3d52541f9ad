"""Limits of a user, an app, an organization or a key, edited in one dialog on their pages.

The gateway's ``Limits``: requests and tokens per minute, a model allowlist, a spend cap and its
period, and (keys) the limits an administrator set, which the key's owner may tighten but not
raise. The dialog sends only what the person changed (``LimitsInput``: a field left out stays,
null removes it), so an owner editing their key's tokens never re-sends an administrator's
requests-per-minute; a refusal (an owner raising an administrator's limit, an org_admin touching
an organization) is the gateway's message, shown in the dialog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.validate import FormError, money, optional

MAX_RPM = 1_000_000
MAX_TPM = 1_000_000_000
MAX_MODELS = 100
PERIODS = ("daily", "weekly", "monthly")
#: How each lockable limit reads in the dialog (``LimitName`` enum names).
LOCK_LABELS = {
    "REQUESTS_PER_MINUTE": "Requests per minute",
    "TOKENS_PER_MINUTE": "Tokens per minute",
    "SPEND_CAP": "Spend cap",
    "ALLOWED_MODELS": "Allowed models",
}
#: What a dialog is about, by ``LimitTarget``.
NOUNS = {"USER": "user", "APP": "app", "ORGANIZATION": "organization", "KEY": "key"}


def _decimal_text(value: Any) -> str:
    """``"25.00000000"`` -> ``"25"``, ``"2.50000000"`` -> ``"2.5"`` (what a person typed)."""
    if value in (None, ""):
        return ""
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except InvalidOperation:
        return str(value)


def limit_values(limits: Mapping[str, Any]) -> dict[str, str]:
    """The form's starting values (strings; "" is no limit)."""
    models = limits.get("allowedModels")
    return {
        "rpm": "" if limits.get("requestsPerMinute") is None else str(limits["requestsPerMinute"]),
        "tpm": "" if limits.get("tokensPerMinute") is None else str(limits["tokensPerMinute"]),
        "models": ", ".join(str(m) for m in models or []),
        # An empty allowlist (no model at all) reads differently from no allowlist (any model).
        "no_models": "yes" if models == [] else "",
        "cap": _decimal_text(limits.get("spendCapUsd")),
        "period": queries.stored(limits.get("capPeriod"), "monthly"),
    }


def lock_rows(limits: Mapping[str, Any]) -> list[dict[str, str]]:
    """The limits an administrator set on a key: which, its ceiling, who set it and when."""
    rows = []
    for lock in limits.get("locks") or []:
        # No role: the gateway could not read one from the lock's record.
        role = queries.stored(lock.get("setByRole")).replace("_", " ")
        name = lock.get("setByName")
        by = lock.get("setById")
        if name:
            who = f"{name} ({role})" if role else str(name)
        else:
            who = (f"a {role}" if role else "an administrator") + (f" (user #{by})" if by else "")
        rows.append(
            {
                "limit": LOCK_LABELS.get(str(lock.get("limit")), str(lock.get("limit"))),
                "ceiling": fmt.text(lock.get("ceiling")),
                "who": who,
                "when": fmt.when(lock.get("setAt")) if lock.get("setAt") else "",
            }
        )
    return rows


def _per_minute(form: Mapping[str, Any], key: str, label: str, top: int) -> int | None:
    raw = optional(form, key).replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise FormError(
            f"{label} must be a whole number from 1 to {top:,} (leave it empty for no limit)."
        )
    return int(raw)


def _models(form: Mapping[str, Any]) -> list[str] | None:
    names = list(dict.fromkeys(m for m in re.split(r"[,\s]+", optional(form, "models")) if m))
    if len(names) > MAX_MODELS:
        raise FormError(f"Allowed models may list at most {MAX_MODELS} names or patterns.")
    too_long = [m for m in names if len(m) > 200]
    if too_long:
        raise FormError(f"Model name too long: {too_long[0][:40]}…")
    return names or None


def _same_models(new: list[str] | None, current: Mapping[str, str]) -> bool:
    if new is None:
        # An empty box leaves an empty allowlist as it is (it cannot be typed otherwise).
        return current.get("models", "") == ""
    old = [m for m in re.split(r"[,\s]+", current.get("models", "")) if m]
    return [m.lower() for m in new] == [m.lower() for m in old]


def limits_changes(
    form: Mapping[str, Any], current: Mapping[str, str], target: str
) -> dict[str, Any]:
    """The ``LimitsInput`` of what differs from ``current`` (``FormError`` on bad input)."""
    changes: dict[str, Any] = {}
    rpm = _per_minute(form, "rpm", "Requests per minute", MAX_RPM)
    if str(rpm or "") != current.get("rpm", ""):
        changes["requestsPerMinute"] = rpm
    tpm = _per_minute(form, "tpm", "Tokens per minute", MAX_TPM)
    if str(tpm or "") != current.get("tpm", ""):
        changes["tokensPerMinute"] = tpm
    models = _models(form)
    if not _same_models(models, current):
        changes["allowedModels"] = models
    cap = money(form, "cap", "Spend cap")
    old_cap = current.get("cap", "")
    if (cap is None) != (old_cap == "") or (
        cap is not None and old_cap and Decimal(cap) != Decimal(old_cap)
    ):
        changes["spendCapUsd"] = cap
    if target != "USER":  # a user's cap is weekly (ISO week): nothing to choose
        period = optional(form, "period") or current.get("period", "monthly")
        if period not in PERIODS:
            raise FormError("Cap period must be daily, weekly or monthly.")
        if period != current.get("period"):
            changes["capPeriod"] = period
    return changes


class LimitsState(AuthState):
    """The limits dialog; pages open it with ``open_user`` / ``open_app`` / ``open_org`` /
    ``open_key`` and a table row (``id``, ``name``, keys also ``prefix``)."""

    is_open: bool = False
    target: str = ""
    target_id: str = ""
    title: str = ""
    values: dict[str, str] = {}
    locks: list[dict[str, str]] = []
    loaded: bool = False
    can_edit: bool = True
    error: str = ""
    ok: str = ""

    @rx.var
    def is_user(self) -> bool:
        return self.target == "USER"

    @rx.var
    def is_key(self) -> bool:
        return self.target == "KEY"

    async def _open(self, target: str, row: Mapping[str, str], title: str) -> Any:
        self.target, self.target_id, self.title = target, str(row.get("id") or ""), title
        self.values, self.locks = {}, []
        self.loaded, self.is_open = False, True
        self.error = self.ok = ""
        # Only super_admins set an organization's limits; its org_admin may read them.
        self.can_edit = target != "ORGANIZATION" or self.role == "super_admin"
        yield
        try:
            data = await self._gql(queries.LIMITS, {"target": target, "id": int(self.target_id)})
        except ApiError as exc:
            self.error = exc.message
            yield self._on_api_error(exc)
            return
        self._show(data.get("limits") or {})

    def _show(self, limits: Mapping[str, Any]) -> None:
        self.values = limit_values(limits)
        self.locks = lock_rows(limits)
        self.loaded = True

    @rx.event
    async def open_user(self, row: dict[str, str]) -> Any:
        async for step in self._open("USER", row, f"Limits of {row.get('name', 'user')}"):
            yield step

    @rx.event
    async def open_app(self, row: dict[str, str]) -> Any:
        async for step in self._open("APP", row, f"Limits of app {row.get('name', '')}"):
            yield step

    @rx.event
    async def open_org(self, row: dict[str, str]) -> Any:
        title = f"Limits of organization {row.get('name', '')}"
        async for step in self._open("ORGANIZATION", row, title):
            yield step

    @rx.event
    async def open_key(self, row: dict[str, str]) -> Any:
        title = f"Limits of key {row.get('name', '')} ({row.get('prefix', '')}…)"
        async for step in self._open("KEY", row, title):
            yield step

    @rx.event
    def close(self, _open: bool = False) -> None:
        self.is_open = False
        self.loaded = False

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self.ok = ""
        try:
            changes = limits_changes(form, self.values, self.target)
        except FormError as exc:
            self.error = str(exc)
            return None
        if not changes:
            self.error = ""
            self.ok = "Nothing changed."
            return None
        try:
            data = await self._gql(*queries.set_limits(self.target, self.target_id, changes))
        except ApiError as exc:
            self.error = exc.message
            return self._on_api_error(exc)
        self.error = ""
        self._show(data.get("setLimits") or {})
        self.ok = "Limits saved: requests are held to them from now on."
        return self._refresh_page()

    def _refresh_page(self) -> Any:
        """The page behind the dialog shows a cap the dialog may have changed: reload it."""
        if self.target == "USER":
            from frontend_reflex.state.users import UsersState

            return UsersState.load
        if self.target == "ORGANIZATION":
            from frontend_reflex.state.orgs import OrgsState

            return OrgsState.load
        if self.target == "KEY" and self.router.url.path.rstrip("/") == "/keys":
            from frontend_reflex.state.keys import KeysState

            return KeysState.load
        return None
