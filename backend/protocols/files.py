"""File parts (``backend.ir.chat.FilePart``): the shared decoding helpers and what each provider
can read.

Every door decodes its documents into one IR part: OpenAI chat ``{"type": "file", "file":
{"file_data", "filename"}}`` / ``{"file_id"}``, Responses ``input_file`` (``file_data``,
``file_url``, ``file_id``), Anthropic ``document`` blocks (base64 PDF, plain text, URL), Gemini
``inlineData`` of a document type. A text document (``text/*``) sent as base64 is decoded into
``FilePart.text`` when that is exact (UTF-8, canonical base64), so DLP redacts it like message
text and each encoder re-encodes what it needs; other data (PDFs, Office files) travels as
base64 and is not scanned by DLP.

Where each provider kind stands (``file_refusal``, asked by ``model_rules.refusal`` for every
fallback candidate, so a candidate that cannot read a file is skipped, never sent less):

- OpenAI (chat completions: Azure, compatible servers too): base64 data and ``file_id``; no URL
  (chat completions has no file URLs and the gateway does not fetch them for a provider; a
  Responses client's ``file_url`` reaches OpenAI's own Responses API as sent).
- Anthropic: PDFs (base64 or URL) and text documents (as a plain-text source); a ``file_id`` is
  a file stored at OpenAI, which Anthropic cannot read; other types are refused by name.
- Gemini: base64 as ``inlineData``, URLs as ``fileData`` (Gemini judges the type itself); no
  ``file_id``.
- Ollama: no files at all (it takes images only).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re

from backend.ir.chat import ChatRequest, FilePart
from backend.ir.errors import InvalidRequest

PDF = "application/pdf"
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,(.*)", re.DOTALL)

#: A request field naming where a part lives, by caller protocol (refusals name it).
_PARAM = {"openai_responses": "input"}


def parse_data_url(value: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL, or None."""
    match = _DATA_URL.fullmatch(value)
    return (match.group(1).lower(), match.group(2)) if match else None


def guess_type(name: str | None) -> str | None:
    """The media type a file name or URL implies (``report.pdf`` -> ``application/pdf``)."""
    if not name:
        return None
    return mimetypes.guess_type(name.split("?", 1)[0])[0]


def is_text(media_type: str | None) -> bool:
    return bool(media_type) and str(media_type).split(";", 1)[0].strip().startswith("text/")


def from_base64(data: str, media_type: str, **fields: str | None) -> FilePart:
    """A file from base64 ``data``; a text document whose bytes are UTF-8 becomes ``text``
    (only when re-encoding gives the same base64, so the same wire stays byte-exact)."""
    if is_text(media_type):
        try:
            raw = base64.b64decode(data, validate=True)
            text = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            pass
        else:
            if base64.b64encode(raw).decode() == data:
                return FilePart(text=text, media_type=media_type, **fields)  # type: ignore[arg-type]
    return FilePart(data=data, media_type=media_type, **fields)  # type: ignore[arg-type]


def media_type(part: FilePart) -> str:
    """The part's media type: given, else what its name or URL implies, else a PDF."""
    return (
        part.media_type
        or guess_type(part.filename)
        or guess_type(part.url)
        or ("text/plain" if part.text is not None else PDF)
    )


def base64_data(part: FilePart) -> str:
    """The file's bytes as base64 (a text document re-encoded as UTF-8)."""
    if part.data is not None:
        return part.data
    return base64.b64encode((part.text or "").encode("utf-8")).decode()


def data_url(part: FilePart) -> str:
    return f"data:{media_type(part)};base64,{base64_data(part)}"


def filename(part: FilePart) -> str:
    """A name for providers that need one (OpenAI's ``file_data`` goes with a ``filename``)."""
    if part.filename:
        return part.filename
    ext = mimetypes.guess_extension(media_type(part).split(";", 1)[0]) or ".bin"
    return f"document{ext}"


def inline_text(part: FilePart) -> str | None:
    """A text document's content (decoded from base64 when that is UTF-8), else None."""
    if part.text is not None:
        return part.text
    if part.data is None or not is_text(part.media_type):
        return None
    try:
        return base64.b64decode(part.data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def file_refusal(req: ChatRequest, kind: str, where: str) -> InvalidRequest | None:
    """The 400 the first file part of ``req`` earns on a provider of codec ``kind`` (``where``
    names the provider and model), or None. Asked only across protocols: a provider of the
    caller's own protocol (OpenAI's Responses API for a Responses client) gets the files as
    sent and judges them itself."""
    param = _PARAM.get(req.protocol, "messages")
    for i, message in enumerate(req.messages):
        for j, part in enumerate(message.parts):
            if not isinstance(part, FilePart):
                continue
            at = f"messages[{i}].content[{j}]"
            problem = _problem(part, kind)
            if problem is not None:
                field, why = problem
                return InvalidRequest(
                    f"Unsupported value: {field} ({at}) cannot be honoured by {where}: {why}.",
                    param=param,
                    code="unsupported_value",
                )
    return None


def _problem(part: FilePart, kind: str) -> tuple[str, str] | None:
    if kind == "ollama":
        return "a file part", "Ollama takes images only, not files"
    if part.file_id is not None and part.data is None and part.text is None:
        if kind == "openai":
            return None
        return (
            f"'file_id' {part.file_id!r}",
            "it names a file stored at OpenAI, which only OpenAI can read; send the file's "
            "content instead (file_data)",
        )
    if part.url is not None:
        if kind == "openai":
            return (
                "a file URL",
                "chat completions take files as base64 file_data only and the gateway does "
                "not fetch URLs for a provider; send the file's content",
            )
        if kind == "anthropic" and media_type(part) != PDF:
            return (
                f"a file URL of type '{media_type(part)}'",
                "Anthropic reads PDFs by URL only; send other documents' content",
            )
        return None
    if kind == "anthropic":
        kind_of = media_type(part)
        if kind_of != PDF and inline_text(part) is None:
            why = (
                "its text is not UTF-8"
                if is_text(kind_of)
                else "Anthropic documents are PDFs or plain text"
            )
            return f"a file of type '{kind_of}'", why
    return None
