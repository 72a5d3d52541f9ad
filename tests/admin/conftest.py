"""A migrated database per test package for the admin service tests (as for the API tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.graphql.harness import Env, open_env, reset


@pytest.fixture(scope="package")
async def env_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async for env in open_env(tmp_path_factory.mktemp("admin")):
        yield env


@pytest.fixture
async def env(env_module: Env) -> Env:
    await reset(env_module)
    return env_module
