"""IR -> Gemini request bodies (``generateContent``, ``countTokens``, ``batchEmbedContents``).

Choices where Gemini has no direct equivalent:

- ``system`` text becomes ``systemInstruction``; a ``system`` message in the middle of the
  conversation is folded into it too (appended in order), because Gemini has no system role
  inside ``contents``.
- Roles map to ``user``/``model``; adjacent contents of the same role are merged, since Gemini
  wants all ``functionResponse`` parts answering one parallel call in a single content.
- A tool result needs the function's name, which only the earlier ``ToolCallPart`` with the same
  id knows; an id with no such call is the caller's error (400).
- A function call goes back with its ``thoughtSignature`` (carried in the made-up id, see
  ``toolids``). A model turn whose calls have none (history from another provider) gets
  Google's documented placeholder signature on its first call, so Gemini 3 accepts it.
- Image URLs: ``data:`` URLs become ``inlineData``; other URLs become ``fileData`` with a MIME
  type guessed from the extension (``image/jpeg`` when unknown), which Gemini fetches itself.
- Images inside a tool result follow its ``functionResponse`` as ``inlineData`` parts.
- ``ThinkingPart`` is dropped; ``parallel_tool_calls``, ``user`` and ``metadata`` have no field.
- Sampling fields the IR keeps in ``extra`` go to ``generationConfig``: OpenAI ``seed``,
  ``frequency_penalty`` and ``presence_penalty`` (``seed``, ``frequencyPenalty``,
  ``presencePenalty``) and Anthropic ``top_k`` (``topK``). Whatever Gemini cannot honour
  (``n``, ``logprobs``, audio...) is refused first by ``model_rules.refusal`` (a 400).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols.gemini.schema import to_gemini_schema
from backend.protocols.gemini.toolids import signature_from_id
from backend.protocols.model_rules import reasoning_budget, refusal

#: Google's documented value for function calls whose real signature is unknown.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"

#: ``ChatRequest.extra`` sampling fields (OpenAI's and Anthropic's) -> ``generationConfig`` keys.
_EXTRA_SAMPLING = {
    "seed": "seed",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
    "top_k": "topK",
}

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


def model_path(model: str) -> str:
    """``gemini-2.5-flash`` or ``models/gemini-2.5-flash`` -> ``models/gemini-2.5-flash``."""
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The ``generateContent`` body; the model and ``stream`` go in the URL, not the body."""
    del stream  # part of the URL for Gemini, as is the model
    refused = refusal(req, "gemini", "gemini", model)
    if refused is not None:
        raise refused
    body: dict[str, Any] = {"contents": _contents(req.messages)}
    system = [p.text for p in req.system if p.text]
    system += [m.text() for m in req.messages if m.role == "system" and m.text()]
    if system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in req.tools]}]
        if req.tool_choice is not None:
            cfg: dict[str, Any] = {"mode": _TOOL_MODES[req.tool_choice.mode]}
            if req.tool_choice.mode == "tool" and req.tool_choice.name:
                cfg["allowedFunctionNames"] = [req.tool_choice.name]
            body["toolConfig"] = {"functionCallingConfig": cfg}
    gen = _generation_config(req)
    thinking = _thinking_config(req)
    if thinking is not None:
        gen["thinkingConfig"] = thinking
    if gen:
        body["generationConfig"] = gen
    return body


def _thinking_config(req: ChatRequest) -> dict[str, Any] | None:
    """``reasoning_effort`` / Anthropic ``thinking`` -> ``thinkingConfig`` (budget 0: off);
    thoughts are asked for whenever the model thinks, so the client gets them."""
    if req.reasoning is None:
        return None
    budget = reasoning_budget(req.reasoning)
    if budget <= 0:
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget, "includeThoughts": True}


def encode_count_tokens_request(req: ChatRequest, model: str) -> dict[str, Any]:
    """``countTokens`` body: the whole request, so system text and tools are counted too."""
    inner = encode_request(req, model, stream=False)
    inner.pop("generationConfig", None)
    return {"generateContentRequest": {"model": model_path(model), **inner}}


