"""Codex CLI through the gateway's Responses API (issue 15 must-show 1).

The real ``codex`` binary (``@openai/codex``, pinned in scripts/install.sh) runs ``codex exec``
non-interactively with a custom provider whose ``base_url`` is the gateway (``wire_api =
"responses"``: Codex speaks nothing else). Each fake upstream plays a scripted model
(``AgentScript``): asked for the file, it calls Codex's own ``exec_command`` tool with a shell
command that writes it; once the command's output comes back it answers a final text. The test
checks the file on disk, the events Codex printed (``--json``) and what the fake received: the
tool offered in the provider's format, Codex's developer instructions as system text, the call's
output carried back to the call. For provider ``openai`` the gateway speaks OpenAI's own Responses
API upstream. What Codex sends is described in /work/brief/agent-wire.md (recorded).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_support import TOOLS, chats, client_env, json_lines
from tests.e2e.conftest import Stack
from tests.fakes.base import AgentScript, FakeUpstream

CODEX = TOOLS / "codex" / "node_modules" / ".bin" / "codex"
KEYWORD = "SWITCHBOARD-CODEX-CHECK"
FILE_TEXT = "written by Codex through Switchboard"
FINAL_TEXT = "The file is written."
#: One run: two model turns and one local command against fakes on loopback.
RUN_TIMEOUT = 60
KEY_ENV = "SWITCHBOARD_API_KEY"

needs_codex = pytest.mark.skipif(
    not CODEX.exists(),
    reason=f"Codex CLI is not installed at {CODEX} (run WITH_TESTS=1 scripts/install.sh)",
)
MODELS = [
    ("openai", "openai/gpt-4o-mini"),
    ("anthropic", "anthropic/claude-sonnet-4-5"),
    ("gemini", "gemini/gemini-2.5-flash"),
]


@dataclass
class CodexRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and e["item"].get("type") == kind
        ]

    def explain(self) -> str:
        return f"events: {self.events}\nstderr:\n{self.stderr[-3000:]}"


def codex_config(gateway_url: str, model: str, provider: str, provider_extra: str = "") -> str:
    """A ``config.toml`` with the gateway as a custom Responses provider. Retries off: a failed
    request fails the run at once instead of being retried with backoff. Codex offers OpenAI's
    hosted ``web_search`` tool by default, which only OpenAI runs (the gateway refuses it for
    other providers, naming this setting): off for them, as a user would set it."""
    top = 'web_search = "disabled"' if provider != "openai" else ""
    return f"""
model = "{model}"
model_provider = "switchboard"
{top}

