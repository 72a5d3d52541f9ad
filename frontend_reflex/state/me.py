"""My Account: a member's own keys (create, revoke), usage and feature opt-ins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.entity import Confirmable
from frontend_reflex.state.users import usage_summary
from frontend_reflex.validate import optional


def key_row(k: Mapping[str, Any]) -> dict[str, str]:
    return {
        "id": str(k.get("id") or ""),
        "name": fmt.text(k.get("name")),
        "prefix": fmt.text(k.get("prefix")),
        "created": fmt.when(k.get("createdAt")),
        "last_used": fmt.when(k.get("lastUsedAt")) if k.get("lastUsedAt") else "never",
        "status": queries.stored(k.get("status"), "active"),
    }


class MeState(Confirmable, AuthState):
    keys: list[dict[str, str]] = []
    keys_error: str = ""
    secret: str = ""
    usage: dict[str, str] = {}
    usage_error: str = ""
    features: list[dict[str, str]] = []
    features_error: str = ""
    loading: bool = False

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._fetch_keys()
        await self._fetch_usage()
        await self._fetch_features()
        self.loading = False

    async def _fetch_keys(self) -> Any:
        try:
            data = await self._gql(*queries.my_keys(self.user_id))
        except ApiError as exc:
            self.keys_error = exc.message
            return self._on_api_error(exc)
        self.keys = [key_row(k) for k in fmt.nodes(data.get("apiKeys"))]
        self.keys_error = ""
        return None

    async def _fetch_usage(self) -> None:
        try:
            data = await self._gql(*queries.user_usage(self.user_id))
        except ApiError as exc:
            self.usage_error = exc.message
            return
        self.usage = usage_summary(data, self.weekly_cap or "no cap")
        self.usage_error = ""

    async def _fetch_features(self) -> None:
        try:
            data = await self._gql(queries.MY_FEATURES)
        except ApiError as exc:
            self.features_error = exc.message
            return
        self.features = [
            {
                "feature": queries.stored(f.get("name")),
                "description": fmt.text(f.get("description"), ""),
                "enabled": "on" if f.get("enabled") else "off",
            }
            for f in fmt.nodes(data.get("userFeatures"))
            if f.get("offered")
        ]
        self.features_error = ""

    @rx.event
    async def create_key(self, form: dict[str, Any]) -> Any:
        name = optional(form, "name") or "my key"
        try:
            doc, variables = queries.create_api_key(name=name, user_id=self.user_id)
            self.secret = queries.created_secret(await self._gql(doc, variables))
        except ApiError as exc:
            self.keys_error = exc.message
            return self._on_api_error(exc)
        return await self._fetch_keys()

    @rx.event
    def hide_secret(self) -> None:
        self.secret = ""

    @rx.event
    def revoke(self, row: dict[str, str]) -> None:
        self._ask("revoke", row)

    async def _confirmed_revoke(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.revoke_api_key(row["id"]))
        except ApiError as exc:
            self.keys_error = exc.message
            return self._on_api_error(exc)
        return await self._fetch_keys()

    @rx.event
    async def toggle_feature(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.set_opt_in(row["feature"], row["enabled"] != "on"))
        except ApiError as exc:
            self.features_error = exc.message
            return self._on_api_error(exc)
        await self._fetch_features()
        return None
