"""Suite-wide hooks: how the suite is split across pytest-xdist workers.

``scripts/test.sh`` runs the suite with ``-n <cores> --dist loadscope``, scoped by
``xdist_group``: every test is in its module's scope, so a module's fixtures (its gateway stack,
fakes and database) are built once on one worker, as in a serial run. The browser tests form one
scope: every dashboard they start
builds into the same ``.web`` folder, which two workers must never do at once.

Tests marked ``serial`` compare timings (a quiet tenant's tail latency under noise, a bound on
how long a dead upstream may cost): ``scripts/test.sh`` runs them after the parallel phase, alone,
so that the suite's own load does not decide them.

The second pass (PostgreSQL + Redis, ``SWITCHBOARD_TEST_PASS=backends``) runs every test whose
outcome can depend on the storage backend, and leaves out ``BACKEND_AGNOSTIC``: the SQLite pass
runs those, and running them twice would only double CI's time.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

#: Tests no storage backend can change: pure functions (codecs, DLP detectors, prices, routing
#: decisions, provider adapters against the fakes), wire translation through the gateway (every
#: parameter, matrix, file, reasoning and caching case: what the provider and client receive),
#: upstream faults, raw-socket server limits, the embedded default's newcomer path, and the
#: dashboard's browser flows (a GraphQL client of the gateway: the GraphQL API itself runs on
#: PostgreSQL + Redis in tests/graphql, tests/security and tests/fuzz). Caps, logs, rate limits,
#: events, caches, stored responses, alerts, the agents and the admin API all run on both.
BACKEND_AGNOSTIC = (
    "tests/protocols/",
    "tests/pricing/",
    "tests/dlp/",
    "tests/routing/",
    "tests/browser/",
    "tests/providers/test_anthropic_provider.py",
    "tests/providers/test_gemini_provider.py",
    "tests/providers/test_ollama_provider.py",
    "tests/providers/test_openai_provider.py",
    "tests/providers/test_registry.py",
    "tests/providers/test_transport_wire.py",
    "tests/providers/test_deployment_pool.py",
    "tests/e2e/test_sdk_parameters.py",
    "tests/e2e/test_matrix.py",
    "tests/e2e/test_responses_matrix.py",
    "tests/e2e/test_translation_rules.py",
    "tests/e2e/test_passthrough.py",
    "tests/e2e/test_files.py",
    "tests/e2e/test_structured_output.py",
    "tests/e2e/test_reasoning.py",
    "tests/e2e/test_prompt_caching.py",
    "tests/e2e/test_gemini_door.py",
    "tests/e2e/test_stream_delivery.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_server_limits.py",
    "tests/e2e/test_newcomer.py",
)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SWITCHBOARD_TEST_PASS") != "backends":
        return
    agnostic = [i for i in items if i.nodeid.startswith(BACKEND_AGNOSTIC)]
    if agnostic:
        config.hook.pytest_deselected(items=agnostic)
        items[:] = [i for i in items if not i.nodeid.startswith(BACKEND_AGNOSTIC)]