[model_providers.switchboard]
name = "Switchboard"
base_url = "{gateway_url}/v1"
env_key = "{KEY_ENV}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
{provider_extra}
"""


def run_codex(config: str, key: str, prompt: str, workdir: Path) -> CodexRun:
    """``codex exec --json`` with its own CODEX_HOME and HOME, in ``workdir``."""
    home = workdir.parent / f"{workdir.name}-home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(config)
    env = client_env(home, CODEX_HOME=str(codex_home), **{KEY_ENV: key})
    proc = subprocess.run(
        [
            str(CODEX),
            "exec",
            "--json",
            "--skip-git-repo-check",
            # The scripted command runs in a throwaway directory; the sandbox (bubblewrap) is
            # not what this test is about and is not available in every container.
            "--dangerously-bypass-approvals-and-sandbox",
            "--cd",
            str(workdir),
            prompt,
        ],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    return CodexRun(proc.returncode, json_lines(proc.stdout), proc.stderr)


def script_for(target: Path) -> AgentScript:
    # No quotes: Codex prints the command wrapped in ``bash -lc '...'``, which would escape them.
    command = f"echo {FILE_TEXT} > {target}"
    return AgentScript(
        keyword=KEYWORD,
        tool="exec_command",
        arguments={"cmd": command},
        final_text=FINAL_TEXT,
    )


async def codex_writes_a_file(
    stack: Stack, tmp_path: Path, provider: str, model: str, provider_extra: str = ""
) -> tuple[CodexRun, FakeUpstream, AgentScript]:
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    workdir = tmp_path / "work"
    workdir.mkdir()
    target = workdir / "codex.txt"
    fake.script = script_for(target)
    prompt = f"{KEYWORD}: create codex.txt in the current directory."
    config = codex_config(stack.gateway.url, model, provider, provider_extra)
    run = await asyncio.to_thread(run_codex, config, stack.seeded.user_key, prompt, workdir)
    assert run.returncode == 0, run.explain()
    assert target.read_text() == FILE_TEXT + "\n"
    # Codex ran exactly the scripted command, successfully, and printed the final answer.
    commands = run.items("command_execution")
    assert [c["exit_code"] for c in commands] == [0], run.explain()
    assert fake.script.arguments["cmd"] in commands[0]["command"]
    assert [m["text"] for m in run.items("agent_message")] == [FINAL_TEXT], run.explain()
    assert any(e.get("type") == "turn.completed" for e in run.events), run.explain()
    return run, fake, fake.script


@needs_codex
@pytest.mark.parametrize(("provider", "model"), MODELS)
async def test_codex_runs_a_command_through_the_gateway(
    stack: Stack, tmp_path: Path, provider: str, model: str
) -> None:
    _, fake, script = await codex_writes_a_file(stack, tmp_path, provider, model)
    sent = chats(provider, fake)
    assert len(sent) == 2, [r.path for r in fake.requests]
    (first_path, first_body, first), (_, last_body, last) = sent
    assert "exec_command" in first.tools and KEYWORD in first.user_text
    # Codex's instructions are developer messages: they reach the provider as system text.
    assert "You are a coding agent running in the Codex CLI" in first.system_text
    assert "system" not in first.roles and "developer" not in first.roles
    # The command's output went back to the model as the result of that call.
    assert last.result_for == (script.call_id if provider != "gemini" else "exec_command")
    assert "exited with code 0" in last.result_text
    if provider == "openai":
        # OpenAI's own Responses API upstream: Codex's request as Codex sent it.
        assert first_path == "/v1/responses"
        assert first_body["stream"] is True and first_body["store"] is False
        assert first_body["include"] == ["reasoning.encrypted_content"]
        assert first_body["model"] == "gpt-4o-mini"
        assert first_body.get("prompt_cache_key")
        calls = [i for i in last_body["input"] if i.get("type") == "function_call"]
        assert [(c["name"], c["call_id"]) for c in calls] == [("exec_command", script.call_id)]
        # Codex's default hosted tool (live web access: the sandbox is bypassed) and its
        # namespaced tools went through as they were.
        hosted = [t for t in first_body["tools"] if t["type"] == "web_search"]
        assert hosted == [{"type": "web_search", "external_web_access": True}]
        assert any(t["type"] == "namespace" for t in first_body["tools"])


@needs_codex
async def test_codex_default_web_search_is_refused_in_words(stack: Stack, tmp_path: Path) -> None:
    """Codex with its default config on a provider that cannot run OpenAI's hosted web search:
    one request, refused before any upstream call, and Codex shows the gateway's reason."""
    stack.reset()
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = codex_config(stack.gateway.url, "anthropic/claude-sonnet-4-5", "openai")
    run = await asyncio.to_thread(
        run_codex, config, stack.seeded.user_key, f"{KEYWORD}: hello", workdir
    )
    assert run.returncode == 1, run.explain()
    (failed,) = [e for e in run.events if e.get("type") == "turn.failed"]
    # Codex shows the error body as it came: the Responses API's error shape.
    error = json.loads(failed["error"]["message"])["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "tools", error
    assert 'web_search = "disabled"' in error["message"], error
    assert stack.anthropic.requests == []


@needs_codex
async def test_codex_falls_back_from_the_websocket_at_once(stack: Stack, tmp_path: Path) -> None:
    """With ``supports_websockets`` Codex first asks for a WebSocket on ``/v1/responses``; the
    gateway's 426 makes it use HTTP at once (other refusals cost it seven reconnects)."""
    run, fake, _ = await codex_writes_a_file(
        stack, tmp_path, "anthropic", "anthropic/claude-sonnet-4-5", "supports_websockets = true"
    )
    # One attempt (Codex logs each failed one), no reconnects.
    assert run.stderr.count("failed to connect to Responses WebSocket") == 1, run.stderr[-3000:]
    assert "Reconnecting" not in run.stderr, run.stderr[-3000:]
    assert len(chats("anthropic", fake)) == 2
