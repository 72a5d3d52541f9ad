"""Shared by the coding-agent e2e tests (Codex CLI, Gemini CLI, the OpenAI Agents SDK).

``seen(provider, body)`` reads one upstream chat request in its provider's own format (Anthropic
messages, OpenAI chat completions, OpenAI Responses, Gemini, Ollama) into the few facts the tests
check: the tools offered, the system text, the user text, and the tool result carried back.
``chats`` lists the chat requests a fake received (not model lists or token counts), read so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.harness import ROOT
from tests.fakes.base import FakeUpstream

TOOLS = ROOT / ".tools"
#: The Node scripts/install.sh takes from npm when the system's is older (Gemini CLI wants >= 20).
NODE_BIN = TOOLS / "node" / "node_modules" / ".bin"
#: Environment variables that would point a client somewhere else than the gateway.
FOREIGN_ENV = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "CODEX_", "AZURE_")


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an agent program: its own HOME, no provider settings of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    if NODE_BIN.is_dir():
        env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(HOME=str(home), NO_COLOR="1", **extra)
    return env


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL output (other lines are the client's chatter)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


@dataclass
class Seen:
    """One upstream chat request, read in its provider's format."""

    tools: list[str]
    system_text: str
    #: Every user turn's text, joined.
    user_text: str
    roles: list[str]
    #: The tool result in the request's last turn: whom it answers (call id or tool name)...
    result_for: str | None
    #: ... and its text.
    result_text: str


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content or []
    return "".join(str(c.get("text", "")) for c in parts if isinstance(c, dict))


def seen_anthropic(body: dict[str, Any]) -> Seen:
    messages = body["messages"]
    last = messages[-1]["content"]
    blocks = last if isinstance(last, list) else []
    result = next((b for b in blocks if b.get("type") == "tool_result"), {})
    return Seen(
        tools=[t["name"] for t in body.get("tools", [])],
        system_text=_text(body.get("system")),
        user_text="\n".join(_text(m["content"]) for m in messages if m["role"] == "user"),
        roles=[m["role"] for m in messages],
        result_for=result.get("tool_use_id"),
        result_text=_text(result.get("content")),
    )


def seen_openai_chat(body: dict[str, Any]) -> Seen:
    messages = body["messages"]
    system = [m for m in messages if m["role"] in ("system", "developer")]
    last = messages[-1]
    return Seen(
        tools=[t["function"]["name"] for t in body.get("tools", [])],
        system_text="\n".join(_text(m.get("content")) for m in system),
        user_text="\n".join(_text(m["content"]) for m in messages if m["role"] == "user"),
        roles=[m["role"] for m in messages if m not in system],
        result_for=last.get("tool_call_id") if last["role"] == "tool" else None,
        result_text=_text(last["content"]) if last["role"] == "tool" else "",
    )


def seen_responses(body: dict[str, Any]) -> Seen:
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    messages = [i for i in items if i.get("type", "message") == "message"]
    system = [m for m in messages if m["role"] in ("system", "developer")]
    last = items[-1]
    is_result = last.get("type") == "function_call_output"
    return Seen(
        tools=[t["name"] for t in body.get("tools", []) if t.get("type") == "function"],
        system_text="\n".join(
            [body.get("instructions") or ""] + [_text(m["content"]) for m in system]
        ),
        user_text="\n".join(_text(m["content"]) for m in messages if m["role"] == "user"),
        roles=[m["role"] for m in messages if m not in system],
        result_for=last.get("call_id") if is_result else None,
        result_text=_text(last.get("output")) if is_result else "",
    )


def seen_gemini(body: dict[str, Any]) -> Seen:
    contents = body["contents"]
    response = next(
        (p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p), {}
    )
    return Seen(
        tools=[d["name"] for t in body.get("tools", []) for d in t.get("functionDeclarations", [])],
        system_text=_text(body.get("systemInstruction", {}).get("parts")),
        user_text="\n".join(_text(c["parts"]) for c in contents if c.get("role", "user") == "user"),
        roles=[c.get("role", "user") for c in contents],
        result_for=response.get("name"),
        result_text=json.dumps(response.get("response")),
    )


def seen_ollama(body: dict[str, Any]) -> Seen:
    out = seen_openai_chat(body)
    last = body["messages"][-1]
    out.result_for = last.get("tool_name") if last["role"] == "tool" else None
    return out


def seen(provider: str, path: str, body: dict[str, Any]) -> Seen:
    """``body`` (sent to ``path`` of the ``provider`` fake) read in that provider's format."""
    if provider == "openai":
        return seen_responses(body) if path.endswith("/responses") else seen_openai_chat(body)
    return {"anthropic": seen_anthropic, "gemini": seen_gemini, "ollama": seen_ollama}[provider](
        body
    )


def chats(provider: str, fake: FakeUpstream) -> list[tuple[str, dict[str, Any], Seen]]:
    """The chat requests a fake received: (path, body, what it says)."""
    out = []
    for r in fake.requests:
        if fake.turn(r) is not None:
            out.append((r.path, r.json, seen(provider, r.path, r.json)))
    return out
