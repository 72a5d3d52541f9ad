"""Serve the dashboard from the frontend an earlier module of this session built.

``reflex run --env prod`` compiles the app and rebuilds the frontend on every start (~18 s of
CPU here). The browser modules of one test session all run the dashboard on one port, so the
first builds it with ``reflex run`` and the others start only Reflex's production backend with the
built frontend mounted, as ``reflex run --env prod`` itself does after its build step.

Usage: ``python -m tests.browser.serve_built PORT`` (from the repository root).
"""

from __future__ import annotations

import sys

from reflex.utils import exec as reflex_exec
from reflex_base import constants
from reflex_base.config import get_config
from reflex_base.environment import environment


def main(port: int) -> None:
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)
    get_config()._set_persistent(frontend_port=port, backend_port=port)
    reflex_exec.run_backend_prod("127.0.0.1", port, constants.LogLevel.WARNING, True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
