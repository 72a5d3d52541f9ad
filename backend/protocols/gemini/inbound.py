"""Gemini wire -> IR for clients of the Gemini door (``models/{model}:generateContent`` & co).

The model comes from the URL, as does streaming (``streamGenerateContent``). Field names are
accepted in both proto JSON spellings (``wire.fields``). What the IR models is decoded into it;
everything else travels as extras for a Gemini upstream (``ChatRequest.protocol == "gemini"``)
and is refused for other providers by ``model_rules`` with a 400 naming the field:

- ``contents``: roles ``user`` (also the legacy ``function``) and ``model``; parts ``text``,
  ``thought`` parts (``ThinkingPart``, consecutive ones merged, a ``thoughtSignature`` closing
  one), ``inlineData``/``fileData`` images (``ImagePart``), ``inlineData`` PDFs and text
  documents (``FilePart``), ``functionCall``/``functionResponse``. Other parts (audio and video,
  ``fileData`` documents stored at Google, ``executableCode``...) are ``Opaque``;
  unmodelled keys of a part (a text part's ``thoughtSignature``, ``mediaResolution``...) go to its
  ``extra``.
- Function calls have no id on Gemini's wire unless the client sets one (answers from this door
  give the upstream's id, and Gemini CLI echoes it): the client's id is the IR id, else calls
  get ``call_<n>_<name>``; each ``functionResponse`` answers the call with its ``id``, else the
  earliest unanswered call of its name. A call's ``thoughtSignature`` is a soft wire key of the
  part (Gemini's, or Gemini CLI's placeholder: meaningless elsewhere); a signature packing
  another provider's thinking (``thoughts``) becomes those ``ThinkingPart``s again.
- A ``functionResponse.response`` of ``{"output": text}`` / ``{"error": text}`` (the shape Gemini
  documents and Gemini CLI sends) is that text (``is_error`` for ``error``); any other object is
  its JSON text, marked in the part's ``extra`` so a Gemini upstream gets the object back.
- ``systemInstruction`` -> ``system``; ``tools.functionDeclarations`` -> ``Tool`` (``parameters``
  converted from Gemini's schema, ``parametersJsonSchema`` as is); other tools are ``Opaque``.
- ``toolConfig.functionCallingConfig`` -> ``tool_choice`` (``ANY`` with one allowed name: that
  tool); a config the IR cannot say exactly (several allowed names, ``VALIDATED``, retrieval) is
  kept verbatim in ``extra["toolConfig"]``.
- ``generationConfig``: ``temperature``, ``topP``, ``maxOutputTokens``, ``stopSequences`` are
  modelled; ``responseMimeType`` + ``responseSchema``/``responseJsonSchema`` become
  ``response_format``; ``thinkingConfig`` becomes ``reasoning``. Those three, the sampling fields
  ``topK``/``seed``/``presencePenalty``/``frequencyPenalty`` and everything unmodelled stay verbatim
  in ``extra["generationConfig"]`` (a Gemini upstream gets them exactly; ``model_rules`` says how
  each reaches other providers).
- Other top-level fields (``safetySettings``, ``cachedContent``, ``serviceTier``...) are kept
  verbatim in ``extra``.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Opaque,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols import files
from backend.protocols.gemini.jsonschema import from_gemini_schema
from backend.protocols.gemini.thoughts import unpack_thoughts
from backend.protocols.gemini.wire import (
    CALL_ID,
    GEN_PREFIX,
    JSON_SCHEMA,
    PROTOCOL,
    RESPONSE_JSON,
    fields,
    invalid,
    is_int,
    is_number,
    missing,
    split_soft,
    wire_keys,
)

#: ``ChatRequest.extra`` key of this codec's bookkeeping (never sent as a field).
FLAGS_KEY = "_gemini"
#: Part keys that mean nothing to another provider (a signature for Gemini only, media hints):
#: kept under ``extra[SOFT]`` so only a Gemini upstream gets them and no one refuses them.
_SOFT_KEYS = frozenset({"thoughtSignature", "mediaResolution", "partMetadata"})

_PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_TOOL_MODES = {"AUTO": "auto", "MODE_UNSPECIFIED": "auto", "NONE": "none", "ANY": "required"}
_GEN_MODELLED = ("temperature", "topP", "maxOutputTokens", "stopSequences")
_EFFORTS = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def decode_request(body: Any, model: str, *, stream: bool) -> ChatRequest:
    """A ``generateContent`` / ``streamGenerateContent`` body for ``model`` (from the URL)."""
    return _Decoder().request(fields(body, ""), model, stream=stream, path="")


def decode_count_tokens_request(body: Any, model: str) -> ChatRequest:
    """A ``countTokens`` body: ``contents`` alone, or a whole ``generateContentRequest``."""
    top = fields(body, "")
    if "generateContentRequest" in top:
        extra = sorted(k for k in top if k != "generateContentRequest")
        if extra:
            raise invalid(extra[0], "give either contents or generateContentRequest, not both")
        inner = fields(top["generateContentRequest"], "generateContentRequest")
        inner.pop("model", None)
        return _Decoder().request(inner, model, stream=False, path="generateContentRequest.")
    unknown = sorted(k for k in top if k != "contents")
    if unknown:
        raise invalid(unknown[0], "countTokens takes contents or generateContentRequest")
    return _Decoder().request(top, model, stream=False, path="")


def include_thoughts(req: ChatRequest) -> bool:
    """Whether the client asked for thought parts (``thinkingConfig.includeThoughts``)."""
    flags = req.extra.get(FLAGS_KEY)
    return isinstance(flags, dict) and flags.get("include_thoughts") is True


class _Decoder:
    """One request's pass: numbers function calls and matches their responses."""

    def __init__(self) -> None:
        self.calls = 0
        #: Where restored thinking goes in the content being decoded (see ``restore``).
        self.restore_at = 0
        #: Calls not answered yet, per function name, oldest first: IR ids.
        self.pending: dict[str, list[str]] = {}
        #: The client's own call ids -> IR ids.
        self.by_client_id: dict[str, str] = {}

    def request(self, top: dict[str, Any], model: str, *, stream: bool, path: str) -> ChatRequest:
        top.pop("model", None)  # the URL names the model; a body copy changes nothing
        if "contents" not in top:
            raise missing(f"{path}contents", "contents")
        req = ChatRequest(model=model, messages=[], stream=stream, protocol=PROTOCOL)
        req.include_usage = True
        req.messages = self.contents(top.pop("contents"), f"{path}contents")
        if "systemInstruction" in top:
            req.system = _system(top.pop("systemInstruction"), f"{path}systemInstruction")
        if "tools" in top:
            req.tools = _tools(top.pop("tools"), f"{path}tools")
        if "toolConfig" in top:
            _tool_config(req, top.pop("toolConfig"), f"{path}toolConfig")
        flags: dict[str, Any] = {}
        if "generationConfig" in top:
            _generation(req, top.pop("generationConfig"), f"{path}generationConfig", flags)
        # Everything else (safetySettings, cachedContent, serviceTier...) travels verbatim.
        req.extra.update((k, v) for k, v in top.items() if v is not None)
        req.extra[FLAGS_KEY] = flags
        return req

    # -- contents ------------------------------------------------------------------------------
    def contents(self, value: Any, path: str) -> list[Message]:
        if not isinstance(value, list):
            raise invalid(path, "expected a list of contents")
        if not value:
            raise missing(path, "contents")
        messages = []
        for i, raw in enumerate(value):
            messages.append(self.content(raw, f"{path}[{i}]"))
        return messages

    def content(self, raw: Any, path: str) -> Message:
        c = fields(raw, path)
        role = c.pop("role", None) or "user"
        if role not in ("user", "model", "function"):
            raise invalid(f"{path}.role", f"Please use a valid role: user, model (got {role!r})")
        parts = c.pop("parts", None)
        if not isinstance(parts, list) or not parts:
            raise invalid(f"{path}.parts", "contents.parts must not be empty")
        out: list[Part] = []
        self.restore_at = 0
        for j, part in enumerate(parts):
            self.part(part, f"{path}.parts[{j}]", out)
        msg = Message(role="assistant" if role == "model" else "user", parts=out)
        if c:
            msg.extra = c
        return msg

    def part(self, raw: Any, path: str, out: list[Part]) -> None:
        p = fields(raw, path)
        present = [k for k in _PART_DATA if k in p]
        if len(present) > 1:
            raise invalid(path, f"a part holds one of {', '.join(_PART_DATA)}, not {present}")
        if not present:
            if p.get("thought") is True and "thoughtSignature" in p:
                self.thought(p, "", path, out)
                return
            out.append(Opaque(protocol=PROTOCOL, data=dict(raw)))
            return
        kind = present[0]
        if kind == "text":
            text = p.pop("text")
            if not isinstance(text, str):
                raise invalid(f"{path}.text", "expected a string")
            if p.get("thought") is True:
                self.thought(p, text, path, out)
            else:
                out.append(TextPart(text, extra=split_soft(p, _SOFT_KEYS)))
        elif kind in ("inlineData", "fileData"):
            out.append(_document(p, path) or _media(kind, raw, p, path))
        elif kind == "functionCall":
            self.call(p, path, out)
        else:
            out.append(self.result(p, path))

    def thought(self, p: dict[str, Any], text: str, path: str, out: list[Part]) -> None:
        """A thought part. Gemini's own ``thoughtSignature`` stays a wire key in ``extra``
        (``ThinkingPart.signature`` is Anthropic's: encoders of other protocols must not send
        Gemini's there); a packed one is another provider's thinking coming back."""
        p.pop("thought", None)
        sig = p.get("thoughtSignature")
        if sig is not None and not isinstance(sig, str):
            raise invalid(f"{path}.thoughtSignature", "expected a base64 string")
        packed = unpack_thoughts(sig) if sig else None
        if packed is not None:
            self.restore(packed, out)
            return
        prev = out[-1] if out else None
        if (
            isinstance(prev, ThinkingPart)
            and prev.signature is None
            and prev.redacted_data is None
            and "thoughtSignature" not in wire_keys(prev.extra)
        ):
            # A streamed thought arrives in many parts; the signature comes with the last.
            prev.thinking += text
            if p:
                prev.extra = split_soft({**wire_keys(prev.extra), **p}, _SOFT_KEYS)
            return
        out.append(ThinkingPart(thinking=text, extra=split_soft(p, _SOFT_KEYS)))

    def call(self, p: dict[str, Any], path: str, out: list[Part]) -> None:
        fc = fields(p.pop("functionCall"), f"{path}.functionCall")
        name = fc.pop("name", None)
        if not isinstance(name, str) or not name:
            raise missing(f"{path}.functionCall.name", "name")
        args = fc.pop("args", None)
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise invalid(f"{path}.functionCall.args", "expected a JSON object")
        client_id = fc.pop("id", None)
        sig = p.get("thoughtSignature")
        if sig is not None and not isinstance(sig, str):
            raise invalid(f"{path}.thoughtSignature", "expected a base64 string")
        packed = unpack_thoughts(sig) if sig else None
        if packed is not None:
            self.restore(packed, out)
            del p["thoughtSignature"]
        # The client's id is the IR id (the upstream's own, when this gateway answered with it),
        # so the result goes back to that provider under the id it made. Gemini's signature
        # stays a (soft) wire key of the part: only a Gemini upstream gets it.
        base = _safe_id(client_id) if isinstance(client_id, str) and client_id else None
        ir_id = base or f"call_{self.calls}_{_safe_id(name)}"
        self.calls += 1
        if base:
            self.by_client_id[base] = ir_id
        self.pending.setdefault(name, []).append(ir_id)
        extra = split_soft({**p, **({"functionCall": fc} if fc else {})}, _SOFT_KEYS) or {}
        if base:
            extra[CALL_ID] = True
        out.append(
            ToolCallPart(
                id=ir_id, name=name, arguments=orjson.dumps(args).decode(), extra=extra or None
            )
        )
        self.restore_at = len(out)

    def restore(self, packed: list[Part], out: list[Part]) -> None:
        """Another provider's thinking, back where it was: after the previous call of this
        turn (or at its start), before the text that followed it, as Anthropic requires. The
        shown copies of its text (unsigned thought parts) give way to it."""
        restored = [t for t in packed if not _has_thinking(out, t)]
        texts = {t.thinking for t in restored if isinstance(t, ThinkingPart) and t.thinking}
        out[self.restore_at : self.restore_at] = restored
        shown = [
            i
            for i, p in enumerate(out)
            if isinstance(p, ThinkingPart)
            and p.signature is None
            and p.redacted_data is None
            and not p.extra
            and p.thinking in texts
        ]
        for i in reversed(shown):
            del out[i]
        self.restore_at = len(out) if not shown else self.restore_at + len(restored)

    def result(self, p: dict[str, Any], path: str) -> ToolResultPart:
        fpath = f"{path}.functionResponse"
        fr = fields(p.pop("functionResponse"), fpath)
        name = fr.pop("name", None)
        if not isinstance(name, str) or not name:
            raise missing(f"{fpath}.name", "name")
        response = fr.pop("response", None)
        if response is None:
            response = {}
        if not isinstance(response, dict):
            raise invalid(f"{fpath}.response", "expected a JSON object")
        client_id = fr.pop("id", None)
        ir_id = self.answer(name, client_id)
        content: list[TextPart | ImagePart | Opaque] = []
        extra: dict[str, Any] = split_soft(p, _SOFT_KEYS) or {}
        is_error = False
        keys = set(response)
        if keys == {"output"} and isinstance(response["output"], str):
            content.append(TextPart(response["output"]))
        elif keys == {"error"} and isinstance(response["error"], str):
            content.append(TextPart(response["error"]))
            is_error = True
        else:
            content.append(TextPart(orjson.dumps(response).decode()))
            extra[RESPONSE_JSON] = True
        for k, sub in enumerate(fr.pop("parts", None) or []):
            spath = f"{fpath}.parts[{k}]"
            sp = fields(sub, spath)
            kind = next((key for key in ("inlineData", "fileData") if key in sp), None)
            media = _media(kind, sub, sp, spath) if kind else None
            content.append(media if media is not None else Opaque(protocol=PROTOCOL, data=sub))
        if fr:
            extra["functionResponse"] = fr  # willContinue, scheduling...
        if isinstance(client_id, str) and client_id:
            extra[CALL_ID] = True
        return ToolResultPart(
            tool_call_id=ir_id, content=content, is_error=is_error, extra=extra or None
        )

    def answer(self, name: str, client_id: Any) -> str:
        """The IR id of the call a ``functionResponse`` answers."""
        if isinstance(client_id, str) and client_id:
            known = self.by_client_id.get(_safe_id(client_id))
            if known is not None:
                for ids in self.pending.values():
                    if known in ids:
                        ids.remove(known)
                return known
        waiting = self.pending.get(name)
        if waiting:
            return waiting.pop(0)
        # Answers no call in this conversation: an id of its own (a Gemini upstream matches by
        # name; another provider says what it thinks of an orphan result).
        if isinstance(client_id, str) and client_id:
            return _safe_id(client_id)
        self.calls += 1
        return f"call_{self.calls - 1}_{_safe_id(name)}"


