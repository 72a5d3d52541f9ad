"""Suite-wide hooks: how the suite is split across pytest-xdist workers.

``scripts/test.sh`` runs the suite with ``-n <cores> --dist loadgroup``. Every test is put in its
module's group, so a module's fixtures (its gateway stack, fakes and database) are built once on
one worker, as in a serial run. The browser tests form one group: every dashboard they start
builds into the same ``.web`` folder, which two workers must never do at once.

Tests marked ``serial`` compare timings (a quiet tenant's tail latency under noise, a bound on
how long a dead upstream may cost): ``scripts/test.sh`` runs them after the parallel phase, alone,
so that the suite's own load does not decide them.
"""

from __future__ import annotations

import pytest


def xdist_group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "browser" if module.startswith("tests/browser/") else module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "serial: timing-sensitive; scripts/test.sh runs it alone, after the rest"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item.nodeid)))
