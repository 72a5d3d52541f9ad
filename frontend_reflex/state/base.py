"""The browser session: who is signed in, their token, and the guards every page runs on load."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError

ADMIN_ROLES = ("super_admin", "org_admin")
EXPIRED = "Your session has expired. Please sign in again."


class AuthState(rx.State):
    """Held per browser tab: the session token lives in the tab's sessionStorage."""

    token: str = rx.SessionStorage("", name="switchboard_session")
    user_id: str = ""
    user_name: str = ""
    user_email: str = ""
    role: str = ""
    org_name: str = ""
    weekly_cap: str = ""
    login_error: str = ""
    login_busy: bool = False
    notice: str = ""
    #: Where "Sign in with SSO" starts (the gateway's /auth/oidc/login); empty: no SSO.
    sso_url: str = ""
    sso_label: str = ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @rx.var
    def is_super(self) -> bool:
        return self.role == "super_admin"

    @rx.var
    def role_label(self) -> str:
        return self.role.replace("_", " ")

    async def _gql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await api.execute(query, variables, token=self.token or None)

    def _forget(self) -> None:
        self.token = ""
        self.user_id = self.user_name = self.user_email = self.role = self.org_name = ""

    async def _ensure_me(self) -> bool:
        """Loads the signed-in user once per session; False when nobody (valid) is signed in."""
        if not self.token:
            return False
        if self.role:
            return True
        try:
            data = await self._gql(queries.ME)
        except ApiError as exc:
            if exc.auth or exc.forbidden:
                self._forget()
                self.login_error = EXPIRED
            else:
                self.login_error = exc.message
            return False
        me = data.get("me")
        if not me:
            self._forget()
            return False
        self._remember(me)
        return True

    def _remember(self, me: Mapping[str, Any]) -> None:
        self.user_id = str(me.get("id") or "")
        self.user_name = str(me.get("name") or "")
        self.user_email = str(me.get("email") or "")
        self.role = queries.stored(me.get("role"), "member")
        self.weekly_cap = fmt.cap(me.get("weeklyCapUsd"))
        org = me.get("organization") or {}
        self.org_name = str(org.get("name") or "") if isinstance(org, Mapping) else ""

    def _clear_messages(self) -> None:
        """Forget the last visit's form messages and any secret still held (shown once)."""
        for name in type(self).base_vars:
            if (name.endswith(("_error", "_ok")) and name != "login_error") or name == "secret":
                setattr(self, name, "")

    async def _guard(self, *, admin: bool = False, super_only: bool = False) -> Any:
        """None when the page may load; otherwise the redirect to run instead.

        Also clears the page's leftover messages: every page's ``load`` starts here.
        """
        self._clear_messages()
        if not await self._ensure_me():
            return rx.redirect("/login")
        if (admin and not self.is_admin) or (super_only and not self.is_super):
            self.notice = "That page is for administrators; here is your own account."
            return rx.redirect("/me")
        return None

    def _on_api_error(self, exc: ApiError) -> Any:
        """Session problems send the browser to the login page; other errors stay on the page."""
        if exc.auth:
            self._forget()
            self.login_error = EXPIRED
            return rx.redirect("/login")
        return None

    @rx.event
    async def require_login(self) -> Any:
        return await self._guard()

    @rx.event
    async def home_redirect(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            return redirect
        return None if self.is_admin else rx.redirect("/me")

    @rx.event
    async def open_login(self) -> Any:
        if self.token and await self._ensure_me():
            return rx.redirect("/" if self.is_admin else "/me")
        try:
            sso = (await api.execute(queries.SSO_LOGIN)).get("ssoLogin") or {}
        except ApiError:
            sso = {}  # the password form still works; the gateway's error shows on sign-in
        self.sso_url = str(sso.get("loginUrl") or "") if sso.get("enabled") else ""
        self.sso_label = str(sso.get("displayName") or "")
        return None

    @rx.event
    async def finish_sso(self) -> Any:
        """The /sso page: the gateway sent a one-time ticket (or why the sign-in failed)."""
        params = self.router.url.query_parameters
        ticket, error = params.get("ticket", ""), params.get("error", "")
        self._forget()
        if not ticket:
            self.login_error = error or "Single sign-on did not finish. Please try again."
            return rx.redirect("/login", replace=True)
        try:
            data = await api.execute(queries.REDEEM_SSO, {"ticket": ticket})
            token, me = queries.redeem_result(data)
            if not token or not me:
                raise ApiError("Single sign-on did not finish. Please try again.")
        except ApiError as exc:
            self.login_error = exc.message
            return rx.redirect("/login", replace=True)
        # The same session a password sign-in gets: the token in this tab's sessionStorage.
        self.token = token
        self._remember(me)
        self.login_error = self.notice = ""
        return rx.redirect("/" if self.is_admin else "/me", replace=True)

    @rx.event
    async def login(self, form: dict[str, Any]) -> Any:
        email = str(form.get("email") or "").strip()
        password = str(form.get("password") or "")
        if not email or not password:
            self.login_error = "Enter your email and password."
            return
        self.login_busy = True
        self.login_error = ""
        yield
        try:
            data = await api.execute(queries.LOGIN, {"email": email, "password": password})
            token, me = queries.login_result(data)
            self.token = token
            if me:
                self._remember(me)
            elif not await self._ensure_me():
                raise ApiError(self.login_error or "Signing in failed.")
        except ApiError as exc:
            self._forget()
            self.login_error = (
                "Wrong email or password."
                if exc.auth or "password" in exc.message.lower()
                else exc.message
            )
            self.login_busy = False
            return
        self.login_busy = False
        self.notice = ""
        yield rx.redirect("/" if self.is_admin else "/me")

    @rx.event
    async def logout(self) -> Any:
        if self.token:
            try:
                await self._gql(queries.LOGOUT)
            except ApiError:
                pass  # the token is dropped here either way
        self._forget()
        self.login_error = ""
        self.notice = ""
        return rx.redirect("/login")

    @rx.event
    def dismiss_notice(self) -> None:
        self.notice = ""
