"""Form pieces shared by the create/edit forms of users, organizations and apps."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import native_select

ROLES = [("member", "Member"), ("org_admin", "Organization admin"), ("super_admin", "Super admin")]
PERIODS = [("monthly", "Monthly"), ("weekly", "Weekly")]


def role_select(default: Any = "member", **props: Any) -> rx.Component:
    return native_select("role", "Role", ROLES, default=default, **props)


#: Owner of a Find box inside a form: an ``id`` no form has, so the box belongs to no form and
#: Enter in it narrows the options instead of submitting the half-filled form around it.
DETACHED: dict[str, Any] = {"form": "sb-find-detached"}


def find_box(state: Any, placeholder: str, box_id: str, width: str = "13em") -> rx.Component:
    """The "Find" box of a bounded select (``state.choices``): narrows its options through the
    API's search as one types; it is not a filter and sends nothing with its form."""
    return rx.debounce_input(
        rx.input(
            value=state.choice_search,
            on_change=state.find_choices,
            placeholder=placeholder,
            id=box_id,
            width=width,
            custom_attrs=DETACHED,
        ),
        debounce_timeout=300,
    )


def choice_note(state: Any, note_id: str) -> rx.Component:
    """Says when a bounded select offers only the first of what matches."""
    return rx.cond(
        state.choice_note != "",
        rx.text(state.choice_note, size="1", color_scheme="gray", id=note_id),
    )


def choice_select(
    state: Any, name: str, label: str, select_id: str, *, editing: bool = False
) -> rx.Component:
    """A form's bounded select of organizations or users (``state.choices``) with its Find box:
    the create form's select is the browser's own (its pick remembered), an edit dialog's is
    held by the state (``choice_pick``, the row's current value) so it shows that value even
    when it is not among the first options."""
    held: dict[str, Any] = (
        {"default": None, "value": state.choice_pick} if editing else {"default": ""}
    )
    return rx.vstack(
        rx.hstack(
            native_select(
                name,
                label,
                dynamic=state.choice_options,
                blank="(none)",
                id=select_id,
                on_change=state.pick_choice,
                **held,
            ),
            find_box(state, f"Find {label.lower()}", f"{select_id}-find", "11em"),
            align="end",
            spacing="2",
            wrap="wrap",  # the Find box goes under the select on a phone
            max_width="100%",
        ),
        choice_note(state, f"{select_id}-note"),
        spacing="1",
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