# -- media ---------------------------------------------------------------------------------------


def _media(kind: str, raw: Any, p: dict[str, Any], path: str) -> ImagePart | Opaque:
    """An image as ``ImagePart`` (its other keys in ``extra``); any other media is ``Opaque``."""
    d = fields(p.get(kind), f"{path}.{kind}")
    mime = d.get("mimeType")
    if mime is not None and not isinstance(mime, str):
        raise invalid(f"{path}.{kind}.mimeType", "expected a string")
    if not (mime or "").lower().startswith("image/"):
        return Opaque(protocol=PROTOCOL, data=dict(raw))
    rest = {k: v for k, v in p.items() if k != kind}
    inner = {k: v for k, v in d.items() if k not in ("mimeType", "data", "fileUri")}
    if inner:
        rest[kind] = inner  # displayName...
    if kind == "inlineData":
        data = d.get("data")
        if not isinstance(data, str) or not data:
            raise missing(f"{path}.inlineData.data", "data")
        return ImagePart(data=data, media_type=mime, extra=split_soft(rest, _SOFT_KEYS))
    uri = d.get("fileUri")
    if not isinstance(uri, str) or not uri:
        raise missing(f"{path}.fileData.fileUri", "fileUri")
    return ImagePart(url=uri, media_type=mime, extra=split_soft(rest, _SOFT_KEYS))


