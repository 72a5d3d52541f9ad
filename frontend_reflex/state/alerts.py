"""Alerts on the settings page: channels (with "send test"), rules and recent deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.entity import Confirmable
from frontend_reflex.validate import FormError, checked, model_list, optional, required


def channel_row(c: Mapping[str, Any]) -> dict[str, str]:
    kind = queries.stored(c.get("kind"))
    if kind == "email":
        target = ", ".join(str(r) for r in c.get("recipients") or [])
        target = f"{target} via {fmt.text(c.get('smtpHost'))}:{c.get('smtpPort') or 25}"
    else:
        target = fmt.text(c.get("url"))
    last4 = c.get("secretLast4") if c.get("secretSet") else None
    return {
        "name": fmt.text(c.get("name")),
        "kind": kind,
        "target": target,
        "secret": f"••••{last4}" if last4 else "none",
        "enabled": fmt.yes_no(c.get("enabled", True), "enabled", "disabled"),
    }


def rule_row(r: Mapping[str, Any]) -> dict[str, str]:
    kind = queries.stored(r.get("kind"))
    if kind == "cap":
        scope = queries.stored(r.get("scopeKind"), "all")
        thresholds = ", ".join(f"{t}%" for t in r.get("thresholds") or [])
        watches = f"{thresholds} of {scope} caps"
    elif kind == "error_rate":
        watches = (
            f"errors above {r.get('errorRatePercent')}% of {r.get('provider') or 'any provider'}"
            f" over {int(r.get('windowSeconds') or 300) // 60} min"
        )
    else:
        watches = f"circuits of {r.get('provider') or 'any provider'}"
    return {
        "name": fmt.text(r.get("name")),
        "kind": kind,
        "watches": watches,
        "channels": ", ".join(str(c) for c in r.get("channels") or []),
        "enabled": fmt.yes_no(r.get("enabled", True), "enabled", "disabled"),
    }


def delivery_row(d: Mapping[str, Any]) -> dict[str, str]:
    return {
        "when": fmt.when(d.get("createdAt")),
        "kind": fmt.text(d.get("kind")),
        "title": fmt.text(d.get("title")),
        "channel": fmt.text(d.get("channel"), "(deleted)"),
        "status": queries.stored(d.get("status")),
        "attempts": fmt.number(d.get("attempts")),
        "error": fmt.text(d.get("lastError"), ""),
    }


def send_test_outcome(channel: str, delivery: Mapping[str, Any]) -> tuple[str, str]:
    """(ok, error) messages for the answer of "send test"."""
    status = queries.stored(delivery.get("status"))
    error = delivery.get("lastError")
    if status == "sent":
        return f"Test alert delivered to {channel}.", ""
    if status == "pending" and not error:
        return f"Test alert to {channel} is queued; the Deliveries list shows when it is sent.", ""
    if status == "pending":
        return "", f"Test alert to {channel} failed: {error}; it is retried."
    return "", f"Test alert to {channel} failed for good: {error or 'no reason given'}."


def channel_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    kind = optional(form, "kind") or "webhook"
    fields: dict[str, Any] = {"kind": kind, "enabled": checked(form, "enabled")}
    if kind == "email":
        port = optional(form, "smtp_port")
        if port and not port.isdigit():
            raise FormError("The SMTP port must be a number, like 587.")
        fields |= {
            "smtpHost": optional(form, "smtp_host") or None,
            "smtpPort": int(port) if port else None,
            "smtpSecurity": optional(form, "smtp_security") or "none",
            "sender": optional(form, "sender") or None,
            "recipients": model_list(optional(form, "recipients")),
        }
    else:
        fields["url"] = optional(form, "url") or None
    # Write-only: an empty box keeps the stored secret.
    if optional(form, "secret"):
        fields["secret"] = optional(form, "secret")
    return fields


def rule_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    kind = optional(form, "kind") or "cap"
    fields: dict[str, Any] = {
        "kind": kind,
        "channels": model_list(optional(form, "channels")),
        "enabled": checked(form, "enabled"),
        "provider": optional(form, "provider") or None,
    }
    if not fields["channels"]:
        raise FormError("Name at least one channel.")
    if kind == "cap":
        raw = [t.rstrip("%") for t in model_list(optional(form, "thresholds"))]
        if not raw or not all(t.isdigit() for t in raw):
            raise FormError("Thresholds are percents, like 50, 80, 100.")
        fields["thresholds"] = [int(t) for t in raw]
        fields["scopeKind"] = optional(form, "scope_kind") or None
    elif kind == "error_rate":
        try:
            fields["errorRatePercent"] = float(optional(form, "error_rate") or "")
        except ValueError:
            raise FormError("The error-rate bound is a percent, like 20.") from None
    return fields


class AlertsState(Confirmable, AuthState):
    channels: list[dict[str, str]] = []
    rules: list[dict[str, str]] = []
    deliveries: list[dict[str, str]] = []
    alert_error: str = ""
    alert_ok: str = ""

    @rx.event
    async def load(self) -> Any:
        if not self.is_super:
            return None
        return await self._fetch()

    @rx.event
    async def tick(self, _value: Any = None) -> Any:
        if self.is_super and self.router.url.path == "/settings":
            return await self._fetch()
        return None

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.ALERTS)
        except ApiError as exc:
            self.alert_error = exc.message
            return self._on_api_error(exc)
        self.channels = [channel_row(c) for c in data.get("alertChannels") or []]
        self.rules = [rule_row(r) for r in data.get("alertRules") or []]
        self.deliveries = [delivery_row(d) for d in data.get("alertDeliveries") or []]
        return None

    async def _run(self, op: queries.Op, ok: str) -> Any:
        try:
            await self._gql(*op)
        except ApiError as exc:
            self.alert_error = exc.message
            self.alert_ok = ""
            return self._on_api_error(exc)
        self.alert_error = ""
        self.alert_ok = ok
        return await self._fetch()

    @rx.event
    async def save_channel(self, form: dict[str, Any]) -> Any:
        try:
            name = required(form, "name", "Channel name")
            op = queries.set_alert_channel(name, channel_fields(form))
        except FormError as exc:
            self.alert_error, self.alert_ok = str(exc), ""
            return None
        result = await self._run(op, f"Channel {name} saved.")
        return result if self.alert_error else rx.set_value("alert-secret", "")

    @rx.event
    async def save_rule(self, form: dict[str, Any]) -> Any:
        try:
            name = required(form, "name", "Rule name")
            op = queries.set_alert_rule(name, rule_fields(form))
        except FormError as exc:
            self.alert_error, self.alert_ok = str(exc), ""
            return None
        return await self._run(op, f"Rule {name} saved; it is evaluated from now on.")

    @rx.event
    async def send_test(self, row: dict[str, str]) -> Any:
        name = row["name"]
        try:
            data = await self._gql(*queries.send_test_alert(name))
        except ApiError as exc:
            self.alert_error, self.alert_ok = exc.message, ""
            return self._on_api_error(exc)
        self.alert_ok, self.alert_error = send_test_outcome(name, data.get("sendTestAlert") or {})
        return await self._fetch()

    @rx.event
    def delete_channel(self, row: dict[str, str]) -> None:
        self._ask("delete_channel", row)

    @rx.event
    def delete_rule(self, row: dict[str, str]) -> None:
        self._ask("delete_rule", row)

    async def _confirmed_delete_channel(self, row: dict[str, str]) -> Any:
        op = queries.delete_alert_channel(row["name"])
        return await self._run(op, f"Channel {row['name']} removed.")

    async def _confirmed_delete_rule(self, row: dict[str, str]) -> Any:
        return await self._run(
            queries.delete_alert_rule(row["name"]), f"Rule {row['name']} removed."
        )
