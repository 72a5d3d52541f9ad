"""Whether the wide-screen navigation is folded to icons, and the narrow-screen menu open."""

from __future__ import annotations

import reflex as rx


class NavState(rx.State):
    collapsed: bool = False
    menu_open: bool = False

    @rx.event
    def toggle(self) -> None:
        self.collapsed = not self.collapsed

    @rx.event
    def toggle_menu(self) -> None:
        self.menu_open = not self.menu_open

    @rx.event
    def close_menu(self) -> None:
        self.menu_open = False