def _document(p: dict[str, Any], path: str) -> FilePart | None:
    """An ``inlineData`` document (a PDF, ``text/*``) as the IR's file, its other keys in
    ``extra``; None for anything else (images, audio, video, ``fileData``: Gemini-hosted)."""
    if not isinstance(p.get("inlineData"), dict):
        return None
    d = fields(p["inlineData"], f"{path}.inlineData")  # either proto spelling
    mime = d.get("mimeType")
    data = d.get("data")
    if not isinstance(mime, str) or not isinstance(data, str) or not data:
        return None
    if mime.lower() != files.PDF and not files.is_text(mime):
        return None
    rest = {k: v for k, v in p.items() if k != "inlineData"}
    inner = {k: v for k, v in d.items() if k not in ("mimeType", "data")}
    if inner:
        rest["inlineData"] = inner  # displayName...
    return files.add_extra(files.from_base64(data, mime), split_soft(rest, _SOFT_KEYS))


def _has_thinking(parts: list[Part], t: Part) -> bool:
    """The client kept the thought parts too: do not restore the same thinking twice."""
    if not isinstance(t, ThinkingPart):
        return False
    return any(
        isinstance(p, ThinkingPart)
        and p.signature == t.signature
        and p.redacted_data == t.redacted_data
        for p in parts
    )


