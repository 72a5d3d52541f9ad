"""One database + gateway per test package, emptied before every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.graphql.harness import Env, World, open_env, reset, seed_world


@pytest.fixture(scope="package")
async def env_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async for env in open_env(tmp_path_factory.mktemp("gql")):
        yield env


@pytest.fixture
async def env(env_module: Env) -> Env:
    await reset(env_module)
    return env_module


@pytest.fixture
async def world(env: Env) -> World:
    return await seed_world(env)
