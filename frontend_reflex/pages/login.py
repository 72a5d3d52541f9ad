"""Sign in with email and password, or with single sign-on when the gateway offers it; the
token stays in this browser tab's session."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import error_text
from frontend_reflex.state.base import AuthState


def page() -> rx.Component:
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.icon("waypoints"),
                        rx.heading("Switchboard", size="6", as_="h1"),
                        align="center",
                    ),
                    rx.text("Sign in to the admin console", color_scheme="gray", size="2"),
                    rx.input(
                        name="email",
                        id="email",
                        type="email",
                        placeholder="Email",
                        auto_complete="username",
                        width="100%",
                    ),
                    rx.input(
                        name="password",
                        id="password",
                        type="password",
                        placeholder="Password",
                        auto_complete="current-password",
                        width="100%",
                    ),
                    error_text(AuthState.login_error),
                    rx.button(
                        "Sign in",
                        type="submit",
                        id="login-submit",
                        loading=AuthState.login_busy,
                        width="100%",
                    ),
                    rx.cond(
                        AuthState.sso_url != "",
                        rx.vstack(
                            rx.hstack(
                                rx.separator(size="4"),
                                rx.text("or", size="1", color_scheme="gray"),
                                rx.separator(size="4"),
                                align="center",
                                width="100%",
                            ),
                            # A plain link: the browser goes to the gateway, then the provider.
                            rx.el.a(
                                rx.button(
                                    rx.icon("key_round"),
                                    "Sign in with SSO",
                                    type="button",
                                    variant="outline",
                                    width="100%",
                                ),
                                href=AuthState.sso_url,
                                id="sso-login",
                                style={"width": "100%"},
                            ),
                            rx.text(AuthState.sso_label, size="1", color_scheme="gray"),
                            spacing="2",
                            width="100%",
                            align="center",
                        ),
                    ),
                    rx.text(
                        "First time? `make run` printed the first administrator's email and "
                        "password (also in data/first-login.txt).",
                        size="1",
                        color_scheme="gray",
                    ),
                    spacing="3",
                    width="22em",
                ),
                on_submit=AuthState.login,
            ),
            size="4",
        ),
        height="100vh",
    )


def sso_page() -> rx.Component:
    """Where the gateway sends the browser after single sign-on (``/sso?ticket=...``): the
    ticket is traded for a session on load (``AuthState.finish_sso``), then on to the home page;
    a failure goes back to the login page with its reason."""
    return rx.center(
        rx.hstack(rx.spinner(), rx.text("Signing you in…", id="sso-finishing"), align="center"),
        height="100vh",
    )
