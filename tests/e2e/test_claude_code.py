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

import anthropic
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.harness import ROOT
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import AgentScript, FakeUpstream

CLAUDE = ROOT / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
KEYWORD = "SWITCHBOARD-WRITE-CHECK"
FILE_TEXT = "written by Claude Code through Switchboard\n"
FINAL_TEXT = "The file is written."
THINKING = "The user wants a file; the Write tool makes it."
RUN_TIMEOUT = 90

needs_claude = pytest.mark.skipif(
    not CLAUDE.exists(),
    reason=f"Claude Code is not installed at {CLAUDE} (run WITH_TESTS=1 scripts/install.sh)",
)
MODELS = [
    ("anthropic", "anthropic/claude-sonnet-4-5"),
    ("openai", "openai/gpt-4o-mini"),
    ("gemini", "gemini/gemini-2.5-flash"),
    ("ollama", "ollama/llama3.2"),
]


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


@dataclass
class Seen:
    """One upstream chat request, read in its provider's format."""

    tools: list[str]
    system_text: str
    roles: list[str]
    user_text: str
    #: The tool result in the request's last turn: whom it answers (call id or tool name)...
    result_for: str | None
    #: ... and its text.
    result_text: str


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(c.get("text", "") for c in content or [] if isinstance(c, dict))


def seen_anthropic(body: dict[str, Any]) -> Seen:
    messages = body["messages"]
    last = messages[-1]["content"]
    blocks = last if isinstance(last, list) else []
    result = next((b for b in blocks if b.get("type") == "tool_result"), {})
    return Seen(
        tools=[t["name"] for t in body.get("tools", [])],
        system_text=_text(body.get("system")),
        roles=[m["role"] for m in messages],
        user_text=_text(messages[0]["content"]),
        result_for=result.get("tool_use_id"),
        result_text=_text(result.get("content")),
    )


def seen_openai(body: dict[str, Any]) -> Seen:
    messages = body["messages"]
    system = messages[0] if messages[0]["role"] == "system" else {}
    rest = messages[1:] if system else messages
    last = messages[-1]
    return Seen(
        tools=[t["function"]["name"] for t in body.get("tools", [])],
        system_text=_text(system.get("content")),
        roles=[m["role"] for m in rest],
        user_text=_text(rest[0]["content"]),
        result_for=last.get("tool_call_id") if last["role"] == "tool" else None,
        result_text=_text(last["content"]) if last["role"] == "tool" else "",
    )


def seen_gemini(body: dict[str, Any]) -> Seen:
    contents = body["contents"]
    response = next(
        (p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p), {}
    )
    return Seen(
        tools=[d["name"] for t in body.get("tools", []) for d in t["functionDeclarations"]],
        system_text=_text(body.get("systemInstruction", {}).get("parts")),
        roles=[c["role"] for c in contents],
        user_text=_text(contents[0]["parts"]),
        result_for=response.get("name"),
        result_text=json.dumps(response.get("response")),
    )


def seen_ollama(body: dict[str, Any]) -> Seen:
    seen = seen_openai(body)
    last = body["messages"][-1]
    seen.result_for = last.get("tool_name") if last["role"] == "tool" else None
    return seen


UPSTREAM = {
    "anthropic": seen_anthropic,
    "openai": seen_openai,
    "gemini": seen_gemini,
    "ollama": seen_ollama,
}


@needs_claude
@pytest.mark.parametrize(("provider", "model"), MODELS)
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
    # Claude Code showed the scripted call of its Write tool before finishing.
    calls = [
        block
        for event in run.events
        if event.get("type") == "assistant"
        for block in event["message"]["content"]
        if block.get("type") == "tool_use"
    ]
    assert [(c["name"], c["input"]) for c in calls] == [("Write", fake.script.arguments)]

    chats = [r.json for r in fake.requests if fake.turn(r) is not None]
    assert len(chats) == 2, [r.path for r in fake.requests]
    first, last = (UPSTREAM[provider](body) for body in (chats[0], chats[-1]))
    assert "Write" in first.tools and KEYWORD in first.user_text
    # The tool's result went back to the model in the provider's own shape.
    assert last.result_for == (
        "toolu_script_01" if provider in ("anthropic", "openai") else "Write"
    )
    assert f"{target}" in last.result_text
    assert "system" not in first.roles
    if provider == "anthropic":
        # Thinking on: the config reached Anthropic and the signed thinking block came back
        # unchanged with the tool call in the next turn.
        assert chats[0]["thinking"]["type"] in ("enabled", "adaptive")
        assistant = chats[-1]["messages"][-2]["content"]
        assert assistant[0] == {
            "type": "thinking",
            "thinking": THINKING,
            "signature": AnthropicReply.signature,
        }
        # Claude Code's attribution block reached Anthropic first, as sent.
        assert chats[0]["system"][0]["text"].startswith("x-anthropic-billing-header:")
    else:
        # Claude Code sent its environment as a role "system" message (an unrecognised model):
        # it reached the provider as system instructions.
        assert "Primary working directory" in first.system_text
        # Its attribution block is Anthropic's: other providers never see it.
        assert "x-anthropic-billing-header" not in first.system_text
    if provider == "openai":
        # Claude Code asks 32000 output tokens of every model; gpt-4o-mini takes 16384 at most.
        assert chats[0]["max_tokens"] == 16384
        # Its metadata.user_id (a JSON document) arrives hashed, within OpenAI's 64 characters.
        assert len(chats[0]["safety_identifier"]) == 64
        assert chats[0]["user"] == chats[0]["safety_identifier"]
        assert "metadata" not in chats[0]


# -- what Claude Code depends on, through the official SDK ----------------------------------------


def sdk(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )


@pytest.mark.parametrize(("provider", "model"), MODELS)
async def test_a_system_message_inside_messages_becomes_system_text(
    stack: Stack, provider: str, model: str
) -> None:
    """Claude Code's ``role: "system"`` message: accepted, and each provider gets it as system
    instructions after the top-level ``system``, not as a turn of the conversation."""
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    messages: Any = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
    ]
    async with sdk(stack) as client:
        message = await client.messages.create(
            model=model, max_tokens=50, system="Be brief.", messages=messages
        )
    assert [b.text for b in message.content if b.type == "text"] == ["ok"]
    (request,) = [r for r in fake.requests if fake.turn(r) is not None]
    seen = UPSTREAM[provider](request.json)
    assert seen.system_text.index("Be brief.") < seen.system_text.index("Answer in French.")
    assert "system" not in seen.roles and "Answer in French." not in seen.user_text
    assert seen.user_text == "hi"


async def test_refusals_use_the_messages_api_wording(stack: Stack) -> None:
    """Clients match the API's own messages (Claude Code drops a system message and retries on
    "Input should be 'user' or 'assistant'"): the gateway's refusals read the same."""
    stack.reset()
    bad: Any = [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]
    async with sdk(stack) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(model="openai/gpt-4o-mini", max_tokens=50, messages=bad)
        with pytest.raises(anthropic.BadRequestError) as hot:
            await client.messages.create(
                model="openai/gpt-4o-mini",
                max_tokens=50,
                extra_body={"temperature": 1.5},
                messages=[{"role": "user", "content": "hi"}],
            )
    body: Any = info.value.body
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "messages.1.role: Input should be 'user' or 'assistant'",
    }
    hot_body: Any = hot.value.body
    assert hot_body["error"]["message"] == "temperature: Input should be less than or equal to 1"
    assert stack.openai.requests == []
