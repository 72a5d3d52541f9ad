"""Every request parameter of the installed official SDKs, on every provider (issue 14 must-show 3).

The tables below classify each parameter of ``openai``'s chat-completions create params and
``anthropic``'s messages create params, per provider: passed verbatim (same protocol), translated
(a check of what the provider's fake received), a documented no-op (the request is served and
the field does not leak to the provider) or refused with a 400 in the caller's protocol naming
the parameter (and the provider, when the refusal is the provider's). For every parameter and
provider a request carrying it goes through the gateway with the official SDK against the
fakes. The tables' keys must equal the SDK's parameter set: a new SDK version that adds a
parameter fails here until someone decides what it becomes. Where ``model_rules``' field tables
know a parameter, the classification must agree with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import message_create_params
from openai.types.chat import completion_create_params

from backend.protocols.model_rules import ANTHROPIC_FIELDS, OPENAI_FIELDS
from tests.e2e.conftest import Stack

PROVIDERS = ("openai", "anthropic", "gemini", "ollama")
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}
CHAT_PATHS = {
    "openai": "/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "enerateContent",
    "ollama": "/api/chat",
}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": SCHEMA},
}
ANTHROPIC_TOOL = {"name": "get_weather", "input_schema": SCHEMA}


@dataclass(frozen=True)
class Seen:
    """What a fake received for the request: its JSON body, URL path and headers."""

    body: dict[str, Any]
    path: str
    headers: dict[str, str]


Check = Callable[[Seen], Any]


@dataclass(frozen=True)
class Expect:
    kind: str  # "pass" | "translate" | "ignore" | "refuse"
    check: Check | None = None
    #: A refusal made before any provider is chosen (it names no provider).
    everywhere: bool = False


PASS = Expect("pass")
NOOP = Expect("ignore")
REFUSE = Expect("refuse")
REFUSE_ALL = Expect("refuse", everywhere=True)


def tr(check: Check) -> Expect:
    return Expect("translate", check)


@dataclass(frozen=True)
class Case:
    #: SDK keyword arguments: the parameter and what it needs beside it.
    kwargs: dict[str, Any]
    expect: dict[str, Expect]
    #: Model per provider where the default one cannot show the parameter.
    models: dict[str, str] = field(default_factory=dict)
    #: The SDK sends the parameter as this header, not in the body.
    header: str | None = None


def same(name: str, value: Any) -> Check:
    return lambda s: s.body[name] == value


def gen(name: str, value: Any) -> Check:
    return lambda s: s.body["generationConfig"][name] == value


def opt(name: str, value: Any) -> Check:
    return lambda s: s.body["options"][name] == value


def header(name: str) -> Check:
    """For a no-op sent as a header: the header does not reach the provider."""
    return lambda s: name not in s.headers


# -- OpenAI chat completions -------------------------------------------------------------------
OPENAI: dict[str, Case] = {
    "model": Case(
        {},
        {
            "openai": tr(same("model", "gpt-4o-mini")),
            "anthropic": tr(same("model", "claude-sonnet-4-5")),
            "gemini": tr(lambda s: "models/gemini-2.5-flash:" in s.path),
            "ollama": tr(same("model", "llama3.2")),
        },
    ),
    "messages": Case(
        {},
        {
            "openai": tr(lambda s: s.body["messages"] == [{"role": "user", "content": "hello"}]),
            "anthropic": tr(lambda s: s.body["messages"] == [{"role": "user", "content": "hello"}]),
            "gemini": tr(lambda s: s.body["contents"][0]["parts"] == [{"text": "hello"}]),
            "ollama": tr(lambda s: s.body["messages"][-1]["content"] == "hello"),
        },
    ),
    "audio": Case(
        {"audio": {"voice": "alloy", "format": "wav"}},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "frequency_penalty": Case(
        {"frequency_penalty": 0.5},
        {
            "openai": PASS,
            "anthropic": REFUSE,
            "gemini": tr(gen("frequencyPenalty", 0.5)),
            "ollama": tr(opt("frequency_penalty", 0.5)),
        },
    ),
    "function_call": Case({"function_call": "auto"}, dict.fromkeys(PROVIDERS, REFUSE_ALL)),
    "functions": Case(
        {"functions": [{"name": "f", "parameters": SCHEMA}]}, dict.fromkeys(PROVIDERS, REFUSE_ALL)
    ),
    "logit_bias": Case(
        {"logit_bias": {"50256": -100}},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "logprobs": Case(
        {"logprobs": True},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "max_completion_tokens": Case(
        {"max_completion_tokens": 100},
        {
            "openai": PASS,
            "anthropic": tr(same("max_tokens", 100)),
            "gemini": tr(gen("maxOutputTokens", 100)),
            "ollama": tr(opt("num_predict", 100)),
        },
    ),
    "max_tokens": Case(
        {"max_tokens": 100},
        {
            "openai": PASS,
            "anthropic": tr(same("max_tokens", 100)),
            "gemini": tr(gen("maxOutputTokens", 100)),
            "ollama": tr(opt("num_predict", 100)),
        },
    ),
    "metadata": Case(
        {"metadata": {"team": "search"}},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "modalities": Case(
        {"modalities": ["text", "audio"]},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "moderation": Case(
        {"moderation": {"model": "omni-moderation-latest"}},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "n": Case({"n": 2}, {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE}),
    "parallel_tool_calls": Case(
        {"parallel_tool_calls": False, "tools": [OPENAI_TOOL]},
        {
            "openai": PASS,
            "anthropic": tr(lambda s: s.body["tool_choice"]["disable_parallel_tool_use"] is True),
            "gemini": REFUSE,
            "ollama": REFUSE,
        },
    ),
    "prediction": Case(
        {"prediction": {"type": "content", "content": "hello again"}},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "presence_penalty": Case(
        {"presence_penalty": 0.5},
        {
            "openai": PASS,
            "anthropic": REFUSE,
            "gemini": tr(gen("presencePenalty", 0.5)),
            "ollama": tr(opt("presence_penalty", 0.5)),
        },
    ),
    "prompt_cache_key": Case(
        {"prompt_cache_key": "tenant-7"},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "prompt_cache_options": Case(
        {"prompt_cache_options": {"mode": "implicit", "ttl": "30m"}},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "prompt_cache_retention": Case(
        {"prompt_cache_retention": "24h"},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "reasoning_effort": Case(
        {"reasoning_effort": "low"},
        {
            "openai": PASS,
            "anthropic": tr(same("thinking", {"type": "enabled", "budget_tokens": 2048})),
            "gemini": tr(
                lambda s: s.body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 2048
            ),
            "ollama": tr(same("think", True)),
        },
    ),
    "response_format": Case(
        {"response_format": {"type": "json_object"}},
        {
            "openai": PASS,
            "anthropic": tr(lambda s: s.body["tool_choice"]["name"] == "json_object"),
            "gemini": tr(gen("responseMimeType", "application/json")),
            "ollama": tr(same("format", "json")),
        },
    ),
    "safety_identifier": Case(
        {"safety_identifier": "user-hash-1"},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "seed": Case(
        {"seed": 7},
        {
            "openai": PASS,
            "anthropic": REFUSE,
            "gemini": tr(gen("seed", 7)),
            "ollama": tr(opt("seed", 7)),
        },
    ),
    "service_tier": Case(
        {"service_tier": "flex"},
        {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "stop": Case(
        {"stop": ["END"]},
        {
            "openai": PASS,
            "anthropic": tr(same("stop_sequences", ["END"])),
            "gemini": tr(gen("stopSequences", ["END"])),
            "ollama": tr(opt("stop", ["END"])),
        },
    ),
    "store": Case(
        {"store": True}, {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP}
    ),
    "stream": Case(
        {"stream": True},
        {
            "openai": PASS,
            "anthropic": tr(same("stream", True)),
            "gemini": tr(lambda s: ":streamGenerateContent" in s.path),
            "ollama": tr(same("stream", True)),
        },
    ),
    "stream_options": Case(
        # The gateway asks every upstream for usage; the client gets it when it asked.
        {"stream": True, "stream_options": {"include_usage": True}},
        {
            "openai": tr(same("stream_options", {"include_usage": True})),
            "anthropic": tr(same("stream", True)),
            "gemini": tr(lambda s: ":streamGenerateContent" in s.path),
            "ollama": tr(same("stream", True)),
        },
    ),
    "temperature": Case(
        {"temperature": 0.5},
        {
            "openai": PASS,
            "anthropic": tr(same("temperature", 0.5)),
            "gemini": tr(gen("temperature", 0.5)),
            "ollama": tr(opt("temperature", 0.5)),
        },
    ),
    "tool_choice": Case(
        {"tool_choice": "required", "tools": [OPENAI_TOOL]},
        {
            "openai": PASS,
            "anthropic": tr(same("tool_choice", {"type": "any"})),
            "gemini": tr(lambda s: s.body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"),
            "ollama": REFUSE,
        },
    ),
    "tools": Case(
        {"tools": [OPENAI_TOOL]},
        {
            "openai": PASS,
            "anthropic": tr(lambda s: s.body["tools"] == [ANTHROPIC_TOOL]),
            "gemini": tr(
                lambda s: s.body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
            ),
            "ollama": tr(lambda s: s.body["tools"][0]["function"]["name"] == "get_weather"),
        },
    ),
    "top_logprobs": Case(
        {"top_logprobs": 2},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "top_p": Case(
        {"top_p": 0.5},
        {
            "openai": PASS,
            "anthropic": tr(same("top_p", 0.5)),
            "gemini": tr(gen("topP", 0.5)),
            "ollama": tr(opt("top_p", 0.5)),
        },
    ),
    "user": Case(
        {"user": "end-user-1"},
        {
            "openai": PASS,
            "anthropic": tr(same("metadata", {"user_id": "end-user-1"})),
            "gemini": NOOP,
            "ollama": NOOP,
        },
    ),
    "verbosity": Case(
        {"verbosity": "low"}, {"openai": PASS, "anthropic": NOOP, "gemini": NOOP, "ollama": NOOP}
    ),
    "web_search_options": Case(
        {"web_search_options": {"search_context_size": "low"}},
        {"openai": PASS, "anthropic": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
}

# -- Anthropic messages --------------------------------------------------------------------------
ANTHROPIC: dict[str, Case] = {
    "model": Case({}, OPENAI["model"].expect),
    "max_tokens": Case(
        {"max_tokens": 100},
        {
            "anthropic": PASS,
            "openai": tr(same("max_tokens", 100)),
            "gemini": tr(gen("maxOutputTokens", 100)),
            "ollama": tr(opt("num_predict", 100)),
        },
    ),
    "messages": Case(
        {},
        {
            "anthropic": tr(lambda s: s.body["messages"] == [{"role": "user", "content": "hello"}]),
            "openai": tr(lambda s: s.body["messages"] == [{"role": "user", "content": "hello"}]),
            "gemini": tr(lambda s: s.body["contents"][0]["parts"] == [{"text": "hello"}]),
            "ollama": tr(lambda s: s.body["messages"][-1]["content"] == "hello"),
        },
    ),
    "cache_control": Case(
        {"cache_control": {"type": "ephemeral"}},
        {"anthropic": PASS, "openai": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "container": Case(
        {"container": "container_011"},
        {"anthropic": PASS, "openai": REFUSE, "gemini": REFUSE, "ollama": REFUSE},
    ),
    "diagnostics": Case(
        {"diagnostics": {"previous_message_id": "msg_01"}},
        {"anthropic": PASS, "openai": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "inference_geo": Case(
        {"inference_geo": "us"},
        {"anthropic": PASS, "openai": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "metadata": Case(
        {"metadata": {"user_id": "end-user-1"}},
        {
            "anthropic": PASS,
            "openai": tr(lambda s: s.body["safety_identifier"] == s.body["user"] == "end-user-1"),
            "gemini": NOOP,
            "ollama": NOOP,
        },
    ),
    "output_config": Case(
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        {
            "anthropic": PASS,
            "openai": tr(lambda s: s.body["response_format"]["json_schema"]["schema"] == SCHEMA),
            "gemini": tr(gen("responseMimeType", "application/json")),
            "ollama": tr(same("format", SCHEMA)),
        },
    ),
    "service_tier": Case(
        {"service_tier": "standard_only"},
        {"anthropic": PASS, "openai": NOOP, "gemini": NOOP, "ollama": NOOP},
    ),
    "speed": Case(
        {"speed": "fast"}, {"anthropic": PASS, "openai": NOOP, "gemini": NOOP, "ollama": NOOP}
    ),
    "stop_sequences": Case(
        {"stop_sequences": ["END"]},
        {
            "anthropic": PASS,
            "openai": tr(same("stop", ["END"])),
            "gemini": tr(gen("stopSequences", ["END"])),
            "ollama": tr(opt("stop", ["END"])),
        },
    ),
    "stream": Case({"stream": True}, OPENAI["stream"].expect | {"anthropic": PASS}),
    "system": Case(
        {"system": "Be brief."},
        {
            "anthropic": PASS,
            "openai": tr(
                lambda s: s.body["messages"][0] == {"role": "system", "content": "Be brief."}
            ),
            "gemini": tr(
                lambda s: s.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
            ),
            "ollama": tr(
                lambda s: s.body["messages"][0] == {"role": "system", "content": "Be brief."}
            ),
        },
    ),
    "thinking": Case(
        {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096},
        {
            "anthropic": PASS,
            # A reasoning model takes it as an effort (gpt-4o-mini cannot reason: a no-op).
            "openai": tr(same("reasoning_effort", "low")),
            "gemini": tr(
                lambda s: s.body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 2048
            ),
            "ollama": tr(same("think", True)),
        },
        models={"openai": "openai/o3-mini"},
    ),
    "tool_choice": Case(
        {"tool_choice": {"type": "any"}, "tools": [ANTHROPIC_TOOL]},
        {
            "anthropic": PASS,
            "openai": tr(same("tool_choice", "required")),
            "gemini": tr(lambda s: s.body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"),
            "ollama": REFUSE,
        },
    ),
    "tools": Case(
        {"tools": [ANTHROPIC_TOOL]},
        {
            "anthropic": PASS,
            "openai": tr(lambda s: s.body["tools"] == [OPENAI_TOOL]),
            "gemini": tr(
                lambda s: s.body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
            ),
            "ollama": tr(lambda s: s.body["tools"][0]["function"]["name"] == "get_weather"),
        },
    ),
    # The SDK sends these two as headers (anthropic-user-profile-id, anthropic-workspace-id).
    "user_profile_id": Case(
        {"user_profile_id": "uprof_01"},
        {
            "anthropic": PASS,
            "openai": Expect("ignore", header("anthropic-user-profile-id")),
            "gemini": Expect("ignore", header("anthropic-user-profile-id")),
            "ollama": Expect("ignore", header("anthropic-user-profile-id")),
        },
        header="anthropic-user-profile-id",
    ),
    "workspace_id": Case(
        # The gateway's own credential decides the workspace: not forwarded, even to Anthropic.
        {"workspace_id": "wrkspc_01"},
        dict.fromkeys(PROVIDERS, Expect("ignore", header("anthropic-workspace-id"))),
    ),
}


def sdk_parameters(*typed_dicts: Any) -> set[str]:
    return {k for t in typed_dicts for k in t.__required_keys__ | t.__optional_keys__}


def test_the_tables_cover_exactly_the_installed_sdks_parameters() -> None:
    openai_params = sdk_parameters(
        completion_create_params.CompletionCreateParamsBase,
        completion_create_params.CompletionCreateParamsStreaming,
    )
    anthropic_params = sdk_parameters(
        message_create_params.MessageCreateParamsBase,
        message_create_params.MessageCreateParamsStreaming,
    )
    assert set(OPENAI) == openai_params, "classify the OpenAI SDK's new or removed parameters"
    assert set(ANTHROPIC) == anthropic_params, "classify the Anthropic SDK's parameters"
    for cases in (OPENAI, ANTHROPIC):
        for name, case in cases.items():
            assert set(case.expect) == set(PROVIDERS), name


@pytest.mark.parametrize(
    ("table", "cases"), [(OPENAI_FIELDS, OPENAI), (ANTHROPIC_FIELDS, ANTHROPIC)]
)
def test_the_classification_agrees_with_the_field_tables(
    table: dict[str, dict[str, str]], cases: dict[str, Case]
) -> None:
    for name, support in table.items():
        if name in cases:
            assert {p: e.kind for p, e in cases[name].expect.items()} == support, name


@pytest.fixture
def stack(stack: Stack) -> Stack:
    stack.reset()
    return stack


def received(stack: Stack, provider: str) -> list[Seen]:
    fake = stack.fakes()[provider]
    return [
        Seen(r.json or {}, r.path, {k.lower(): v for k, v in r.headers.items()})
        for r in fake.requests  # type: ignore[attr-defined]
        if CHAT_PATHS[provider] in r.path and r.method == "POST"
    ]


def judge(stack: Stack, sdk: str, name: str, provider: str, expect: Expect, error: Any) -> None:
    """Check one (parameter, provider) outcome against its classification."""
    label = f"{sdk} {name} -> {provider}"
    seen = received(stack, provider)
    if expect.kind == "refuse":
        assert error is not None, f"{label}: served, expected a 400"
        assert error.status_code == 400, label
        body = error.response.json()
        message = body["error"]["message"]
        if sdk == "anthropic":
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        else:
            assert body["error"]["param"] == name or f"'{name}'" in message, (label, body)
        assert f"'{name}'" in message or f"{name}:" in message, (label, message)
        if not expect.everywhere:
            assert provider in message, (label, message)
        assert seen == [], f"{label}: refused but sent upstream"
        return
    assert error is None, f"{label}: {error}"
    [request] = seen
    case = (OPENAI if sdk == "openai" else ANTHROPIC)[name]
    if expect.kind == "pass" and case.header is not None:
        assert request.headers[case.header] == case.kwargs[name], label
    elif expect.kind == "pass":
        assert request.body[name] == case.kwargs[name], label
    elif expect.kind == "ignore":
        # Served, and the field does not leak to a provider that does not know it.
        assert name not in request.body, label
        assert expect.check is None or expect.check(request), label
    else:
        assert expect.check is not None and expect.check(request), (label, request.body)


def call_openai(stack: Stack, model: str, kwargs: dict[str, Any]) -> None:
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], **kwargs
    )
    if kwargs.get("stream"):
        chunks = list(answer)  # type: ignore[arg-type]
        usage = [c.usage for c in chunks if c.usage is not None]
        assert usage if kwargs.get("stream_options") else not usage


def call_anthropic(stack: Stack, model: str, kwargs: dict[str, Any]) -> None:
    client = anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )
    kwargs = {"max_tokens": 256} | kwargs
    answer = client.messages.create(
        model=model, messages=[{"role": "user", "content": "hello"}], **kwargs
    )
    if kwargs.get("stream"):
        assert [e.type for e in answer][-1] == "message_stop"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sdk", "name"),
    [("openai", n) for n in sorted(OPENAI)] + [("anthropic", n) for n in sorted(ANTHROPIC)],
)
async def test_every_parameter_on_every_provider(stack: Stack, sdk: str, name: str) -> None:
    case = (OPENAI if sdk == "openai" else ANTHROPIC)[name]
    call = call_openai if sdk == "openai" else call_anthropic
    errors = (openai.BadRequestError, anthropic.BadRequestError)
    for provider in PROVIDERS:
        stack.reset()
        model = case.models.get(provider, MODELS[provider])
        error = None
        try:
            call(stack, model, dict(case.kwargs))
        except errors as exc:
            error = exc
        judge(stack, sdk, name, provider, case.expect[provider], error)
