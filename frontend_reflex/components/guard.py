"""Controls shown only to roles that may use them, by the gateway's own authorization table
(``frontend_reflex.permissions``), each marked with the operation it calls (``data-op``)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.forms import row_button
from frontend_reflex.permissions import may
from frontend_reflex.state.base import AuthState


def guarded(op: str, component: rx.Component, *, global_row: Any = False) -> rx.Component:
    """``component`` for roles that may call ``op`` (on a global row: per ``globalRows``),
    inside a box marked with ``op`` (a whole form: "Create Organization")."""
    marked = rx.box(component, width="100%", custom_attrs={"data-op": op})
    return rx.cond(may(AuthState.role, op, global_row=global_row), marked)


def op_button(label: Any, handler: Any, *args: Any, op: str, **props: Any) -> rx.Component:
    """A row's action button, shown to roles that may call ``op`` and marked with it."""
    attrs = {"data-op": op, **props.pop("custom_attrs", {})}
    button = row_button(label, handler, *args, custom_attrs=attrs, **props)
    return rx.cond(may(AuthState.role, op), button)