def encode_embedding_request(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    if any(not isinstance(item, str) for item in req.input):
        raise InvalidRequest("gemini: embeddings take text input, not token ids", param="input")
    path = model_path(model)
    requests = []
    for text in req.input:
        entry: dict[str, Any] = {"model": path, "content": {"parts": [{"text": text}]}}
        if req.dimensions:
            entry["outputDimensionality"] = req.dimensions
        requests.append(entry)
    return {"requests": requests}


# -- contents ------------------------------------------------------------------------------------


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    names = {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "system":
            continue
        role = "model" if msg.role == "assistant" else "user"
        parts = _parts(msg, names)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    for content in out:
        if content["role"] == "model":
            _ensure_signature(content["parts"])
    return out


def _parts(msg: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for p in msg.parts:
        if isinstance(p, TextPart):
            if p.text:  # Gemini rejects empty text parts
                parts.append({"text": p.text})
        elif isinstance(p, ImagePart):
            parts.append(_image(p))
        elif isinstance(p, ToolCallPart):
            part: dict[str, Any] = {"functionCall": {"name": p.name, "args": _args(p)}}
            sig = signature_from_id(p.id)
            if sig:
                part["thoughtSignature"] = sig
            parts.append(part)
        elif isinstance(p, ToolResultPart):
            parts.extend(_tool_result(p, names))
    return parts


def _ensure_signature(parts: list[dict[str, Any]]) -> None:
    calls = [p for p in parts if "functionCall" in p]
    if calls and not any("thoughtSignature" in p for p in calls):
        calls[0]["thoughtSignature"] = PLACEHOLDER_SIGNATURE


def _args(p: ToolCallPart) -> dict[str, Any]:
    if not p.arguments.strip():
        return {}
    try:
        value = orjson.loads(p.arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"gemini: arguments of tool call {p.id!r} are not valid JSON", param="messages"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"gemini: arguments of tool call {p.id!r} must be a JSON object", param="messages"
        )
    return value


def _tool_result(p: ToolResultPart, names: dict[str, str]) -> list[dict[str, Any]]:
    name = names.get(p.tool_call_id)
    if name is None:
        raise InvalidRequest(
            f"gemini: tool result {p.tool_call_id!r} answers no earlier tool call",
            param="messages",
        )
    text = "".join(c.text for c in p.content if isinstance(c, TextPart))
    # Google's documented convention: "output" for results, "error" for failures.
    response = {"error": text} if p.is_error else {"output": text}
    parts: list[dict[str, Any]] = [{"functionResponse": {"name": name, "response": response}}]
    parts.extend(_image(c) for c in p.content if isinstance(c, ImagePart))
    return parts


def _image(p: ImagePart) -> dict[str, Any]:
    if p.data:
        return {"inlineData": {"mimeType": p.media_type or "image/png", "data": p.data}}
    url = p.url or ""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";", 1)[0] or "image/png"
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = p.media_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


# -- tools and generation config -------------------------------------------------------------------


def _declaration(tool: Tool) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = tool.parameters or {}
    # Gemini rejects an OBJECT with empty properties; a function without arguments has none.
    if params.get("properties") or params.get("$ref") or params.get("anyOf"):
        decl["parameters"] = to_gemini_schema(params)
    return decl


def _generation_config(req: ChatRequest) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if req.max_tokens is not None:
        gen["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        gen["temperature"] = req.temperature
    if req.top_p is not None:
        gen["topP"] = req.top_p
    if req.stop:
        gen["stopSequences"] = list(req.stop)
    for name, key in _EXTRA_SAMPLING.items():
        value = req.extra.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            gen[key] = value
    fmt = req.response_format or {}
    if fmt.get("type") == "json_object":
        gen["responseMimeType"] = "application/json"
    elif fmt.get("type") == "json_schema":
        gen["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            gen["responseSchema"] = to_gemini_schema(schema, order_properties=True)
    return gen