def _safe_id(text: str) -> str:
    # Anthropic ids allow [A-Za-z0-9_-] only; the same mapping on calls and responses keeps them
    # matched.
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in text)[:128]


# -- system and tools ------------------------------------------------------------------------


def _system(value: Any, path: str) -> list[TextPart]:
    if isinstance(value, str):
        return [TextPart(value)] if value else []
    c = fields(value, path)
    parts = c.get("parts") or []
    if not isinstance(parts, list):
        raise invalid(f"{path}.parts", "expected a list of parts")
    out = []
    for i, raw in enumerate(parts):
        p = fields(raw, f"{path}.parts[{i}]")
        text = p.get("text")
        if not isinstance(text, str) or set(p) - {"text"}:
            raise invalid(f"{path}.parts[{i}]", "system instructions take text parts only")
        if text:
            out.append(TextPart(text))
    return out


def _tools(value: Any, path: str) -> list[Tool | Opaque]:
    if not isinstance(value, list):
        raise invalid(path, "expected a list of tools")
    out: list[Tool | Opaque] = []
    for i, raw in enumerate(value):
        t = fields(raw, f"{path}[{i}]")
        decls = t.pop("functionDeclarations", None)
        if decls is not None:
            if not isinstance(decls, list):
                raise invalid(f"{path}[{i}].functionDeclarations", "expected a list")
            for j, d in enumerate(decls):
                out.append(_declaration(d, f"{path}[{i}].functionDeclarations[{j}]"))
        # googleSearch, codeExecution, urlContext...: one server tool per key.
        out.extend(Opaque(protocol=PROTOCOL, data={k: v}) for k, v in t.items())
    return out


