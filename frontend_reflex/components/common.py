"""Small building blocks shared by every page: sections, notices, errors, secrets shown once."""

from __future__ import annotations

from typing import Any

import reflex as rx

SELECT_STYLE: dict[str, str] = {
    "padding": "0.35em 0.5em",
    "border_radius": "6px",
    "border": "1px solid var(--gray-a7)",
    "background": "var(--color-surface)",
    "color": "var(--gray-12)",
    "min_width": "10em",
    # A select sizes itself to its longest option (a user's name and email): never past the
    # screen.
    "max_width": "100%",
    "font_size": "14px",
}


def section(title: str, *children: rx.Component, description: str = "") -> rx.Component:
    return rx.vstack(
        rx.heading(title, size="5", as_="h2"),
        rx.cond(description != "", rx.text(description, color_scheme="gray", size="2")),
        *children,
        spacing="3",
        width="100%",
        padding_y="0.75em",
    )


def error_text(message: Any) -> rx.Component:
    """A GraphQL error in plain words, shown right next to what caused it."""
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon="triangle_alert",
            color_scheme="red",
            role="alert",
            size="1",
            class_name="sb-error",
            width="100%",
        ),
    )


def ok_text(message: Any) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="check", color_scheme="green", size="1", class_name="sb-ok"),
    )


def loading(flag: Any) -> rx.Component:
    return rx.cond(
        flag,
        rx.hstack(rx.spinner(size="1"), rx.text("Loading…", size="2"), class_name="sb-loading"),
    )


def expand(title: str, *children: rx.Component, open_: bool = False) -> rx.Component:
    """A native <details> block: "Create User ▸ expand" without any state."""
    return rx.el.details(
        rx.el.summary(
            rx.text(title, weight="bold", as_="span"),
            rx.text(" expand", color_scheme="gray", size="1", as_="span"),
            cursor="pointer",
            padding_y="0.4em",
        ),
        rx.box(*children, padding_top="0.5em"),
        open=open_,
        width="100%",
        class_name="sb-expand",
    )


def field(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", weight="medium"), control, spacing="1")


def text_input(name: str, label: str, **props: Any) -> rx.Component:
    return field(label, rx.input(name=name, id=props.pop("id", name), **props))


def native_select(
    name: str,
    label: str,
    options: list[tuple[str, str]] | None = None,
    *,
    dynamic: Any = None,
    default: Any = "",
    blank: str | None = None,
    **props: Any,
) -> rx.Component:
    """A plain <select>: reliable inside forms and for people on keyboards.

    ``options`` are static (value, label) pairs; ``dynamic`` is a Var of ``{"value", "label"}``
    dicts (organizations, users...).
    """
    items: list[rx.Component] = []
    if blank is not None:
        items.append(rx.el.option(blank, value=""))
    items.extend(rx.el.option(text, value=value) for value, text in options or [])
    if dynamic is not None:
        items.append(rx.foreach(dynamic, lambda o: rx.el.option(o["label"], value=o["value"])))
    return field(
        label,
        rx.el.select(
            *items,
            name=name,
            id=props.pop("id", name),
            default_value=default,
            class_name="sb-select",
            **SELECT_STYLE,
            **props,
        ),
    )


def secret_once(secret: Any, on_close: Any, title: str = "New API key") -> rx.Component:
    """Shows a freshly created secret exactly once, with a copy button."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(
                "Copy it now: it is shown only this once and cannot be recovered."
            ),
            rx.hstack(
                rx.code(secret, id="new-secret", class_name="sb-secret", size="3"),
                rx.icon_button(
                    rx.icon("copy"), size="1", variant="soft", on_click=rx.set_clipboard(secret)
                ),
                align="center",
                padding_y="1em",
                wrap="wrap",
            ),
            rx.dialog.close(rx.button("Done", on_click=on_close, id="secret-done")),
        ),
        open=secret != "",
    )


def stat_card(label: str, value: Any, hint: Any = "", value_id: str = "") -> rx.Component:
    """``value_id``: an id on the value alone (tests read it)."""
    value_props = {"id": value_id} if value_id else {}
    return rx.card(
        rx.vstack(
            rx.text(label, size="1", color_scheme="gray"),
            rx.heading(value, size="6", as_="p", **value_props),
            rx.text(hint, size="1", color_scheme="gray"),
            spacing="1",
        ),
        min_width="10em",
    )


def badge(value: Any, on: str = "active") -> rx.Component:
    return rx.badge(value, color_scheme=rx.cond(value == on, "green", "gray"))
