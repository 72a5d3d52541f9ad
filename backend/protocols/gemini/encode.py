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
- Files (PDFs, text documents from any door) are ``inlineData`` (base64) or ``fileData`` (a
  URL); their names have no field (a documented no-op).
- ``ThinkingPart`` is dropped (but for a Gemini client's own thought parts, below);
  ``parallel_tool_calls``, ``user`` and ``metadata`` have no field.
- Sampling fields the IR keeps in ``extra`` go to ``generationConfig``: OpenAI ``seed``,
  ``frequency_penalty`` and ``presence_penalty`` (``seed``, ``frequencyPenalty``,
  ``presencePenalty``) and Anthropic ``top_k`` (``topK``). Whatever Gemini cannot honour
  (``n``, ``logprobs``, audio...) is refused first by ``model_rules.refusal`` (a 400).

Same wire (a client of the Gemini door, ``req.protocol == "gemini"``): what the door kept as
extras goes back verbatim and in place, so Gemini gets what the client sent: unmodelled top-level
fields (``safetySettings``, ``cachedContent``...), every ``generationConfig.*`` extra (they win
over the generated keys: ``thinkingConfig``, ``responseSchema``/``responseJsonSchema``, ``topK``,
``seed``...), a ``toolConfig`` the IR could not say exactly, server tools (``Opaque``), tools given
as ``parametersJsonSchema``, the keys of each part (``thoughtSignature`` on text, thought and call
parts, the client's call ids), thought parts carrying Gemini's signature, a ``functionResponse``
object that was not ``{"output"|"error": text}``, and Gemini-only parts (``Opaque``).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    FilePart,
    ImagePart,
    Message,
    Opaque,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols import files
from backend.protocols.extras import same_wire
from backend.protocols.gemini.schema import to_gemini_schema
from backend.protocols.gemini.toolids import signature_from_id
from backend.protocols.gemini.wire import (
    CALL_ID,
    GEN_PREFIX,
    JSON_SCHEMA,
    PROTOCOL,
    RESPONSE_JSON,
    wire_keys,
)
from backend.protocols.model_limits import clamp_output, gemini_thinking
from backend.protocols.model_rules import reasoning_budget, refusal, sampling_extras

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
    own = same_wire(req, PROTOCOL)
    body: dict[str, Any] = {"contents": _contents(req.messages, own)}
    system = [p.text for p in req.system if p.text]
    system += [m.text() for m in req.messages if m.role == "system" and m.text()]
    if system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    if req.tools:
        # Opaque tools: a Gemini client's server tools; another protocol's were refused above.
        declarations = [_declaration(t, own) for t in req.tools if isinstance(t, Tool)]
        tools = [{"functionDeclarations": declarations}] if declarations else []
        if own:
            tools += [dict(t.data) for t in req.tools if isinstance(t, Opaque)]
        body["tools"] = tools
        if req.tool_choice is not None:
            cfg: dict[str, Any] = {"mode": _TOOL_MODES[req.tool_choice.mode]}
            if req.tool_choice.mode == "tool" and req.tool_choice.name:
                cfg["allowedFunctionNames"] = [req.tool_choice.name]
            body["toolConfig"] = {"functionCallingConfig": cfg}
    gen = _generation_config(req)
    if "maxOutputTokens" in gen:  # above the model's ceiling Gemini answers 400
        gen["maxOutputTokens"] = clamp_output("gemini", model, gen["maxOutputTokens"])
    thinking = _thinking_config(req, model)
    if thinking is not None:
        gen["thinkingConfig"] = thinking
    if own:
        _own_extras(req, body, gen)
    if gen:
        body["generationConfig"] = gen
    return body


def _own_extras(req: ChatRequest, body: dict[str, Any], gen: dict[str, Any]) -> None:
    """A Gemini client's unmodelled fields, verbatim (they win over generated ones)."""
    for key, value in req.extra.items():
        if key.startswith("_"):
            continue
        if key.startswith(GEN_PREFIX):
            gen[key[len(GEN_PREFIX) :]] = value
        else:
            body[key] = value  # safetySettings, cachedContent, toolConfig...
    if "responseJsonSchema" in gen:
        gen.pop("responseSchema", None)


def _thinking_config(req: ChatRequest, model: str) -> dict[str, Any] | None:
    """``reasoning_effort`` / Anthropic ``thinking`` -> ``thinkingConfig`` (budget 0: off),
    within the model's range (``model_limits.gemini_thinking``); thoughts are asked for
    whenever the model thinks, so the client gets them."""
    if req.reasoning is None:
        return None
    return gemini_thinking(model, reasoning_budget(req.reasoning))


def encode_count_tokens_request(req: ChatRequest, model: str) -> dict[str, Any]:
    """``countTokens`` body: the whole request, so system text and tools are counted too."""
    inner = encode_request(req, model, stream=False)
    inner.pop("generationConfig", None)
    return {"generateContentRequest": {"model": model_path(model), **inner}}


def encode_embedding_request(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    if any(not isinstance(item, str) for item in req.input):
        raise InvalidRequest("gemini: embeddings take text input, not token ids", param="input")
    path = model_path(model)
    # A Gemini client's per-input taskType/title (other protocols' requests have none).
    own = req.extra.get("gemini_requests") if req.protocol == PROTOCOL else None
    requests = []
    for i, text in enumerate(req.input):
        entry: dict[str, Any] = {"model": path, "content": {"parts": [{"text": text}]}}
        if req.dimensions:
            entry["outputDimensionality"] = req.dimensions
        if isinstance(own, list) and i < len(own) and isinstance(own[i], dict):
            entry.update(own[i])
        requests.append(entry)
    return {"requests": requests}


# -- contents ------------------------------------------------------------------------------------


def _contents(messages: list[Message], own: bool) -> list[dict[str, Any]]:
    names = {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "system":
            continue
        role = "model" if msg.role == "assistant" else "user"
        parts = _parts(msg, names, own)
        if not parts:
            continue
        keys = wire_keys(msg.extra) if own else {}
        if out and out[-1]["role"] == role and not keys:
            out[-1]["parts"].extend(parts)
        else:
            out.append({**keys, "role": role, "parts": parts})
    for content in out:
        if content["role"] == "model":
            _ensure_signature(content["parts"])
    return out


def _parts(msg: Message, names: dict[str, str], own: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for p in msg.parts:
        keys = wire_keys(p.extra) if own and not isinstance(p, Opaque) else {}
        if isinstance(p, TextPart):
            if p.text or keys:  # Gemini rejects empty text parts (a signed one is Gemini's own)
                parts.append({**keys, "text": p.text})
        elif isinstance(p, ImagePart):
            parts.append(_merged(_image(p), keys))
        elif isinstance(p, FilePart):
            parts.append(_merged(_file(p, own), keys))
        elif isinstance(p, ToolCallPart):
            fc: dict[str, Any] = {"name": p.name, "args": _args(p)}
            if own and p.extra and p.extra.get(CALL_ID):
                fc["id"] = p.id
            part: dict[str, Any] = _merged({"functionCall": fc}, keys)
            sig = keys.get("thoughtSignature") or signature_from_id(p.id)
            if sig:
                part["thoughtSignature"] = sig
            parts.append(part)
        elif isinstance(p, ToolResultPart):
            parts.extend(_tool_result(p, names, own))
        elif isinstance(p, ThinkingPart) and keys:
            # A Gemini client's own thought part (its signature among the keys).
            parts.append({**keys, "text": p.thinking, "thought": True})
        elif isinstance(p, Opaque) and own:
            parts.append(dict(p.data))
    return parts


def _merged(part: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """``part`` with a client's own keys; a key naming the same object merges into it."""
    for key, value in keys.items():
        if isinstance(value, dict) and isinstance(part.get(key), dict):
            part[key] = {**value, **part[key]}
        else:
            part.setdefault(key, value)
    return part


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


def _tool_result(p: ToolResultPart, names: dict[str, str], own: bool) -> list[dict[str, Any]]:
    name = names.get(p.tool_call_id)
    if name is None:
        raise InvalidRequest(
            f"gemini: tool result {p.tool_call_id!r} answers no earlier tool call",
            param="messages",
        )
    text = "".join(c.text for c in p.content if isinstance(c, TextPart))
    # Google's documented convention: "output" for results, "error" for failures.
    response: Any = {"error": text} if p.is_error else {"output": text}
    fr: dict[str, Any] = {"name": name, "response": response}
    keys = wire_keys(p.extra) if own else {}
    if own and p.extra:
        if p.extra.get(RESPONSE_JSON):
            try:
                fr["response"] = orjson.loads(text)
            except orjson.JSONDecodeError:
                pass  # changed on the way (DLP): the text as the output
        if p.extra.get(CALL_ID):
            fr["id"] = p.tool_call_id
    parts: list[dict[str, Any]] = [_merged({"functionResponse": fr}, keys)]
    parts.extend(_image(c) for c in p.content if isinstance(c, ImagePart))
    if own:
        parts.extend(dict(c.data) for c in p.content if isinstance(c, Opaque))
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


def _file(p: FilePart, own: bool) -> dict[str, Any]:
    """A document as ``inlineData`` (base64; a text document re-encoded) or, by URL,
    ``fileData``; Gemini has no file names (a documented no-op) and judges the type itself."""
    mime = files.media_type(p)
    if p.url is not None:
        return {"fileData": {"mimeType": mime, "fileUri": p.url}}
    return {"inlineData": {"mimeType": mime, "data": files.base64_data(p, exact=own)}}


# -- tools and generation config -------------------------------------------------------------------


def _declaration(tool: Tool, own: bool) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = tool.parameters or {}
    if own and tool.extra:
        decl.update(wire_keys(tool.extra))  # response, behavior...
        if tool.extra.get(JSON_SCHEMA):
            decl["parametersJsonSchema"] = params
            return decl
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
    for name, value in sampling_extras(req).items():
        gen[_EXTRA_SAMPLING[name]] = value
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
