"""Gemini CLI through the gateway's Gemini-native API (issue 15 must-show 1).

The real ``gemini`` program (``@google/gemini-cli``, pinned in scripts/install.sh) runs
non-interactively (``-p``, ``--yolo``, ``--output-format stream-json``) with
``GOOGLE_GEMINI_BASE_URL`` set to the gateway and a gateway key as its Gemini API key, on models
of other providers: it posts ``/v1beta/models/{provider/model}:streamGenerateContent?alt=sse``.
Each fake upstream plays a scripted model (``AgentScript``): asked for the file, it calls Gemini
CLI's own ``write_file`` tool; once the tool's result comes back it answers a final text. The test
checks the file on disk, the events Gemini CLI printed and what the fake received (the tool
offered in the provider's format, the CLI's system instruction, the result carried back).
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

GEMINI = TOOLS / "gemini-cli" / "node_modules" / ".bin" / "gemini"
KEYWORD = "SWITCHBOARD-GEMINI-CHECK"
FILE_TEXT = "written by Gemini CLI through Switchboard\n"
FINAL_TEXT = "The file is written."
RUN_TIMEOUT = 60

needs_gemini = pytest.mark.skipif(
    not GEMINI.exists(),
    reason=f"Gemini CLI is not installed at {GEMINI} (run WITH_TESTS=1 scripts/install.sh)",
)
MODELS = [
    ("anthropic", "anthropic/claude-sonnet-4-5"),
    ("openai", "openai/gpt-4o-mini"),
]
#: API-key auth without asking, the working directory trusted (else ``--yolo`` is overridden),
#: nothing sent anywhere but the gateway.
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "telemetry": {"enabled": False},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
}


@dataclass
class GeminiRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def explain(self) -> str:
        return f"events: {self.events}\nstderr:\n{self.stderr[-3000:]}"


#: OpenAI's reasoning models take temperature and top_p only at 1, and Gemini CLI sends topP
#: 0.95: the settings the gateway's refusal names give the model 1 for both.
REASONING_MODEL = "openai/o3"
REASONING_SAMPLING = {
    "customOverrides": [
        {
            "match": {"model": REASONING_MODEL},
            "modelConfig": {"generateContentConfig": {"temperature": 1, "topP": 1}},
        }
    ]
}


def run_gemini(
    gateway_url: str,
    key: str,
    model: str,
    prompt: str,
    workdir: Path,
    model_configs: dict[str, Any] | None = None,
) -> GeminiRun:
    workdir.mkdir(exist_ok=True)
    home = workdir.parent / f"{workdir.name}-home"
    (home / ".gemini").mkdir(parents=True)
    settings = {**SETTINGS, "modelConfigs": model_configs} if model_configs else SETTINGS
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = client_env(home, GOOGLE_GEMINI_BASE_URL=gateway_url, GEMINI_API_KEY=key)
    proc = subprocess.run(
        [str(GEMINI), "-m", model, "--yolo", "--output-format", "stream-json", "-p", prompt],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    return GeminiRun(proc.returncode, json_lines(proc.stdout), proc.stderr)


async def asks_for_the_file(
    stack: Stack,
    fake: FakeUpstream,
    model: str,
    workdir: Path,
    model_configs: dict[str, Any] | None = None,
) -> GeminiRun:
    """Gemini CLI asked to create ``workdir``/gemini.txt, ``fake`` scripted to call write_file
    for it and then to answer ``FINAL_TEXT``."""
    fake.script = AgentScript(
        keyword=KEYWORD,
        tool="write_file",
        arguments={"file_path": str(workdir / "gemini.txt"), "content": FILE_TEXT},
        final_text=FINAL_TEXT,
    )
    prompt = f"{KEYWORD}: create gemini.txt in the current directory."
    return await asyncio.to_thread(
        run_gemini, stack.gateway.url, stack.seeded.user_key, model, prompt, workdir, model_configs
    )


@needs_gemini
@pytest.mark.parametrize(("provider", "model"), MODELS)
async def test_gemini_cli_writes_a_file(
    stack: Stack, tmp_path: Path, provider: str, model: str
) -> None:
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    workdir = tmp_path / "work"
    target = workdir / "gemini.txt"
    run = await asks_for_the_file(stack, fake, model, workdir)
    assert run.returncode == 0, run.explain()
    assert target.read_text() == FILE_TEXT
    # Gemini CLI called its write_file tool with the scripted arguments, it succeeded, and the
    # final answer was printed.
    uses = run.of("tool_use")
    assert [(u["tool_name"], u["parameters"]) for u in uses] == [
        ("write_file", fake.script.arguments)
    ], run.explain()
    assert [r["status"] for r in run.of("tool_result")] == ["success"], run.explain()
    said = "".join(m["content"] for m in run.of("message") if m.get("role") == "assistant")
    assert said == FINAL_TEXT, run.explain()
    (result,) = run.of("result")
    assert result["status"] == "success", run.explain()

    sent = chats(provider, fake)
    assert len(sent) == 2, [r.path for r in fake.requests]
    (_, first_body, first), (_, _, last) = sent
    assert "write_file" in first.tools and "run_shell_command" in first.tools
    assert KEYWORD in first.user_text
    assert "CLI agent specializing in software engineering tasks" in first.system_text
    # The tool's result went back to the model as the result of that call.
    assert last.result_for == fake.script.call_id
    assert str(target) in last.result_text
    # The model named in the URL path, slash and all, picked provider and model.
    assert first_body["model"] == model.split("/", 1)[1]
    # The CLI's tool schemas (``parametersJsonSchema``) reached the provider whole.
    assert tool_schema(provider, first_body, "write_file")["required"] == ["file_path", "content"]
    if provider == "anthropic":
        # Gemini CLI always sends temperature 1 and topP 0.95; Anthropic's current models
        # (Sonnet 4.5, Haiku 4.5, Opus 4.1 and later) answer 400 "`temperature` and `top_p`
        # cannot both be specified for this model" (the fake does not play that check).
        sampling = {k: first_body[k] for k in ("temperature", "top_p") if k in first_body}
        assert len(sampling) < 2, f"real Claude refuses this: {sampling}"


def tool_schema(provider: str, body: dict[str, Any], name: str) -> dict[str, Any]:
    if provider == "anthropic":
        return next(t["input_schema"] for t in body["tools"] if t["name"] == name)
    return next(t["function"]["parameters"] for t in body["tools"] if t["function"]["name"] == name)


@needs_gemini
async def test_gemini_cli_on_a_reasoning_model_with_the_settings_its_refusal_names(
    stack: Stack, tmp_path: Path
) -> None:
    """o-series and gpt-5 models take temperature and top_p only at their default (1); Gemini
    CLI sends topP 0.95. The gateway refuses the value rather than drop it, and the refusal
    Gemini CLI prints names the settings.json override that fixes it; with that override the
    same run writes the file and the model gets neither value."""
    stack.reset()
    fake: FakeUpstream = stack.fakes()["openai"]  # type: ignore[assignment]
    refused = await asks_for_the_file(stack, fake, REASONING_MODEL, tmp_path / "plain")
    served = await asks_for_the_file(
        stack, fake, REASONING_MODEL, tmp_path / "override", REASONING_SAMPLING
    )
    assert refused.returncode != 0, refused.explain()
    (result,) = refused.of("result")
    printed = result["error"]["message"]  # "[API Error: <the gateway's JSON answer>]"
    message = json.loads(printed[printed.index("{") : printed.rindex("}") + 1])["error"]["message"]
    assert "'top_p' does not support 0.95 with openai model 'o3'" in message, message
    assert '"customOverrides"' in message and f'"{REASONING_MODEL}"' in message, message
    assert not (tmp_path / "plain" / "gemini.txt").exists()

    assert served.returncode == 0, served.explain()
    assert (tmp_path / "override" / "gemini.txt").read_text() == FILE_TEXT
    sent = chats("openai", fake)
    assert len(sent) == 2, [r.path for r in fake.requests]  # the refused run sent nothing
    for _, body, _ in sent:
        assert body["model"] == "o3"
        assert "top_p" not in body and "temperature" not in body, body
