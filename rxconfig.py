"""Reflex config of the Switchboard dashboard (a GraphQL client of the gateway, never `backend`).

Bun comes from the npm registry (scripts/install.sh) because Reflex's own installer downloads from
outside. npm's postinstall of the `bun` package moves the binary out of `@oven/bun-linux-x64` into
`bun/bin/bun.exe`, so every place it can end up is tried; `REFLEX_BUN_PATH` still wins when set.
"""

from pathlib import Path
from typing import Any

import reflex as rx

_TOOLS = Path(__file__).resolve().parent / ".tools" / "node_modules"
_BUN_CANDIDATES = (
    _TOOLS / "@oven" / "bun-linux-x64" / "bin" / "bun",
    _TOOLS / "@oven" / "bun-linux-x64-baseline" / "bin" / "bun",
    _TOOLS / "bun" / "bin" / "bun.exe",
)
_bun = next((p for p in _BUN_CANDIDATES if p.is_file()), None)
_extra: dict[str, Any] = {"bun_path": _bun} if _bun else {}

config = rx.Config(
    app_name="frontend_reflex",
    app_module_import="frontend_reflex.app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium")),
        rx.plugins.SitemapPlugin(),
    ],
    **_extra,
)
