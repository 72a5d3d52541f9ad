"""File parts across doors and providers: each door's documents decode to one IR ``FilePart``,
each provider gets its own form or a 400 naming the field (``backend.protocols.files``)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from backend.cache.serialize import part_from_dict, part_to_dict
from backend.dlp import DlpPolicy, Redactor, redact_request
from backend.ir.chat import ChatRequest, FilePart, Message, TextPart
from backend.protocols import anthropic_messages, gemini, ollama, openai_chat
from backend.protocols import openai_responses as oar
from backend.protocols.gemini.inbound import decode_request as gemini_decode
from backend.protocols.model_rules import refusal

PDF_B64 = base64.b64encode(b"%PDF-1.4 tiny").decode()
PDF_URL = f"data:application/pdf;base64,{PDF_B64}"
NOTES = "The sky is blue.\nMail jane.doe@example.com."
NOTES_B64 = base64.b64encode(NOTES.encode()).decode()


def openai_request(*parts: dict[str, Any]) -> ChatRequest:
    content = [{"type": "text", "text": "Summarise."}, *parts]
    return openai_chat.decode_request(
        {"model": "m", "messages": [{"role": "user", "content": content}]}
    )


def upstream_content(req: ChatRequest, kind: str) -> list[Any]:
    """The user turn's content as each provider's encoder writes it."""
    if kind == "anthropic":
        return anthropic_messages.encode_request(req, "claude-sonnet-4-5", stream=False)[
            "messages"
        ][0]["content"]
    if kind == "gemini":
        return gemini.encode_request(req, "gemini-2.5-flash", stream=False)["contents"][0]["parts"]
    return openai_chat.encode_request(req, "gpt-4o", stream=False)["messages"][0]["content"]


# -- OpenAI chat file parts ----------------------------------------------------------------------


def test_an_openai_pdf_reaches_every_provider_in_its_own_form() -> None:
    part = {"type": "file", "file": {"file_data": PDF_URL, "filename": "report.pdf"}}
    req = openai_request(part)
    assert req.messages[0].parts[1] == FilePart(
        data=PDF_B64, media_type="application/pdf", filename="report.pdf"
    )
    assert upstream_content(req, "openai")[1] == part  # same wire: as sent
    assert upstream_content(req, "anthropic")[1] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        "title": "report.pdf",
    }
    assert upstream_content(req, "gemini")[1] == {
        "inlineData": {"mimeType": "application/pdf", "data": PDF_B64}
    }
    for kind in ("openai", "anthropic", "gemini"):
        assert refusal(req, kind, kind, "m") is None
    err = refusal(req, "ollama", "ollama", "llama3.2")
    assert err is not None and err.status == 400 and err.param == "messages"
    assert "a file part (messages[0].content[1])" in err.message and "images only" in err.message
    with pytest.raises(Exception, match="file part"):
        ollama.encode_request(req, "llama3.2", stream=False)


def test_a_text_file_is_text_for_dlp_and_a_plain_text_document_for_anthropic() -> None:
    part = {"type": "file", "file": {"file_data": f"data:text/plain;base64,{NOTES_B64}"}}
    req = openai_request(part)
    file = req.messages[0].parts[1]
    assert file == FilePart(text=NOTES, media_type="text/plain")
    assert upstream_content(req, "openai")[1] == part  # re-encoded byte for byte
    assert upstream_content(req, "anthropic")[1] == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": NOTES},
    }
    assert upstream_content(req, "gemini")[1] == {
        "inlineData": {"mimeType": "text/plain", "data": NOTES_B64}
    }
    # DLP redacts the document like message text.
    redacted = redact_request(req, Redactor.from_policy(DlpPolicy()))[0]
    text = redacted.messages[0].parts[1]
    assert isinstance(text, FilePart) and text.text == "The sky is blue.\nMail [EMAIL_1]."


def test_bare_base64_and_unknown_keys_pass_to_openai_only() -> None:
    part = {
        "type": "file",
        "file": {"file_data": PDF_B64, "filename": "a.pdf", "brand_new": 1},
        "cache_control": {"type": "ephemeral"},
    }
    req = openai_request(part)
    # cache_control is a mark for Anthropic, a no-op for OpenAI (as on text parts).
    assert upstream_content(req, "openai")[1] == {"type": "file", "file": part["file"]}
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and "field 'file' of a document (messages[0].content[1])" in err.message
    # Without the unknown key the cache mark reaches Anthropic's document.
    del part["file"]["brand_new"]
    req = openai_request(part)
    assert refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5") is None
    assert upstream_content(req, "anthropic")[1]["cache_control"] == {"type": "ephemeral"}


def test_file_ids_stay_at_openai_with_a_400_elsewhere_naming_the_field() -> None:
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    req = openai_request(part)
    assert upstream_content(req, "openai")[1] == part
    assert refusal(req, "openai", "azure", "gpt-4o") is None
    for kind in ("anthropic", "gemini"):
        err = refusal(req, kind, kind, "m")
        assert err is not None and err.code == "unsupported_value"
        assert "'file_id' 'file-abc' (messages[0].content[1])" in err.message
        assert "stored at OpenAI" in err.message and f"{kind} model 'm'" in err.message


def test_anthropic_reads_pdfs_and_text_only() -> None:
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    part = {"type": "file", "file": {"file_data": f"data:{docx};base64,UEsDBA==", "filename": "x"}}
    err = refusal(openai_request(part), "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and f"a file of type '{docx}'" in err.message
    assert refusal(openai_request(part), "gemini", "gemini", "gemini-2.5-flash") is None


# -- Responses input_file --------------------------------------------------------------------


def responses_request(*parts: dict[str, Any]) -> ChatRequest:
    content = [{"type": "input_text", "text": "Summarise."}, *parts]
    return oar.decode_request({"model": "m", "input": [{"role": "user", "content": content}]})


def test_responses_input_files_translate_and_reach_openai_as_sent() -> None:
    data = {"type": "input_file", "file_data": PDF_URL, "filename": "r.pdf"}
    url = {"type": "input_file", "file_url": "https://example.com/r.pdf"}
    stored = {"type": "input_file", "file_id": "file-abc"}
    req = responses_request(data, url, stored)
    body = oar.encode_request(req, "gpt-4o", stream=False)
    assert body["input"][0]["content"][1:] == [data, url, stored]
    # Anthropic: the data and the URL are documents; the file_id is a 400 naming it.
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and err.param == "input" and "'file_id' 'file-abc'" in err.message
    req = responses_request(data, url)
    assert upstream_content(req, "anthropic")[1:] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
            "title": "r.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": url["file_url"]}},
    ]
    assert upstream_content(req, "gemini")[1:] == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": url["file_url"]}},
    ]
    # Chat completions (Azure, compatible servers) has no file URLs: a 400, never fetched.
    err = refusal(req, "openai", "azure", "gpt-4o")
    assert err is not None and "a file URL (messages[0].content[2])" in err.message
    assert upstream_content(responses_request(data), "openai")[1] == {
        "type": "file",
        "file": {"file_data": PDF_URL, "filename": "r.pdf"},
    }


# -- Anthropic documents -----------------------------------------------------------------------


def anthropic_request(*blocks: dict[str, Any]) -> ChatRequest:
    content = [*blocks, {"type": "text", "text": "Summarise."}]
    return anthropic_messages.decode_request(
        {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": content}]}
    )


def test_anthropic_documents_reach_openai_and_gemini() -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        "title": "Q3",
    }
    text = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": NOTES},
    }
    req = anthropic_request(pdf, text)
    assert upstream_content(req, "anthropic")[:2] == [pdf, text]  # same wire: as sent
    assert upstream_content(req, "openai")[:2] == [
        {"type": "file", "file": {"file_data": PDF_URL, "filename": "Q3"}},
        {
            "type": "file",
            "file": {
                "file_data": f"data:text/plain;base64,{NOTES_B64}",
                "filename": "document.txt",
            },
        },
    ]
    assert upstream_content(req, "gemini")[:2] == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
        {"inlineData": {"mimeType": "text/plain", "data": NOTES_B64}},
    ]
    # A URL document: Gemini fetches it, OpenAI chat cannot; citations are Anthropic's.
    by_url = {"type": "document", "source": {"type": "url", "url": "https://e.com/a.pdf"}}
    req = anthropic_request(by_url)
    assert refusal(req, "gemini", "gemini", "gemini-2.5-flash") is None
    err = refusal(req, "openai", "openai", "gpt-4o")
    assert err is not None and "a file URL" in err.message
    cited = {**pdf, "citations": {"enabled": True}}
    err = refusal(anthropic_request(cited), "openai", "openai", "gpt-4o")
    assert err is not None and "field 'citations' of a document" in err.message


# -- Gemini inlineData -------------------------------------------------------------------------


def test_gemini_pdfs_and_text_reach_anthropic_as_documents() -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
                    {"inlineData": {"mimeType": "text/plain", "data": NOTES_B64}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                    {"text": "Summarise."},
                ],
            }
        ]
    }
    req = gemini_decode(body, "m", stream=False)
    assert req.messages[0].parts[:2] == [
        FilePart(data=PDF_B64, media_type="application/pdf"),
        FilePart(text=NOTES, media_type="text/plain"),
    ]
    # Same wire: Gemini gets the parts as sent.
    sent = gemini.encode_request(req, "gemini-2.5-flash", stream=False)["contents"][0]["parts"]
    assert sent == body["contents"][0]["parts"]
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and "'inlineData'" in err.message  # the audio, not the documents
    req.messages[0].parts = [p for p in req.messages[0].parts if not _is_audio(p)]
    assert refusal(req, "anthropic", "anthropic", "claude-3-5-haiku-latest") is None
    blocks = upstream_content(req, "anthropic")
    assert [b["source"]["type"] for b in blocks[:2]] == ["base64", "text"]


def _is_audio(part: Any) -> bool:
    return not isinstance(part, (FilePart, TextPart))


# -- the rest of the pipeline's view ------------------------------------------------------------


def test_file_parts_survive_the_cache_serialization() -> None:
    for part in (
        FilePart(data=PDF_B64, media_type="application/pdf", filename="a.pdf", extra={"x": 1}),
        FilePart(text=NOTES, media_type="text/plain"),
        FilePart(url="https://e.com/a.pdf"),
        FilePart(file_id="file-1"),
    ):
        assert part_from_dict(part_to_dict(part)) == part


def test_dlp_leaves_pdf_bytes_alone_and_redacts_file_names() -> None:
    req = ChatRequest(
        "m",
        [
            Message(
                "user",
                [
                    FilePart(
                        data=PDF_B64,
                        media_type="application/pdf",
                        filename="jane.doe@example.com.pdf",
                    )
                ],
            )
        ],
    )
    out = redact_request(req, Redactor.from_policy(DlpPolicy()))[0]
    part = out.messages[0].parts[0]
    assert isinstance(part, FilePart) and part.data == PDF_B64
    assert part.filename is not None and "jane.doe@example.com" not in part.filename


def test_url_safe_base64_from_gemini_clients_is_standard_for_other_providers() -> None:
    """google-genai writes bytes in the URL-safe alphabet: Gemini gets them as sent, Anthropic
    and OpenAI in the standard one; a URL-safe text file is still text (DLP reads it)."""
    raw = b"%PDF-1.4 <<>> ?>"  # bytes whose base64 has '+' and '/'
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert standard != urlsafe
    text = "a>b?c ~ jane.doe@example.com"
    text_urlsafe = base64.urlsafe_b64encode(text.encode()).decode()
    parts = [
        {"inlineData": {"mimeType": "application/pdf", "data": urlsafe}},
        {"inline_data": {"mime_type": "text/plain", "data": text_urlsafe}},
        {"inlineData": {"mimeType": "image/png", "data": urlsafe}},
        {"text": "Read."},
    ]
    req = gemini_decode({"contents": [{"role": "user", "parts": parts}]}, "m", stream=False)
    note = req.messages[0].parts[1]
    assert isinstance(note, FilePart) and note.text == text
    sent = gemini.encode_request(req, "gemini-2.5-flash", stream=False)["contents"][0]["parts"]
    assert [p["inlineData"]["data"] for p in sent[:3]] == [urlsafe, text_urlsafe, urlsafe]
    blocks = upstream_content(req, "anthropic")
    assert blocks[0]["source"]["data"] == standard
    assert blocks[1]["source"] == {"type": "text", "media_type": "text/plain", "data": text}
    assert blocks[2]["source"]["data"] == standard  # the image too
    chat = upstream_content(req, "openai")
    assert chat[0]["file"]["file_data"] == f"data:application/pdf;base64,{standard}"
    assert chat[2]["image_url"]["url"] == f"data:image/png;base64,{standard}"


def test_base64_file_data_in_walked_json_stays_byte_exact() -> None:
    """Wire JSON walked generically (an opaque item, the stored-responses copy): base64 that
    happens to look like a secret is not 'redacted' into a broken file."""
    from backend.dlp.fields import map_text

    item = {
        "type": "input_file",
        "file_data": "data:text/plain;base64,QUtJQUFCQ0RFRkdISUpLTE1OT1A=",
    }
    assert map_text(item, lambda s: "[REDACTED]") == item
