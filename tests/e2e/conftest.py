"""A gateway stack per test module: fresh database, four fake providers, the real gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.harness import GatewayProc, Seeded, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

UPSTREAM_KEYS = {
    "openai": "sk-upstream-openai-0123456789abcdef",
    "anthropic": "sk-ant-upstream-0123456789abcdef",
    "gemini": "AIzaUpstreamGemini0123456789abcdef",
}


@dataclass
class Stack:
    gateway: GatewayProc
    database_url: str
    seeded: Seeded
    openai: OpenAIFake
    anthropic: AnthropicFake
    gemini: GeminiFake
    ollama: OllamaFake
    tmp: Path

    def fakes(self) -> dict[str, object]:
        return {
            "openai": self.openai,
            "anthropic": self.anthropic,
            "gemini": self.gemini,
            "ollama": self.ollama,
        }

    def reset(self) -> None:
        for fake in (self.openai, self.anthropic, self.gemini, self.ollama):
            fake.reset()


def gateway_env(db: str, tmp: Path, fakes: dict[str, object]) -> dict[str, str]:
    env = {
        "DATABASE_URL": db,
        "SWITCHBOARD_DATA_DIR": str(tmp / "data"),
        "SWITCHBOARD_SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "OPENAI_API_KEY": UPSTREAM_KEYS["openai"],
        "OPENAI_BASE_URL": fakes["openai"].sdk_base_url,  # type: ignore[attr-defined]
        "ANTHROPIC_API_KEY": UPSTREAM_KEYS["anthropic"],
        "ANTHROPIC_BASE_URL": fakes["anthropic"].sdk_base_url,  # type: ignore[attr-defined]
        "GEMINI_API_KEY": UPSTREAM_KEYS["gemini"],
        "GEMINI_BASE_URL": fakes["gemini"].base_url,  # type: ignore[attr-defined]
        "OLLAMA_BASE_URL": fakes["ollama"].base_url,  # type: ignore[attr-defined]
        "SWITCHBOARD_UPSTREAM_TIMEOUT": "5",
    }
    if redis_url():
        env["REDIS_URL"] = redis_url() or ""
        env["SWITCHBOARD_REDIS_PREFIX"] = f"sbtest-{uuid.uuid4().hex[:8]}:"
    return env


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    """Extra gateway environment for a test module (override the fixture to change it)."""
    return {}


@dataclass(frozen=True)
class StackSetup:
    """How a module's stack is seeded before its gateway starts: ``seed_basic`` keyword
    arguments and an optional coroutine run with the database URL and the seeded rows."""

    seed: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[str, Seeded], Awaitable[None]] | None = None


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    """Seeding of a test module's stack (override the fixture to change it)."""
    return StackSetup()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory,
    gateway_overrides: dict[str, str],
    stack_setup: StackSetup,
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db, **stack_setup.seed)
    if stack_setup.prepare is not None:
        await stack_setup.prepare(db, seeded)
    fakes = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes) | gateway_overrides
    gw = GatewayProc(env, tmp / "gateway.log").start()
    try:
        yield Stack(gw, db, seeded, tmp=tmp, **fakes)  # type: ignore[arg-type]
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        await drop_database(db)
