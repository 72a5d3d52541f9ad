"""Form pieces shared by the create/edit forms of users, organizations and apps."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import native_select

ROLES = [("member", "Member"), ("org_admin", "Organization admin"), ("super_admin", "Super admin")]
PERIODS = [("monthly", "Monthly"), ("weekly", "Weekly")]


def role_select(default: Any = "member", **props: Any) -> rx.Component:
    return native_select("role", "Role", ROLES, default=default, **props)


def org_select(options: Any, default: Any = "", **props: Any) -> rx.Component:
    return native_select(
        "organization_id",
        "Organization",
        dynamic=options,
        default=default,
        blank="(none)",
        **props,
    )


def checkbox(name: str, label: str, default: Any = False, **props: Any) -> rx.Component:
    return rx.el.label(
        rx.hstack(
            rx.el.input(
                type="checkbox",
                name=name,
                id=props.pop("id", name),
                default_checked=default,
                **props,
            ),
            rx.text(label, size="2"),
            align="center",
            spacing="2",
        ),
    )


def submit(label: str, button_id: str) -> rx.Component:
    return rx.button(label, type="submit", id=button_id)


def row_button(
    label: Any, handler: Any, *args: Any, color: str = "gray", **props: Any
) -> rx.Component:
    """A small action button of a table row; ``handler(*args)`` runs on click."""
    return rx.button(
        label, size="1", variant="soft", color_scheme=color, on_click=handler(*args), **props
    )
