"""Sign in with email and password; the token stays in this browser tab's session."""

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
