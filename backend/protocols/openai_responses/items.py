"""Responses ``input`` items -> IR messages (strict), and the normalized item list the store keeps.

Items map onto the IR as follows; consecutive assistant-side items (``reasoning``, assistant
``message``, ``function_call``) form one assistant turn, consecutive ``function_call_output``
items one user turn of tool results (the Anthropic shape every encoder expects):

- ``message`` (``role`` user / assistant / system / developer; ``type`` may be omitted): text,
  ``input_image`` by URL or data URL, ``input_file`` (``FilePart``: ``file_data``, ``file_url``
  or ``file_id``); system and developer messages before the first turn join
  the system text (after ``instructions``), later ones stay in place.
- ``function_call`` -> ``ToolCallPart`` (``call_id`` is the IR id); ``function_call_output`` ->
  ``ToolResultPart``.
- ``reasoning`` -> ``ThinkingPart`` with the summary text. ``encrypted_content`` the gateway wrote
  (``vocab.SIGNED_PREFIX``) gives back Anthropic's signature; OpenAI's own is kept as
  bookkeeping (``extra["_encrypted_content"]``) for OpenAI's Responses API, and other providers
  drop the unsigned thinking as they do any other provider's.
- ``namespace`` on a call or its output (tools grouped by the client): the IR name is
  ``<namespace>__<name>``, as the flattened tool is called (see ``decode``).
- Anything else (hosted tool calls and outputs, ``item_reference``, images by ``file_id``,
  audio, files inside a tool output) has no IR meaning: it is an ``Opaque`` item (alone in a
  message of its own, so it keeps its place) or an ``Opaque`` content part, sent only to
  OpenAI's Responses API and refused elsewhere (``rules.responses_refusal``).
"""

from __future__ import annotations

import re
from typing import Any

