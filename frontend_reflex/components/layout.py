"""The frame around every signed-in page: navigation, who is signed in, sign out."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.state.base import AuthState

# (route, label, icon, who may see it: "admin" | "super" | "all")
NAV: list[tuple[str, str, str, str]] = [
    ("/", "Home", "house", "admin"),
    ("/users", "Users", "users", "admin"),
    ("/organizations", "Organizations", "building", "admin"),
    ("/apps", "Apps", "app_window", "admin"),
    ("/keys", "Keys", "key_round", "all"),
    ("/router", "Model Router", "shuffle", "admin"),
    ("/agents", "Agent Configurations", "bot", "admin"),
    ("/models", "Available Models", "boxes", "admin"),
    ("/logs", "Gateway Logs", "scroll_text", "all"),
    ("/usage", "Per-User Usage", "chart_bar", "admin"),
    ("/dlp", "DLP", "shield", "admin"),
    ("/settings", "Gateway Settings", "settings", "super"),
    ("/export", "User Activity Export", "download", "admin"),
    ("/errors", "Error Reports", "bug", "admin"),
    ("/me", "My Account", "user", "all"),
]


def _link(route: str, label: str, icon: str) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), align="center"),
        href=route,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        padding_x="0.6em",
        padding_y="0.3em",
        border_radius="6px",
        width="100%",
        _hover={"background": "var(--gray-a3)"},
    )


def sidebar() -> rx.Component:
    items: list[rx.Component] = []
    for route, label, icon, who in NAV:
        link = _link(route, label, icon)
        if who == "admin":
            items.append(rx.cond(AuthState.is_admin, link))
        elif who == "super":
            items.append(rx.cond(AuthState.is_super, link))
        else:
            items.append(link)
    return rx.vstack(
        rx.hstack(
            rx.icon("waypoints"), rx.heading("Switchboard", size="4", as_="div"), align="center"
        ),
        rx.separator(),
        *items,
        spacing="1",
        width="15em",
        min_width="15em",
        padding="1em",
        border_right="1px solid var(--gray-a5)",
        min_height="100vh",
        as_="nav",
    )


def topbar(title: str) -> rx.Component:
    return rx.hstack(
        rx.heading(title, size="7", as_="h1", id="page-title"),
        rx.spacer(),
        rx.vstack(
            rx.text(AuthState.user_email, size="2", weight="medium", id="whoami"),
            rx.text(
                AuthState.role_label,
                rx.cond(AuthState.org_name != "", " · " + AuthState.org_name, ""),
                size="1",
                color_scheme="gray",
                id="whoami-role",
            ),
            spacing="0",
            align="end",
        ),
        rx.button("Sign out", variant="soft", size="1", on_click=AuthState.logout, id="logout"),
        width="100%",
        align="center",
        padding_bottom="0.5em",
    )


def notice() -> rx.Component:
    return rx.cond(
        AuthState.notice != "",
        rx.callout(
            rx.hstack(
                rx.text(AuthState.notice),
                rx.button("Dismiss", size="1", variant="ghost", on_click=AuthState.dismiss_notice),
            ),
            icon="info",
            size="1",
            id="notice",
        ),
    )


def refused() -> rx.Component:
    return rx.callout(
        "This page is for administrators. Your own keys and usage are under My Account.",
        icon="lock",
        color_scheme="amber",
        id="refused",
    )


def shell(title: str, *children: rx.Component, who: str = "admin") -> rx.Component:
    """A signed-in page; admin content is never rendered for someone who may not see it."""
    allowed = {"admin": AuthState.is_admin, "super": AuthState.is_super}.get(who)
    body = rx.vstack(*children, width="100%", spacing="4")
    content = body if allowed is None else rx.cond(allowed, body, refused())
    return rx.cond(
        AuthState.role != "",
        rx.hstack(
            sidebar(),
            rx.vstack(
                topbar(title),
                notice(),
                content,
                width="100%",
                max_width="80em",
                padding="1.5em",
                spacing="3",
            ),
            align="start",
            spacing="0",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), rx.text(" Loading…"), height="100vh"),
    )
