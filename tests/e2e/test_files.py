"""File parts across doors and providers, through the real gateway with the official SDKs
(issue 15 item 1: "messages with text/image/file parts"; ``backend.protocols.files``).

Each door's documents (OpenAI chat ``file`` parts, Responses ``input_file``, Anthropic
``document`` blocks, Gemini ``inlineData``) reach every provider in that provider's own form
(what each fake received is checked), or are refused with a 400 in the caller's format naming
the field and the provider, nothing sent: ``file_id`` references off OpenAI, file URLs to chat
completions, any file to Ollama. DLP redacts a text document like message text; a fallback
chain skips a candidate that cannot read the file.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.gemini_support import gemini_client
from tests.e2e.harness import Seeded, orm, wait_for_rows

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
GEMINI = "gemini/gemini-2.5-flash"
OLLAMA = "ollama/llama3.2"
EMAIL = "jane.doe@example.com"
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PDF_B64 = base64.b64encode(PDF_BYTES).decode()
PDF_URL = f"data:application/pdf;base64,{PDF_B64}"
PDF_LINK = "https://example.com/q3-report.pdf"
#: An Ollama primary whose fallback is Claude: files skip the primary.
CHAIN = ("ollama/llama-files", [CLAUDE])


async def _prepare(db: str, seeded: Seeded) -> None:
    from backend.data.models.routing import FallbackChain
    from backend.data.models.tenancy import Organization

    async with orm(db):
        # Globex (``other_key``) has DLP on.
        await Organization.filter(id=seeded.other_org_id).update(dlp_enabled=True)
        await FallbackChain.create(primary_model=CHAIN[0], chain=CHAIN[1])


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    return StackSetup(prepare=_prepare)


@pytest.fixture
def stack(stack: Stack) -> Stack:
    stack.reset()
    return stack


def oai(stack: Stack, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=key or stack.seeded.user_key,
        max_retries=0,
        timeout=30,
    )


def ant(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0, timeout=30
    )


def received(stack: Stack, provider: str) -> list[dict[str, Any]]:
    paths = {
        "openai": "/chat/completions",
        "anthropic": "/v1/messages",
        "gemini": "enerateContent",  # generateContent and streamGenerateContent
        "ollama": "/api/chat",
    }
    fake: Any = stack.fakes()[provider]
    return [r.json for r in fake.requests if paths[provider] in r.path]


def nothing_sent(stack: Stack) -> bool:
    return all(not fake.requests for fake in stack.fakes().values())  # type: ignore[attr-defined]


def first_user_content(stack: Stack, provider: str) -> list[Any]:
    """The first user turn's content as the provider's fake received it."""
    [body] = received(stack, provider)
    if provider == "gemini":
        return list(body["contents"][0]["parts"])
    return list(body["messages"][0]["content"])


PDF_PART = {"type": "file", "file": {"file_data": PDF_URL, "filename": "q3-report.pdf"}}
#: What each provider gets for ``PDF_PART``.
PDF_UPSTREAM = {
    "openai": PDF_PART,
    "anthropic": {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        "title": "q3-report.pdf",
    },
    "gemini": {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
}
MODELS = {"openai": GPT, "anthropic": CLAUDE, "gemini": GEMINI}


# -- the OpenAI chat door ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
async def test_an_openai_clients_pdf_reaches_each_provider_in_its_form(
    stack: Stack, provider: str, stream: bool
) -> None:
    content: Any = [{"type": "text", "text": "Summarise the report."}, PDF_PART]
    messages: Any = [{"role": "user", "content": content}]
    if stream:
        chunks = oai(stack).chat.completions.create(
            model=MODELS[provider], messages=messages, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        resp = oai(stack).chat.completions.create(model=MODELS[provider], messages=messages)
        text = resp.choices[0].message.content or ""
    assert text == "ok"
    upstream = first_user_content(stack, provider)
    assert upstream[1] == PDF_UPSTREAM[provider]


async def test_ollama_refuses_files_by_name_and_a_chain_skips_it(stack: Stack) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "Read."}, PDF_PART]}]
    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).chat.completions.create(model=OLLAMA, messages=messages)
    error = info.value.response.json()["error"]
    assert error["param"] == "messages" and error["code"] == "unsupported_value"
    assert "a file part (messages[0].content[1])" in error["message"]
    assert "ollama model 'llama3.2'" in error["message"] and "images only" in error["message"]
    assert nothing_sent(stack)
    # In a chain the Ollama primary is skipped, not sent the request without its file.
    raw = oai(stack).chat.completions.with_raw_response.create(model=CHAIN[0], messages=messages)
    assert raw.parse().choices[0].message.content == "ok"
    assert raw.headers["x-switchboard-model"] == CLAUDE
    assert not received(stack, "ollama")
    assert first_user_content(stack, "anthropic")[1] == PDF_UPSTREAM["anthropic"]


async def test_a_text_file_is_redacted_like_text_and_read_as_a_document(stack: Stack) -> None:
    notes = f"Minutes.\nContact {EMAIL} for the slides."
    encoded = base64.b64encode(notes.encode()).decode()
    part = {"type": "file", "file": {"file_data": f"data:text/plain;base64,{encoded}"}}
    oai(stack, key=stack.seeded.other_key).chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": "Who?"}]}],  # type: ignore[list-item]
    )
    [body] = received(stack, "anthropic")
    assert EMAIL not in orjson.dumps(body).decode()
    assert body["messages"][0]["content"][0] == {
        "type": "document",
        "source": {
            "type": "text",
            "media_type": "text/plain",
            "data": "Minutes.\nContact [EMAIL_1] for the slides.",
        },
    }


async def test_file_ids_stay_at_openai_and_elsewhere_are_a_400_naming_file_id(
    stack: Stack,
) -> None:
    part = {"type": "file", "file": {"file_id": "file-Q3report"}}
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "Read."}, part]}]
    oai(stack).chat.completions.create(model=GPT, messages=messages)
    assert first_user_content(stack, "openai")[1] == part
    stack.reset()
    for model in (CLAUDE, GEMINI):
        with pytest.raises(openai.BadRequestError) as info:
            oai(stack).chat.completions.create(model=model, messages=messages)
        message = info.value.response.json()["error"]["message"]
        assert "'file_id' 'file-Q3report' (messages[0].content[1])" in message
        assert model.split("/")[0] in message and "stored at OpenAI" in message
    assert nothing_sent(stack)


# -- the Responses door ------------------------------------------------------------------------


def file_input(*parts: dict[str, Any]) -> Any:
    return [{"role": "user", "content": [{"type": "input_text", "text": "Summarise."}, *parts]}]


async def test_responses_input_files_reach_anthropic_gemini_and_openai(stack: Stack) -> None:
    data = {"type": "input_file", "file_data": PDF_URL, "filename": "q3.pdf"}
    link = {"type": "input_file", "file_url": PDF_LINK}
    resp = oai(stack).responses.create(model=CLAUDE, input=file_input(data, link))
    assert resp.output_text == "ok"
    assert first_user_content(stack, "anthropic")[1:] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
            "title": "q3.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": PDF_LINK}},
    ]
    with oai(stack).responses.stream(model=GEMINI, input=file_input(data, link)) as stream:
        assert stream.get_final_response().output_text == "ok"
    assert first_user_content(stack, "gemini")[1:] == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": PDF_LINK}},
    ]
    # OpenAI's own Responses API gets the parts as the SDK sent them, file_id included.
    stored = {"type": "input_file", "file_id": "file-Q3report"}
    oai(stack).responses.create(model=GPT, input=file_input(data, link, stored))
    fake: Any = stack.openai
    [body] = [r.json for r in fake.requests if r.path.endswith("/responses")]
    assert body["input"][0]["content"][1:] == [data, link, stored]


async def test_responses_file_ids_and_images_by_id_are_refused_off_openai(stack: Stack) -> None:
    stored = {"type": "input_file", "file_id": "file-Q3report"}
    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).responses.create(model=CLAUDE, input=file_input(stored))
    error = info.value.response.json()["error"]
    assert error["param"] == "input" and "'file_id' 'file-Q3report'" in error["message"]
    image = {"type": "input_image", "file_id": "file-chart", "detail": "auto"}
    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).responses.create(model=GEMINI, input=file_input(image))
    message = info.value.response.json()["error"]["message"]
    assert "'file_id' of an 'input_image' part" in message and "gemini" in message
    assert nothing_sent(stack)


# -- the Anthropic door ------------------------------------------------------------------------


async def test_anthropic_documents_reach_openai_and_gemini(stack: Stack) -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        "title": "Q3 report",
    }
    notes = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Sky: blue."},
    }
    content: Any = [pdf, notes, {"type": "text", "text": "Summarise both."}]
    ant(stack).messages.create(
        model=GPT, max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    upstream = first_user_content(stack, "openai")
    assert upstream[0] == {"type": "file", "file": {"file_data": PDF_URL, "filename": "Q3 report"}}
    sky = base64.b64encode(b"Sky: blue.").decode()
    assert upstream[1] == {
        "type": "file",
        "file": {"file_data": f"data:text/plain;base64,{sky}", "filename": "document.txt"},
    }
    with ant(stack).messages.stream(
        model=GEMINI, max_tokens=100, messages=[{"role": "user", "content": content}]
    ) as stream:
        assert stream.get_final_text() == "ok"
    assert first_user_content(stack, "gemini")[:2] == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
        {"inlineData": {"mimeType": "text/plain", "data": sky}},
    ]


async def test_an_anthropic_document_by_url_reaches_gemini_and_is_refused_by_openai(
    stack: Stack,
) -> None:
    link = {"type": "document", "source": {"type": "url", "url": PDF_LINK}}
    content: Any = [link, {"type": "text", "text": "Summarise."}]
    ant(stack).messages.create(
        model=GEMINI, max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    assert first_user_content(stack, "gemini")[0] == {
        "fileData": {"mimeType": "application/pdf", "fileUri": PDF_LINK}
    }
    stack.reset()
    with pytest.raises(anthropic.BadRequestError) as info:
        ant(stack).messages.create(
            model=GPT, max_tokens=100, messages=[{"role": "user", "content": content}]
        )
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "a file URL (messages[0].content[0])" in body["error"]["message"]
    assert "does not fetch URLs" in body["error"]["message"]
    assert nothing_sent(stack)


# -- the Gemini door ---------------------------------------------------------------------------


async def test_a_gemini_clients_pdf_reaches_anthropic_as_a_document(stack: Stack) -> None:
    client = gemini_client(stack)
    resp = client.models.generate_content(
        model=CLAUDE,
        contents=[
            types.Content(
                role="user",
                parts=[
                    types.Part.from_bytes(data=PDF_BYTES, mime_type="application/pdf"),
                    types.Part(text="Summarise."),
                ],
            )
        ],
    )
    assert resp.text == "ok"
    assert first_user_content(stack, "anthropic")[0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
    }
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.generate_content(
            model=OLLAMA,
            contents=[
                types.Content(
                    role="user",
                    parts=[types.Part.from_bytes(data=PDF_BYTES, mime_type="application/pdf")],
                )
            ],
        )
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert "a file part" in (info.value.message or "") and "ollama" in (info.value.message or "")
    rows = await wait_for_rows(stack.database_url, 1, requested_model=OLLAMA, status=400)
    assert rows and rows[-1].error_message and "a file part" in rows[-1].error_message
    assert not received(stack, "ollama")