from backend.ir.chat import (
    FilePart,
    ImagePart,
    Message,
    Opaque,
    Part,
    Role,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from backend.protocols import files
from backend.protocols.openai_chat.validate import as_dict, as_list, as_str, bad_type, fail, need
from backend.protocols.openai_responses.vocab import PROTOCOL, joined_name, unwrap_signature

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_ROLES = ("user", "assistant", "system", "developer")
_USER_PARTS = "'input_text', 'input_image' and 'input_file'"


def input_items(value: Any, param: str = "input") -> list[dict[str, Any]]:
    """``input`` as a list of items: a string becomes one user message, string contents become
    one text part, and messages get their ``type`` (what the store keeps and lists)."""
    if isinstance(value, str):
        return [_message("user", [{"type": "input_text", "text": value}])]
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(as_list(value, param)):
        item = dict(as_dict(raw, f"{param}[{i}]"))
        if item.get("type") is None and "role" in item:
            item["type"] = "message"
        if item.get("type") == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        out.append(item)
    return out


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


class ItemDecoder:
    """Builds the IR conversation from items, in order, noting what only OpenAI can take."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags
        self.system: list[TextPart] = []
        self.messages: list[Message] = []
        self._leading = True
        #: Messages before this index are closed: an opaque item came after them.
        self._sealed = 0

    def add(self, items: list[dict[str, Any]], param: str) -> None:
        for i, item in enumerate(items):
            self._item(item, f"{param}[{i}]")

    # -- per item ------------------------------------------------------------------------------
    def _item(self, item: dict[str, Any], p: str) -> None:
        kind = item.get("type")
        if kind == "message":
            self._message_item(item, p)
        elif kind == "function_call":
            name = as_str(need(item, "name", f"{p}.name"), f"{p}.name")
            namespace = item.get("namespace")
            call = ToolCallPart(
                id=as_str(need(item, "call_id", f"{p}.call_id"), f"{p}.call_id"),
                name=joined_name(namespace, name),
                arguments=as_str(need(item, "arguments", f"{p}.arguments"), f"{p}.arguments"),
                extra={"_namespace": namespace} if isinstance(namespace, str) else None,
            )
            self._turn("assistant").parts.append(call)
        elif kind == "function_call_output":
            self._tool_output(item, p)
        elif kind == "reasoning":
            self._reasoning(item, p)
        elif isinstance(kind, str) and kind:
            self._opaque(item)
        else:
            fail(f"Missing required parameter: '{p}.type'.", f"{p}.type")

    def _message_item(self, item: dict[str, Any], p: str) -> None:
        role = as_str(need(item, "role", f"{p}.role"), f"{p}.role")
        if role not in _ROLES:
            fail(
                f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', "
                "and 'developer'.",
                f"{p}.role",
            )
        content = need(item, "content", f"{p}.content")
        if role in ("system", "developer"):
            texts = self._texts(content, f"{p}.content", ("input_text",))
            if self._leading:
                self.flags.setdefault("system_role", role)
                self.system.extend(texts)
            else:
                self.messages.append(Message("system", list(texts)))
            return
        self._leading = False
        if role == "assistant":
            texts = self._texts(content, f"{p}.content", ("output_text", "refusal", "input_text"))
            self._turn("assistant").parts.extend(texts)
            return
        self.messages.append(Message("user", self._user_parts(content, f"{p}.content")))

    def _texts(self, content: Any, p: str, kinds: tuple[str, ...]) -> list[TextPart]:
        if isinstance(content, str):
            return [TextPart(content)] if content else []
        out: list[TextPart] = []
        for j, raw in enumerate(as_list(content, p)):
            pp = f"{p}[{j}]"
            part = as_dict(raw, pp)
            kind = part.get("type")
            if kind not in kinds:
                fail(
                    f"Invalid value: {kind!r}. Supported values are: "
                    + ", ".join(f"'{k}'" for k in kinds)
                    + ".",
                    f"{pp}.type",
                )
            key = "refusal" if kind == "refusal" else "text"
            text = as_str(need(part, key, f"{pp}.{key}"), f"{pp}.{key}")
            if text:
                out.append(TextPart(text))
        return out

    def _user_parts(self, content: Any, p: str) -> list[Part]:
        if isinstance(content, str):
            return [TextPart(content)] if content else []
        if not isinstance(content, list):
            bad_type(p, "one of a string or array of objects", content)
        parts: list[Part] = []
        for j, raw in enumerate(content):
            pp = f"{p}[{j}]"
            part = as_dict(raw, pp)
            kind = part.get("type")
            if kind == "input_text":
                text = as_str(need(part, "text", f"{pp}.text"), f"{pp}.text")
                if text:
                    parts.append(TextPart(text))
            elif kind == "input_image" and part.get("image_url") is not None:
                parts.append(image_part(part, pp))
            elif kind == "input_file":
                parts.append(file_part(part, pp))
            elif kind in ("input_image", "input_audio"):
                # An image by file_id (stored at OpenAI), audio: only OpenAI's Responses API.
                parts.append(Opaque(PROTOCOL, part))
            else:
                fail(
                    f"Invalid value: {kind!r}. Supported values are: {_USER_PARTS}.",
                    f"{pp}.type",
                )
        return parts

    def _tool_output(self, item: dict[str, Any], p: str) -> None:
        call_id = as_str(need(item, "call_id", f"{p}.call_id"), f"{p}.call_id")
        output = need(item, "output", f"{p}.output")
        content: list[TextPart | ImagePart | Opaque] = []
        if isinstance(output, str):
            content = [TextPart(output)] if output else []
        else:
            for j, raw in enumerate(as_list(output, f"{p}.output")):
                pp = f"{p}.output[{j}]"
                part = as_dict(raw, pp)
                kind = part.get("type")
                if kind == "input_text":
                    content.append(TextPart(as_str(need(part, "text", f"{pp}.text"), pp)))
                elif kind == "input_image" and part.get("image_url") is not None:
                    content.append(image_part(part, pp))
                elif kind in ("input_image", "input_file"):
                    content.append(Opaque(PROTOCOL, part))
                else:
                    fail(
                        f"Invalid value: {kind!r}. Supported values are: 'input_text', "
                        "'input_image' and 'input_file'.",
                        f"{pp}.type",
                    )
        namespace = item.get("namespace")
        result = ToolResultPart(
            tool_call_id=call_id,
            content=content,
            extra={"_namespace": namespace} if isinstance(namespace, str) else None,
        )
        last = self.messages[-1] if self._open() else None
        if (
            last is not None
            and last.role == "user"
            and last.parts
            and all(isinstance(x, ToolResultPart) for x in last.parts)
        ):
            last.parts.append(result)
        else:
            self.messages.append(Message("user", [result]))
        self._leading = False

    def _reasoning(self, item: dict[str, Any], p: str) -> None:
        texts: list[str] = []
        for j, raw in enumerate(as_list(item.get("summary") or [], f"{p}.summary")):
            part = as_dict(raw, f"{p}.summary[{j}]")
            texts.append(as_str(need(part, "text", f"{p}.summary[{j}].text"), f"{p}.summary"))
        if not texts:
            for j, raw in enumerate(as_list(item.get("content") or [], f"{p}.content")):
                part = as_dict(raw, f"{p}.content[{j}]")
                texts.append(as_str(need(part, "text", f"{p}.content[{j}].text"), f"{p}.content"))
        summary = "\n\n".join(texts)
        encrypted = item.get("encrypted_content")
        if encrypted is not None:
            encrypted = as_str(encrypted, f"{p}.encrypted_content")
        turn = self._turn("assistant")
        signed = unwrap_signature(encrypted, summary) if encrypted else None
        if signed is not None:
            turn.parts.append(signed)
            return
        extra = {"_encrypted_content": encrypted} if encrypted else None
        turn.parts.append(ThinkingPart(thinking=summary, extra=extra))

    def _opaque(self, item: dict[str, Any]) -> None:
        # Calls of hosted tools are the assistant's; their outputs and the rest the user's.
        kind = str(item.get("type"))
        role: Role = "assistant" if kind.endswith("_call") or kind == "compaction" else "user"
        self.messages.append(Message(role, [Opaque(PROTOCOL, item)]))
        self._sealed = len(self.messages)
        self._leading = False

    # -- turns ---------------------------------------------------------------------------------
    def _open(self) -> bool:
        return bool(self.messages) and len(self.messages) - 1 >= self._sealed

    def _turn(self, role: str) -> Message:
        """The open message of ``role`` to add to, or a new one."""
        self._leading = False
        if self._open() and self.messages[-1].role == role:
            return self.messages[-1]
        self.messages.append(Message("assistant" if role == "assistant" else "user", []))
        return self.messages[-1]


_FILE_KEYS = frozenset({"type", "file_data", "file_id", "file_url", "filename"})


def file_part(part: dict[str, Any], p: str) -> FilePart:
    """``input_file`` (``file_data`` as a data URL or bare base64, ``file_url``, ``file_id``,
    ``filename``) as the IR's file; unknown keys stay in ``extra`` for OpenAI."""
    values = {k: part.get(k) for k in ("file_data", "file_id", "file_url", "filename")}
    for key, value in values.items():
        if value is not None:
            as_str(value, f"{p}.{key}")
    data, file_id, url, name = (values[k] for k in ("file_data", "file_id", "file_url", "filename"))
    extra: dict[str, Any] = {k: v for k, v in part.items() if k not in _FILE_KEYS and v is not None}
    if data is not None:
        parsed = files.parse_data_url(data)
        if parsed is None:
            if data.startswith("data:"):
                fail(
                    f"Invalid '{p}.file_data': data URLs must look like "
                    "data:<media type>;base64,<data>.",
                    f"{p}.file_data",
                )
            extra["_bare"] = True
            parsed = (files.guess_type(name) or files.PDF, data)
        out = files.from_base64(parsed[1], parsed[0], filename=name, file_id=file_id, url=url)
    elif url is not None or file_id is not None:
        out = FilePart(url=url, file_id=file_id, filename=name, media_type=files.guess_type(url))
    else:
        fail(f"Invalid '{p}': expected one of 'file_data', 'file_url' or 'file_id'.", p)
    return files.add_extra(out, extra)


def image_part(part: dict[str, Any], p: str) -> ImagePart:
    url = as_str(part.get("image_url"), f"{p}.image_url")
    detail = part.get("detail")
    detail = None if detail in (None, "auto") else as_str(detail, f"{p}.detail")
    if url.startswith("data:"):
        match = _DATA_URL.fullmatch(url)
        if match is None:
            fail(
                f"Invalid '{p}.image_url': data URLs must look like "
                "data:<media type>;base64,<data>.",
                f"{p}.image_url",
            )
        return ImagePart(data=match.group(2), media_type=match.group(1), detail=detail)
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url, detail=detail)
    fail(
        f"Invalid '{p}.image_url': expected an http(s) URL or a base64 data URL.", f"{p}.image_url"
    )
