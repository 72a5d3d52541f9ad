"""Suite-wide hooks: how the suite is split across pytest-xdist workers.

``scripts/test.sh`` runs the suite with ``-n <cores> --dist loadscope``, scoped by
``xdist_group``: every test is in its module's scope, so a module's fixtures (its gateway stack,
fakes and database) are built once on one worker, as in a serial run. The browser tests form one
scope: every dashboard they start builds into the same ``.web`` folder, which two workers must
never do at once.

Tests marked ``serial`` compare timings (a quiet tenant's tail latency under noise, a bound on
how long a dead upstream may cost): ``scripts/test.sh`` runs them after the parallel phase, alone,
so that the suite's own load does not decide them.
"""

from __future__ import annotations

from typing import Any

import pytest


def xdist_group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "browser" if module.startswith("tests/browser/") else module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "serial: timing-sensitive; scripts/test.sh runs it alone, after the rest"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's ``loadscope`` with this suite's scopes (``xdist_group``): its own ``loadgroup``
    cannot be used, it renames node ids through an attribute pytest 9.2 no longer reads."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ModuleScheduling(config, log)
