"""Switchboard: a self-hosted LLM gateway."""

import sys

# Optional parts of third-party packages that no gateway process uses, kept out of memory
# (issue 19, idle RSS). A ``None`` in ``sys.modules`` makes their import fail, and both
# packages catch that failure by design (the optional dependency is "not installed"):
# - ``httpx._main``: httpx's command-line client, which imports rich and pygments (~3 MB of
#   RSS) and click; ``httpx.main`` becomes httpx's stub saying the CLI is unavailable.
# - ``uvicorn.supervisors.watchfilesreload``: the ``--reload`` file watcher (watchfiles,
#   ~0.7 MB); ``serve`` never reloads, and uvicorn falls back to its polling reloader.
# Only where they are not imported yet: a process that imported them first keeps them.
for _unused in ("httpx._main", "uvicorn.supervisors.watchfilesreload"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]
del _unused
