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
from typing import Any

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


#: Codec bookkeeping on a decoded text document: its base64 used the URL-safe alphabet (as
#: google-genai sends bytes), so the same wire re-encodes it that way.
URLSAFE = "_urlsafe"
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_URLSAFE_CHARS = re.compile(r"[A-Za-z0-9_-]*=*")


def standard_base64(data: str) -> str:
    """``data`` in the standard base64 alphabet, padded (Gemini and its SDKs also write the
    URL-safe one, which Anthropic and OpenAI do not take); standard base64 is returned as is."""
    if "-" not in data and "_" not in data and len(data) % 4 == 0:
        return data
    out = data.translate(_URLSAFE_TO_STANDARD)
    return out + "=" * (-len(out) % 4)


def _decode(data: str) -> tuple[bytes, bool] | None:
    """(bytes, URL-safe alphabet) of base64 ``data``, or None when it is neither alphabet."""
    try:
        return base64.b64decode(data, validate=True), False
    except (binascii.Error, ValueError):
        pass
    if not _URLSAFE_CHARS.fullmatch(data):
        return None
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)), True
    except (binascii.Error, ValueError):
        return None


def from_base64(data: str, media_type: str, **fields: str | None) -> FilePart:
    """A file from base64 ``data``; a text document whose bytes are UTF-8 becomes ``text``
    (only when re-encoding gives the same base64, so the same wire stays byte-exact)."""
    if is_text(media_type):
        decoded = _decode(data)
        if decoded is not None:
            raw, urlsafe = decoded
            try:
                text = raw.decode("utf-8")
            except ValueError:
                text = None
            encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
            if text is not None and encode(raw).decode() == data:
                return FilePart(
                    text=text,
                    media_type=media_type,
                    extra={URLSAFE: True} if urlsafe else None,
                    **fields,  # type: ignore[arg-type]
                )
    return FilePart(data=data, media_type=media_type, **fields)  # type: ignore[arg-type]


def add_extra(part: FilePart, extra: dict[str, Any] | None) -> FilePart:
    """``part`` with a codec's unmodelled keys added to what decoding noted."""
    merged = {**(part.extra or {}), **(extra or {})}
    part.extra = merged or None
    return part


def media_type(part: FilePart) -> str:
    """The part's media type: given, else what its name or URL implies, else a PDF."""
    return (
        part.media_type
        or guess_type(part.filename)
        or guess_type(part.url)
        or ("text/plain" if part.text is not None else PDF)
    )


def base64_data(part: FilePart, *, exact: bool = False) -> str:
    """The file's bytes as base64 (a text document re-encoded as UTF-8): in the standard
    alphabet, or with ``exact`` (the client's own protocol) in the alphabet the client used."""
    if part.data is not None:
        return part.data if exact else standard_base64(part.data)
    raw = (part.text or "").encode("utf-8")
    if exact and (part.extra or {}).get(URLSAFE):
        return base64.urlsafe_b64encode(raw).decode()
    return base64.b64encode(raw).decode()


def data_url(part: FilePart, *, exact: bool = False) -> str:
    return f"data:{media_type(part)};base64,{base64_data(part, exact=exact)}"


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
    decoded = _decode(part.data)
    try:
        return decoded[0].decode("utf-8") if decoded is not None else None
    except ValueError:
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
