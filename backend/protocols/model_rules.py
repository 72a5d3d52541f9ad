"""What each provider and model can honour: the one table behind "never a silent drop".

Two tables, both pure data read by pure functions:

- ``MODEL_RULES``: per-model parameter rules. OpenAI reasoning models (o1, o3, o4-mini, gpt-5...)
  take ``max_completion_tokens`` (``max_tokens`` is a 400 there) and accept ``temperature`` and
  ``top_p`` only at their default, 1. The OpenAI encoder asks ``model_rules`` for the field name;
  a sampling value other than 1 is refused here with a 400 naming the parameter and the model
  (the gateway refuses rather than dropping it: a client that set ``temperature: 0`` expects a
  deterministic answer, and silently ignoring that is the drop issue 14 forbids). A value of 1 is
  the model's own default and is left out of the upstream body.
- ``FIELD_TABLES`` (``OPENAI_FIELDS``, ``ANTHROPIC_FIELDS``): for each top-level request field
  the IR does not model (``ChatRequest.extra``) or models only for some providers, what each
  provider kind does with it: ``"pass"`` (same protocol, sent verbatim), ``"translate"`` (the
  provider's encoder maps it, e.g. OpenAI ``seed`` to Gemini ``generationConfig.seed``),
  ``"ignore"`` (a documented no-op: a hint whose absence cannot change what the client gets
  back, listed in the README) or ``"refuse"`` (a 400 naming the field and the provider). A field
  missing from the table is passed to an upstream of the caller's own protocol (the passthrough)
  and refused by any other, so a new one is never dropped silently. Extras below the top level
  (content blocks, tool types, unmodelled keys of a block) are refused elsewhere likewise
  (``extras.foreign_extra``).

Same protocol in and out, every extra travels: ``n > 1``, ``logprobs``, documents, server tools,
their answer blocks, streamed and not.

``refusal(req, kind, provider, model)`` returns the ``InvalidRequest`` a request earns on that
provider and model, or ``None``. The pipeline asks it for every fallback candidate (a candidate
that cannot honour the request is skipped, the first refusal is the answer when none can), and
the Gemini and Ollama encoders ask it again, so no path sends a degraded request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from backend.ir.chat import ChatRequest, ImagePart, Tool, ToolResultPart
from backend.ir.errors import InvalidRequest
from backend.protocols.extras import PROTOCOL_NAMES, caller_protocol, foreign_extra, same_wire
from backend.protocols.files import file_refusal
from backend.protocols.model_limits import anthropic_sampling_refusal
from backend.protocols.reasoning import (  # noqa: F401  (re-exported: codecs import them here)
    ADAPTIVE_DEFAULT_EFFORT,
    EFFORT_BUDGETS,
    OLLAMA_THINK_LEVELS,
    ollama_think,
    reasoning_budget,
    reasoning_effort,
)

Kind = Literal["openai", "anthropic", "gemini", "ollama"]
Support = Literal["pass", "translate", "ignore", "refuse"]


@dataclass(frozen=True, slots=True)
class ModelRules:
    #: Name of the output-token limit in an OpenAI-format body.
    max_tokens_field: str = "max_tokens"
    #: ``temperature`` / ``top_p`` accepted only at their default (1).
    fixed_sampling: bool = False
    #: How ``response_format`` json_schema reaches the model: its own constrained decoding
    #: (``"native"``: OpenAI ``response_format``, Anthropic ``output_config.format``, Gemini
    #: ``responseSchema``, Ollama ``format``) or a forced tool whose input is the answer.
    structured_output: Literal["native", "forced_tool"] = "native"


DEFAULT_RULES = ModelRules()
REASONING_RULES = ModelRules(max_tokens_field="max_completion_tokens", fixed_sampling=True)
FORCED_TOOL_RULES = ModelRules(structured_output="forced_tool")
_CLAUDE_WITHOUT_FORMAT = r"claude-(?:instant|2|3)|claude-(?:opus|sonnet)-4(?:$|-0|-20\d{6})"

#: (provider kinds, model id pattern, rules); the first match wins. The model id is the
#: upstream's (``o3-mini``, an Azure deployment named after its model...), matched from its start.
MODEL_RULES: tuple[tuple[frozenset[str], re.Pattern[str], ModelRules], ...] = (
    # gpt-5-chat-* is the non-reasoning chat model and takes sampling parameters.
    (frozenset({"openai"}), re.compile(r"gpt-5(?:\.\d+)?-chat"), DEFAULT_RULES),
    (frozenset({"openai"}), re.compile(r"(?:o\d+(?:$|-)|gpt-5)"), REASONING_RULES),
    # Claude models before Sonnet/Haiku/Opus 4.5 (and Opus 4.1) have no output_config.format:
    # they get the schema as a forced tool. Unknown (newer) Claude ids are assumed to have it.
    (frozenset({"anthropic"}), re.compile(_CLAUDE_WITHOUT_FORMAT), FORCED_TOOL_RULES),
)

_P: Support = "pass"
_T: Support = "translate"
_I: Support = "ignore"
_R: Support = "refuse"

#: OpenAI chat-completions request fields the IR keeps in ``extra``, by target provider kind.
OPENAI_FIELDS: dict[str, dict[str, Support]] = {
    "audio": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "frequency_penalty": {"openai": _P, "anthropic": _R, "gemini": _T, "ollama": _T},
    "presence_penalty": {"openai": _P, "anthropic": _R, "gemini": _T, "ollama": _T},
    "logit_bias": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "logprobs": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "top_logprobs": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "modalities": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "n": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    "seed": {"openai": _P, "anthropic": _R, "gemini": _T, "ollama": _T},
    "web_search_options": {"openai": _P, "anthropic": _R, "gemini": _R, "ollama": _R},
    # Hints and bookkeeping: the answer is the same without them.
    "moderation": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "prediction": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "prompt_cache_key": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "prompt_cache_options": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "prompt_cache_retention": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "safety_identifier": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "service_tier": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "store": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    "verbosity": {"openai": _P, "anthropic": _I, "gemini": _I, "ollama": _I},
    # Mapped through ``Reasoning`` (see ``EFFORT_BUDGETS``), not through ``extra``.
    "reasoning_effort": {"openai": _P, "anthropic": _T, "gemini": _T, "ollama": _T},
}

#: Anthropic messages request fields the IR keeps in ``extra``, by target provider kind.
ANTHROPIC_FIELDS: dict[str, dict[str, Support]] = {
    "top_k": {"anthropic": _P, "openai": _R, "gemini": _T, "ollama": _T},
    "container": {"anthropic": _P, "openai": _R, "gemini": _R, "ollama": _R},
    "mcp_servers": {"anthropic": _P, "openai": _R, "gemini": _R, "ollama": _R},
    # output_config.format is modelled (response_format), its effort too (``Reasoning``, with
    # ``thinking: {type: adaptive}``); the rest has no meaning elsewhere.
    "output_config": {"anthropic": _P, "openai": _T, "gemini": _T, "ollama": _T},
    "cache_control": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    "context_management": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    "service_tier": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    "inference_geo": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    "speed": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    "diagnostics": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    # A header the SDK sends (anthropic-user-profile-id), forwarded to Anthropic.
    "user_profile_id": {"anthropic": _P, "openai": _I, "gemini": _I, "ollama": _I},
    # A header the SDK sends: the gateway's own credential decides the workspace.
    "workspace_id": {"anthropic": _I, "openai": _I, "gemini": _I, "ollama": _I},
}

#: Gemini-door fields the IR keeps in ``extra``: other top-level fields by name, and
#: ``generationConfig`` fields as ``generationConfig.<name>`` (those the IR models fully,
#: temperature, topP, maxOutputTokens, stopSequences, are not extras), by target provider kind.
GEMINI_FIELDS: dict[str, dict[str, Support]] = {
    # Gemini CLI sends topK 64 with every request: OpenAI has no top-k (a documented no-op).
    "generationConfig.topK": {"gemini": _P, "anthropic": _T, "ollama": _T, "openai": _I},
    "generationConfig.seed": {"gemini": _P, "openai": _T, "ollama": _T, "anthropic": _R},
    "generationConfig.presencePenalty": {"gemini": _P, "openai": _T, "ollama": _T, "anthropic": _R},
    "generationConfig.frequencyPenalty": {
        "gemini": _P,
        "openai": _T,
        "ollama": _T,
        "anthropic": _R,
    },
    # Modelled too (reasoning, response_format); kept verbatim for Gemini itself.
    "generationConfig.thinkingConfig": {"gemini": _P, "openai": _T, "anthropic": _T, "ollama": _T},
    "generationConfig.responseSchema": {"gemini": _P, "openai": _T, "anthropic": _T, "ollama": _T},
    "generationConfig.responseJsonSchema": {
        "gemini": _P,
        "openai": _T,
        "anthropic": _T,
        "ollama": _T,
    },
    # text/plain and application/json are harmless (response_format); other types refused.
    "generationConfig.responseMimeType": {
        "gemini": _P,
        "openai": _R,
        "anthropic": _R,
        "ollama": _R,
    },
    "generationConfig.candidateCount": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    "generationConfig.responseLogprobs": {
        "gemini": _P,
        "openai": _R,
        "anthropic": _R,
        "ollama": _R,
    },
    "generationConfig.logprobs": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    "generationConfig.responseModalities": {
        "gemini": _P,
        "openai": _R,
        "anthropic": _R,
        "ollama": _R,
    },
    "generationConfig.speechConfig": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    "generationConfig.imageConfig": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    "generationConfig.mediaResolution": {"gemini": _P, "openai": _I, "anthropic": _I, "ollama": _I},
    "generationConfig.enableEnhancedCivicAnswers": {
        "gemini": _P,
        "openai": _I,
        "anthropic": _I,
        "ollama": _I,
    },
    # Each provider applies its own safety system: Gemini's thresholds are a no-op elsewhere.
    "safetySettings": {"gemini": _P, "openai": _I, "anthropic": _I, "ollama": _I},
    "cachedContent": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    # Only kept when the IR's tool_choice cannot say it (several allowed names, VALIDATED...).
    "toolConfig": {"gemini": _P, "openai": _R, "anthropic": _R, "ollama": _R},
    "serviceTier": {"gemini": _P, "openai": _I, "anthropic": _I, "ollama": _I},
    "store": {"gemini": _P, "openai": _I, "anthropic": _I, "ollama": _I},
    "labels": {"gemini": _P, "openai": _I, "anthropic": _I, "ollama": _I},
}

#: The field table of each caller protocol (a protocol without one has every field refused).
FIELD_TABLES: dict[str, dict[str, dict[str, Support]]] = {
    "openai": OPENAI_FIELDS,
    "anthropic": ANTHROPIC_FIELDS,
    "gemini": GEMINI_FIELDS,
}

#: Sampling fields every door can ask for, by the name encoders use, and each door's spelling in
#: ``ChatRequest.extra`` (OpenAI's and Anthropic's top-level names, the Gemini door's).
SAMPLING_EXTRAS: dict[str, tuple[str, ...]] = {
    "top_k": ("top_k", "generationConfig.topK"),
    "seed": ("seed", "generationConfig.seed"),
    "frequency_penalty": ("frequency_penalty", "generationConfig.frequencyPenalty"),
    "presence_penalty": ("presence_penalty", "generationConfig.presencePenalty"),
}


def sampling_extras(req: ChatRequest) -> dict[str, int | float]:
    """The sampling extras ``req`` asks for (``top_k``, ``seed``, penalties), whichever door."""
    out: dict[str, int | float] = {}
    for name, spellings in SAMPLING_EXTRAS.items():
        for key in spellings:
            value = req.extra.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[name] = value
                break
    return out


#: Why a refused field cannot be honoured, for the error message.
_WHY: dict[str, str] = {
    "audio": "it cannot produce audio output",
    "modalities": "it cannot produce audio output",
    "n": "it returns one choice per request",
    "logprobs": "it returns no log probabilities",
    "top_logprobs": "it returns no log probabilities",
    "logit_bias": "it has no logit bias",
    "seed": "it has no sampling seed",
    "frequency_penalty": "it has no frequency penalty",
    "presence_penalty": "it has no presence penalty",
    "web_search_options": "its web search is not the same tool",
    "top_k": "it has no top-k sampling",
    "container": "it has no code-execution container",
    "mcp_servers": "it cannot call MCP servers",
    "generationConfig.seed": "it has no sampling seed",
    "generationConfig.presencePenalty": "it has no presence penalty",
    "generationConfig.frequencyPenalty": "it has no frequency penalty",
    "generationConfig.responseMimeType": "it answers text or JSON only",
    "generationConfig.candidateCount": "it returns one candidate per request",
    "generationConfig.responseLogprobs": "it returns no log probabilities",
    "generationConfig.logprobs": "it returns no log probabilities",
    "generationConfig.responseModalities": "it answers in text only",
    "generationConfig.speechConfig": "it cannot produce audio output",
    "generationConfig.imageConfig": "it cannot produce images",
    "cachedContent": "it cannot read Gemini's cached content (send the content itself)",
    "toolConfig": "its tool choice cannot restrict calls to some of the tools or validate them",
}


def kind_of(provider_kind: str) -> Kind:
    """Provider adapter kind (``azure`` and compatible servers speak OpenAI) -> codec kind."""
    if provider_kind in ("anthropic", "gemini", "ollama"):
        return provider_kind  # type: ignore[return-value]
    return "openai"


def rules_for(kind: str, model: str) -> ModelRules:
    k = kind_of(kind)
    for kinds, pattern, rules in MODEL_RULES:
        if k in kinds and pattern.match(model):
            return rules
    return DEFAULT_RULES


def _no_translation(req: ChatRequest) -> str:
    door = caller_protocol(req)
    name = PROTOCOL_NAMES.get(door, door)
    return f"it is part of the {name} API and has no translation there"


def sampling_default(value: float | None) -> bool:
    """True when a fixed-sampling model may take ``value`` (unset, or the default 1)."""
    return value is None or value == 1


def _fixed_sampling_hint(req: ChatRequest) -> str:
    """How the Gemini door's usual client sends the default: Gemini CLI sends temperature 1 and
    topP 0.95 unless its settings give the model others (a match on the name it asked for)."""
    if caller_protocol(req) != "gemini":
        return ""
    asked = orjson.dumps(req.model).decode()
    return (
        " Gemini CLI: give this model temperature 1 and topP 1 in ~/.gemini/settings.json: "
        f'"modelConfigs": {{"customOverrides": [{{"match": {{"model": {asked}}}, '
        '"modelConfig": {"generateContentConfig": {"temperature": 1, "topP": 1}}}]}.'
    )


def refusal(req: ChatRequest, kind: str, provider: str, model: str) -> InvalidRequest | None:
    """The 400 ``req`` earns on ``provider`` (adapter ``kind``) and its ``model``, or None."""
    k = kind_of(kind)
    where = f"{provider} model {model!r}"
    rules = rules_for(k, model)
    if rules.fixed_sampling:
        for name, value in (("temperature", req.temperature), ("top_p", req.top_p)):
            if not sampling_default(value):
                return InvalidRequest(
                    f"Unsupported value: '{name}' does not support {value} with {where}. Only "
                    "the default (1) value is supported." + _fixed_sampling_hint(req),
                    param=name,
                    code="unsupported_value",
                )
    if not same_wire(req, k):
        table = FIELD_TABLES.get(caller_protocol(req), {})
        for name, value in req.extra.items():
            if name.startswith("_") or value is None or _harmless_value(name, value):
                continue
            support = table.get(name, {}).get(k, "refuse")
            if support == "refuse":
                return _unsupported(name, where, _WHY.get(name, _no_translation(req)))
        foreign = foreign_extra(req)
        if foreign is not None:
            return InvalidRequest(
                f"Unsupported parameter: {foreign.what} ({foreign.where}) cannot be honoured by "
                f"{where}: {_no_translation(req)}.",
                param=foreign.param,
                code="unsupported_parameter",
            )
        files = file_refusal(req, k, where)
        if files is not None:
            return files
    if k in ("gemini", "ollama") and req.parallel_tool_calls is False and req.tools:
        return InvalidRequest(
            f"Unsupported value: 'parallel_tool_calls' false cannot be honoured by {where}: it "
            "cannot limit a turn to one tool call.",
            param="parallel_tool_calls",
            code="unsupported_value",
        )
    if k == "ollama":
        return _ollama_refusal(req, where)
    if k == "anthropic":
        top_k = sampling_extras(req).get("top_k")
        sampling = anthropic_sampling_refusal(req, model, where, top_k)
        if sampling is not None:
            return sampling
    if k == "gemini" and not same_wire(req, k):
        # A Gemini client's own schema goes to Gemini verbatim: Gemini judges it itself.
        problem = gemini_schema_problem(wanted_schema(req))
        if problem is not None:
            return InvalidRequest(
                f"Unsupported value: 'response_format.json_schema.schema' cannot be honoured by "
                f"{where}: Gemini's response schema cannot express {problem}.",
                param="response_format",
                code="unsupported_value",
            )
    return structured_refusal(req, k, where, model, thinking_on(req.thinking))


# -- structured output (response_format) ----------------------------------------------------------

#: Forced-tool name for ``json_object`` (no schema name to borrow).
JSON_OBJECT_TOOL = "json_object"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def wanted_schema(req: ChatRequest) -> tuple[str, dict[str, Any]] | None:
    """(name, JSON schema) that ``response_format`` asks the answer to match, or None.

    ``json_object`` is the schema of any object. An Anthropic client's own
    ``output_config.format`` is forwarded to Anthropic as is, so it asks nothing more here.
    """
    output_config = req.extra.get("output_config")
    if isinstance(output_config, dict) and output_config.get("format"):
        return None
    fmt = req.response_format or {}
    if fmt.get("type") == "json_object":
        return JSON_OBJECT_TOOL, {"type": "object"}
    if fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    spec = spec if isinstance(spec, dict) else {}
    name, schema = spec.get("name"), spec.get("schema")
    return (
        name if isinstance(name, str) and _TOOL_NAME.match(name) else "output",
        schema if isinstance(schema, dict) else {"type": "object"},
    )


def structured_tool(req: ChatRequest, kind: str, model: str) -> str | None:
    """Name of the forced tool whose input is the answer, when ``req`` on ``model`` needs one.

    Only Anthropic forces a tool: for ``json_object`` (it has no "any JSON" format) and for
    ``json_schema`` on models without ``output_config.format``.
    """
    asked = wanted_schema(req)
    if asked is None or kind_of(kind) != "anthropic":
        return None
    fmt = req.response_format or {}
    if fmt.get("type") == "json_schema" and rules_for(kind, model).structured_output == "native":
        return None
    return asked[0]


def thinking_on(thinking: Any) -> bool:
    """True for an Anthropic ``thinking`` config that turns thinking on (budgeted, adaptive)."""
    return isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")


def structured_refusal(
    req: ChatRequest, kind: str, where: str, model: str, thinking: bool
) -> InvalidRequest | None:
    """The 400 a structured-output request earns where its forced tool cannot be forced."""
    name = structured_tool(req, kind, model)
    if name is None:
        return None
    why = None
    if thinking:
        why = "its structured output there is a forced tool, which thinking does not allow"
    elif req.tool_choice is not None and req.tool_choice.mode == "none" and req.tools:
        why = "its structured output there is a tool call, which tool_choice 'none' forbids"
    elif any(isinstance(t, Tool) and t.name == name for t in req.tools):
        why = f"its structured output there is a tool named {name!r}, as is a client tool"
    if why is None:
        return None
    return InvalidRequest(
        f"Unsupported value: 'response_format' cannot be honoured by {where}: {why}.",
        param="response_format",
        code="unsupported_value",
    )


def _harmless_value(name: str, value: Any) -> bool:
    """Values that ask for nothing beyond the default, whichever provider answers."""
    if name == "n":
        return value == 1
    if name == "logprobs":
        return value is False
    if name == "top_logprobs":
        return value == 0
    if name == "modalities":
        return isinstance(value, list) and all(m == "text" for m in value)
    if name == "generationConfig.candidateCount":
        return value == 1
    if name == "generationConfig.responseLogprobs":
        return value is False
    if name == "generationConfig.logprobs":
        return value == 0
    if name == "generationConfig.responseModalities":
        return isinstance(value, list) and all(str(m).upper() == "TEXT" for m in value)
    if name == "generationConfig.responseMimeType":
        return value in ("text/plain", "application/json")  # response_format says it
    return False


def _unsupported(name: str, where: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported parameter: '{name}' cannot be honoured by {where}: {why}.",
        param=name,
        code="unsupported_parameter",
    )


def _ollama_refusal(req: ChatRequest, where: str) -> InvalidRequest | None:
    choice = req.tool_choice
    if choice is not None and choice.mode in ("required", "tool") and req.tools:
        return InvalidRequest(
            f"Unsupported value: 'tool_choice' {choice.mode!r} cannot be honoured by {where}: "
            "Ollama cannot force a tool call (use 'auto' or 'none').",
            param="tool_choice",
            code="unsupported_value",
        )
    for message in req.messages:
        for part in message.parts:
            images = part.content if isinstance(part, ToolResultPart) else [part]
            for image in images:
                if isinstance(image, ImagePart) and not _inline(image):
                    return InvalidRequest(
                        f"Unsupported value: image URLs cannot be honoured by {where}: Ollama "
                        "takes inline images only and the gateway does not fetch URLs; send the "
                        "image as a base64 data: URL.",
                        param="messages",
                        code="unsupported_value",
                    )
    return None


def _inline(image: ImagePart) -> bool:
    return bool(image.data) or (image.url or "").startswith("data:")


# -- reasoning (the effort <-> budget table lives in ``reasoning``) ---------------------------
def takes_reasoning_effort(kind: str, model: str) -> bool:
    """OpenAI reasoning models take ``reasoning_effort``; other models answer 400 to it."""
    return kind_of(kind) == "openai" and rules_for(kind, model) == REASONING_RULES


#: JSON Schema keys Gemini's ``responseSchema`` has no equivalent for; dropping them (as the tool
#: schema rewrite may) would let an answer through that the client's schema forbids.
_GEMINI_LOST = {
    "prefixItems": "tuple items ('prefixItems')",
    "patternProperties": "'patternProperties'",
    "not": "'not'",
    "if": "conditional schemas ('if')",
}


def gemini_schema_problem(asked: tuple[str, dict[str, Any]] | None) -> str | None:
    """What in a response schema Gemini cannot enforce (recursion, non-string enums, maps...)."""
    if asked is None or asked[0] == JSON_OBJECT_TOOL:
        return None
    root = asked[1]
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(root.get(key), dict):
            defs.update({f"#/{key}/{k}": v for k, v in root[key].items()})

    def walk(node: Any, seen: frozenset[str], at: str) -> str | None:
        if isinstance(node, list):
            return next((p for n in node if (p := walk(n, seen, at)) is not None), None)
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return f"the recursive reference {ref!r}"
            if ref in defs:
                problem = walk(defs[ref], seen | {ref}, ref)
                if problem is not None:
                    return problem
        for key, what in _GEMINI_LOST.items():
            if key in node:
                return f"{what} at {at}"
        if isinstance(node.get("additionalProperties"), dict):
            return f"a map ('additionalProperties' with a schema) at {at}"
        values = node.get("enum", [node["const"]] if "const" in node else [])
        if isinstance(values, list) and any(not isinstance(v, str) for v in values):
            return f"a non-string enum or const at {at}"
        for key, child in node.items():
            if key in ("$defs", "definitions", "enum", "const", "default", "examples"):
                continue
            if key == "properties" and isinstance(child, dict):
                for name, sub in child.items():
                    if (problem := walk(sub, seen, f"{at}/properties/{name}")) is not None:
                        return problem
            elif isinstance(child, (dict, list)):
                if (problem := walk(child, seen, f"{at}/{key}")) is not None:
                    return problem
        return None

    return walk(root, frozenset(), "#")