def _declaration(raw: Any, path: str) -> Tool:
    d = fields(raw, path)
    name = d.pop("name", None)
    if not isinstance(name, str) or not name:
        raise missing(f"{path}.name", "name")
    desc = d.pop("description", None)
    if desc is not None and not isinstance(desc, str):
        raise invalid(f"{path}.description", "expected a string")
    extra: dict[str, Any] = {}
    if "parametersJsonSchema" in d:
        params = d.pop("parametersJsonSchema")
        if not isinstance(params, dict):
            raise invalid(f"{path}.parametersJsonSchema", "expected a JSON Schema object")
        extra[JSON_SCHEMA] = True
        if "parameters" in d:
            raise invalid(path, "give parameters or parametersJsonSchema, not both")
    elif d.get("parameters") is not None:
        params = from_gemini_schema(d.pop("parameters"), f"{path}.parameters")
    else:
        d.pop("parameters", None)
        params = {"type": "object", "properties": {}}
    extra.update(d)  # response, responseJsonSchema, behavior
    return Tool(name=name, description=desc or None, parameters=params, extra=extra or None)


def _tool_config(req: ChatRequest, value: Any, path: str) -> None:
    cfg = fields(value, path)
    fcc_raw = cfg.get("functionCallingConfig")
    exact = set(cfg) <= {"functionCallingConfig"}
    if fcc_raw is not None:
        fcc = fields(fcc_raw, f"{path}.functionCallingConfig")
        mode = str(fcc.get("mode") or "AUTO").upper()
        names = fcc.get("allowedFunctionNames")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise invalid(f"{path}.functionCallingConfig.allowedFunctionNames", "expected names")
        exact = exact and set(fcc) <= {"mode", "allowedFunctionNames"} and mode in _TOOL_MODES
        functions = {t.name for t in req.tools if isinstance(t, Tool)}
        if mode == "ANY" and names and len(set(names)) == 1:
            req.tool_choice = ToolChoice("tool", names[0])
        else:
            req.tool_choice = ToolChoice(_TOOL_MODES.get(mode, "auto"))  # type: ignore[arg-type]
            if names and (mode != "ANY" or set(names) != functions):
                exact = False  # a subset of the tools: only Gemini can say it
    if not exact:
        req.extra["toolConfig"] = value


