"""Claude Code through the gateway (issue 14 must-show 1).

The real ``claude`` binary (``@anthropic-ai/claude-code``, pinned in scripts/install.sh) runs
non-interactively against the gateway, once per provider format. Each fake upstream plays a
scripted model (``AgentScript``): asked for the file, it calls Claude Code's own ``Write`` tool by
name; once the tool result comes back it answers a final text. The test checks the file on disk,
what Claude Code printed and what the fake received (the tool offered in the provider's format,
the call's result carried back, thinking where the provider expresses it).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.harness import ROOT
from tests.fakes.base import AgentScript, FakeUpstream

CLAUDE = ROOT / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
KEYWORD = "SWITCHBOARD-WRITE-CHECK"
FILE_TEXT = "written by Claude Code through Switchboard\n"
FINAL_TEXT = "The file is written."
THINKING = "The user wants a file; the Write tool makes it."
RUN_TIMEOUT = 90

pytestmark = pytest.mark.skipif(
    not CLAUDE.exists(),
    reason=f"Claude Code is not installed at {CLAUDE} (run WITH_TESTS=1 scripts/install.sh)",
)


@dataclass
class ClaudeRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def result(self) -> dict[str, Any]:
        results = [e for e in self.events if e.get("type") == "result"]
        assert results, f"no result event; stderr:\n{self.stderr[-3000:]}"
        return results[-1]


def run_claude(gateway_url: str, key: str, model: str, prompt: str, workdir: Path) -> ClaudeRun:
    """``claude -p`` in its own HOME and working directory, allowed to use its Write tool."""
    home = workdir.parent / f"{workdir.name}-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=gateway_url,
        ANTHROPIC_API_KEY=key,
        ANTHROPIC_MODEL=model,
        ANTHROPIC_SMALL_FAST_MODEL=model,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
    )
    proc = subprocess.run(
        [
            str(CLAUDE),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--allowedTools",
            "Write",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return ClaudeRun(proc.returncode, events, proc.stderr)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "anthropic/claude-sonnet-4-5"),
        ("openai", "openai/gpt-4o-mini"),
        ("gemini", "gemini/gemini-2.5-flash"),
        ("ollama", "ollama/llama3.2"),
    ],
)
async def test_claude_code_writes_a_file(
    stack: Stack, tmp_path: Path, provider: str, model: str
) -> None:
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    workdir = tmp_path / "work"
    workdir.mkdir()
    target = workdir / "hello.txt"
    fake.script = AgentScript(
        keyword=KEYWORD,
        tool="Write",
        arguments={"file_path": str(target), "content": FILE_TEXT},
        final_text=FINAL_TEXT,
        thinking=THINKING,
    )
    prompt = f"{KEYWORD}: create hello.txt in the current directory."
    run = await asyncio.to_thread(
        run_claude, stack.gateway.url, stack.seeded.user_key, model, prompt, workdir
    )
    result = run.result()
    assert run.returncode == 0, (result, run.stderr[-3000:])
    assert result["subtype"] == "success" and not result["is_error"], result
    assert result["result"] == FINAL_TEXT
    assert target.read_text() == FILE_TEXT
