"""The frame around every signed-in page: navigation, who is signed in, sign out."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.state.base import AuthState
from frontend_reflex.state.nav import NavState

# (route, label, icon, who may see it: "admin" | "super" | "all")
NAV: list[tuple[str, str, str, str]] = [
    ("/", "Home", "house", "admin"),
    ("/analytics", "Analytics", "chart_pie", "all"),
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
    ("/audit", "Audit Log", "history", "super"),
    ("/export", "User Activity Export", "download", "admin"),
    ("/errors", "Error Reports", "bug", "admin"),
    ("/me", "My Account", "user", "all"),
]
#: Below this breakpoint the navigation is a drawer behind a menu button; from it on, a sidebar.
WIDE = "md"
# Pages scroll; only tables (Radix's own scroll area) and code scroll sideways inside them.
# Numeric columns line up on the right with digits of equal width.
_CSS = """
.sb-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.rt-TableRoot { max-width: 100%; }
.sb-main pre, .sb-main code { overflow-wrap: anywhere; }
"""


def _link(
    route: str, label: str, icon: str, *, compact: bool | rx.Var[bool] = False
) -> rx.Component:
    text = rx.text(label, size="2")
    return rx.link(
        rx.hstack(
            rx.icon(icon, size=16),
            text if compact is False else rx.cond(compact, rx.fragment(), text),
            align="center",
        ),
        href=route,
        title=label,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        padding_x="0.6em",
        padding_y="0.3em",
        border_radius="6px",
        width="100%",
        _hover={"background": "var(--gray-a3)"},
    )


def _items(wrap: Any = None, *, compact: bool | rx.Var[bool] = False) -> list[rx.Component]:
    items: list[rx.Component] = []
    for route, label, icon, who in NAV:
        link = _link(route, label, icon, compact=compact)
        if wrap is not None:
            link = wrap(link)
        if who == "admin":
            items.append(rx.cond(AuthState.is_admin, link))
        elif who == "super":
            items.append(rx.cond(AuthState.is_super, link))
        else:
            items.append(link)
    return items


def sidebar() -> rx.Component:
    """Wide screens: a sidebar that folds to icons (its width is the user's choice)."""
    folded = NavState.collapsed
    return rx.vstack(
        rx.hstack(
            rx.icon("waypoints"),
            rx.cond(folded, rx.fragment(), rx.heading("Switchboard", size="4", as_="div")),
            rx.spacer(),
            rx.icon_button(
                rx.icon(rx.cond(folded, "panel_left_open", "panel_left_close"), size=16),
                size="1",
                variant="ghost",
                on_click=NavState.toggle,
                aria_label="Fold the navigation",
                id="nav-fold",
            ),
            align="center",
            width="100%",
        ),
        rx.separator(),
        *_items(compact=folded),
        spacing="1",
        width=rx.cond(folded, "4em", "15em"),
        min_width=rx.cond(folded, "4em", "15em"),
        padding="1em",
        border_right="1px solid var(--gray-a5)",
        min_height="100vh",
        position="sticky",
        top="0",
        display=rx.breakpoints(initial="none", **{WIDE: "flex"}),
        as_="nav",
        id="sidebar",
    )


def mobile_nav() -> rx.Component:
    """Narrow screens: a bar with a menu button that opens the navigation over the page (no
    extra package: a panel shown by state; following a link closes it)."""
    return rx.box(
        rx.hstack(
            rx.icon_button(
                rx.icon(rx.cond(NavState.menu_open, "x", "menu")),
                variant="soft",
                on_click=NavState.toggle_menu,
                aria_label="Navigation",
                id="nav-open",
            ),
            rx.heading("Switchboard", size="4", as_="div"),
            align="center",
            padding="0.5em 0.75em",
            border_bottom="1px solid var(--gray-a5)",
            width="100%",
        ),
        rx.cond(
            NavState.menu_open,
            rx.vstack(
                *_items(lambda link: rx.box(link, on_click=NavState.close_menu, width="100%")),
                spacing="1",
                padding="0.75em",
                width="100%",
                background="var(--color-panel-solid)",
                border_bottom="1px solid var(--gray-a5)",
                box_shadow="0 8px 16px var(--black-a4)",
                position="absolute",
                z_index="50",
                as_="nav",
                id="nav-drawer",
            ),
        ),
        position="relative",
        width="100%",
        display=rx.breakpoints(initial="block", **{WIDE: "none"}),
    )


def topbar(title: str) -> rx.Component:
    return rx.flex(
        rx.heading(
            title, size=rx.breakpoints(initial="5", **{WIDE: "7"}), as_="h1", id="page-title"
        ),
        rx.spacer(),
        rx.hstack(
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
            align="center",
        ),
        width="100%",
        align="center",
        wrap="wrap",
        gap="2",
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
    """A signed-in page; admin content is never rendered for someone who may not see it.

    From 390 px up: the navigation is a drawer on narrow screens and a foldable sidebar on wide
    ones; the main column may shrink (``min_width=0``) so wide tables scroll inside themselves.
    """
    allowed = {"admin": AuthState.is_admin, "super": AuthState.is_super}.get(who)
    body = rx.vstack(*children, width="100%", min_width="0", spacing="4")
    content = body if allowed is None else rx.cond(allowed, body, refused())
    return rx.cond(
        AuthState.role != "",
        rx.box(
            rx.el.style(_CSS),
            mobile_nav(),
            rx.hstack(
                sidebar(),
                rx.vstack(
                    topbar(title),
                    notice(),
                    content,
                    width="100%",
                    min_width="0",
                    max_width="80em",
                    padding=rx.breakpoints(initial="0.75em", **{WIDE: "1.5em"}),
                    spacing="3",
                    class_name="sb-main",
                ),
                align="start",
                spacing="0",
                width="100%",
            ),
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), rx.text(" Loading…"), height="100vh"),
    )
