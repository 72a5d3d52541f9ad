"""Which roles may use each GraphQL operation: the gateway's own authorization table.

``permissions.json`` is generated from the gateway's code with its docs/AUTHZ.md
(``python -m backend.graphql.authz --write``), so a control is shown exactly to the roles the API
lets through (the dashboard never imports ``backend``; it reads the generated file).
``tests/browser/test_console.py`` checks both ways: the file is current, and each role's pages
show no control whose operation the table refuses it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import reflex as rx

TABLE_PATH = Path(__file__).with_name("permissions.json")


@cache
def table() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = json.loads(TABLE_PATH.read_text())
    return data


def roles(op: str, *, global_row: bool = False) -> list[str]:
    """Roles that may call ``op`` (``Mutation.deleteModelAlias``); on a global row, those the
    table allows there. An operation the table does not know is allowed to nobody."""
    entry = table().get(op)
    if entry is None:
        return []
    allowed = entry["roles"]
    if global_row and "globalRows" in entry:
        allowed = [r for r in allowed if r in entry["globalRows"]]
    return list(allowed)


def may(role: Any, op: str, *, global_row: Any = False) -> Any:
    """A Var: ``role`` (a Var) may use ``op``; ``global_row`` may be a Var of the row too."""
    anywhere = rx.Var.create(roles(op)).contains(role)
    if isinstance(global_row, bool):
        return rx.Var.create(roles(op, global_row=global_row)).contains(role)
    on_global = rx.Var.create(roles(op, global_row=True)).contains(role)
    return rx.cond(global_row, on_global, anywhere)


def control(op: str) -> dict[str, str]:
    """Props marking a control with the operation it calls (read by the role test)."""
    return {"custom_attrs": {"data-op": op}}