def _generation(req: ChatRequest, value: Any, path: str, flags: dict[str, Any]) -> None:
    g = fields(value, path)
    kept = {k: v for k, v in g.items() if k not in _GEN_MODELLED and v is not None}
    for key, attr in (("temperature", "temperature"), ("topP", "top_p")):
        v = g.get(key)
        if v is not None:
            if not is_number(v) or v < 0:
                raise invalid(f"{path}.{key}", "expected a non-negative number")
            setattr(req, attr, v)
    max_out = g.get("maxOutputTokens")
    if max_out is not None:
        if not is_int(max_out) or max_out < 1:
            raise invalid(f"{path}.maxOutputTokens", "expected a positive integer")
        req.max_tokens = max_out
    stops = g.get("stopSequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid(f"{path}.stopSequences", "expected a list of strings")
        req.stop = list(stops)
    for key in ("topK", "seed"):
        value = g.get(key)
        if value is None:
            continue
        # The Python SDK types top_k as a float (64.0): an integral number is an integer.
        if not is_number(value) or value != int(value):
            raise invalid(f"{path}.{key}", "expected an integer")
        kept[key] = int(value)
    count = g.get("candidateCount")
    if count is not None and (not is_number(count) or count < 1):
        raise invalid(f"{path}.candidateCount", "expected a positive integer")
    if req.stream and count is not None and count > 1:
        # The stream codec carries the first candidate: more would be dropped, so refuse.
        raise invalid(
            f"{path}.candidateCount",
            "this gateway streams one candidate; ask for several without streaming",
        )
    for key in ("presencePenalty", "frequencyPenalty"):
        if g.get(key) is not None and not is_number(g[key]):
            raise invalid(f"{path}.{key}", "expected a number")
    _response_format(req, g, path)
    thinking = g.get("thinkingConfig")
    if thinking is not None:
        req.reasoning, flags["include_thoughts"] = _thinking(thinking, f"{path}.thinkingConfig")
    for key, v in kept.items():
        req.extra[f"{GEN_PREFIX}{key}"] = v


def _response_format(req: ChatRequest, g: dict[str, Any], path: str) -> None:
    mime = g.get("responseMimeType")
    if mime is not None and not isinstance(mime, str):
        raise invalid(f"{path}.responseMimeType", "expected a MIME type")
    if "responseSchema" in g and "responseJsonSchema" in g:
        raise invalid(path, "give responseSchema or responseJsonSchema, not both")
    if g.get("responseJsonSchema") is not None:
        schema = g["responseJsonSchema"]
        if not isinstance(schema, dict):
            raise invalid(f"{path}.responseJsonSchema", "expected a JSON Schema object")
    elif g.get("responseSchema") is not None:
        schema = from_gemini_schema(g["responseSchema"], f"{path}.responseSchema")
    else:
        schema = None
    if schema is not None:
        if mime != "application/json":
            raise invalid(
                f"{path}.responseMimeType",
                "a response schema needs responseMimeType 'application/json'",
            )
        req.response_format = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema, "strict": True},
        }
    elif mime == "application/json":
        req.response_format = {"type": "json_object"}


def _thinking(value: Any, path: str) -> tuple[Reasoning | None, bool]:
    """(the reasoning asked for, whether thoughts are shown). ``includeThoughts`` alone asks
    for no thinking (Gemini CLI sends it for every model): it shows the thoughts of a model that
    thinks anyway. A budget of -1 (dynamic) is the default effort elsewhere."""
    t = fields(value, path)
    include = t.get("includeThoughts") is True
    budget, level = t.get("thinkingBudget"), t.get("thinkingLevel")
    if budget is not None and not is_int(budget):
        raise invalid(f"{path}.thinkingBudget", "expected an integer")
    if level is not None:
        effort = _EFFORTS.get(str(level).upper())
        if effort is None:
            raise invalid(f"{path}.thinkingLevel", f"expected one of {', '.join(_EFFORTS)}")
        return Reasoning(effort=effort), include
    if budget is None:
        return None, include
    if budget < 0:
        return Reasoning(effort="medium"), include
    return Reasoning(budget_tokens=budget), include
