"""The other inbound endpoints through the official SDKs: embeddings, models, count_tokens,
client error reports, request features that must survive translation, and health."""

from __future__ import annotations

import base64
import json

import anthropic
import httpx
import openai

from tests.e2e.conftest import Stack
from tests.e2e.harness import orm, wait_for_rows
from tests.fakes.base import Reply


def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )


def ant(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )


async def test_healthz(stack: Stack) -> None:
    r = httpx.get(stack.gateway.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_embeddings_float_and_base64(stack: Stack) -> None:
    stack.reset()
    client = oai(stack)
    resp = client.embeddings.create(model="openai/text-embedding-3-small", input=["hello", "world"])
    assert len(resp.data) == 2 and len(resp.data[0].embedding) > 0
    assert resp.usage.prompt_tokens > 0
    # The SDK asks for base64 by default when numpy is absent? Ask explicitly and decode ourselves.
    raw = httpx.post(
        stack.gateway.openai_base_url + "/embeddings",
        headers={"authorization": f"Bearer {stack.seeded.user_key}"},
        json={
            "model": "openai/text-embedding-3-small",
            "input": "hello",
            "encoding_format": "base64",
        },
    )
    assert raw.status_code == 200
    vec = raw.json()["data"][0]["embedding"]
    assert isinstance(vec, str) and len(base64.b64decode(vec)) % 4 == 0
    rows = await wait_for_rows(stack.database_url, 2, endpoint="/v1/embeddings")
    assert all(r.status == 200 and r.input_tokens > 0 for r in rows)
    assert rows[0].cost_usd is not None and rows[0].cost_usd > 0


async def test_embeddings_through_ollama(stack: Stack) -> None:
    resp = oai(stack).embeddings.create(model="ollama/nomic-embed-text", input="hello")
    assert len(resp.data[0].embedding) > 0
    rows = await wait_for_rows(stack.database_url, 1, actual_model="ollama/nomic-embed-text")
    assert rows[0].cost_usd == 0


async def test_models_list_in_both_protocols(stack: Stack) -> None:
    ids = {m.id for m in oai(stack).models.list()}
    assert "openai/gpt-4o-mini" in ids
    assert any(i.startswith("anthropic/claude") for i in ids)
    assert any(i.startswith("ollama/llama3.2") for i in ids)
    page = ant(stack).models.list()
    assert {m.id for m in page.data} == ids


async def test_count_tokens_anthropic_and_estimate(stack: Stack) -> None:
    n = ant(stack).messages.count_tokens(
        model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "hello there"}]
    )
    assert n.input_tokens > 0
    assert stack.anthropic.requests[-1].path == "/v1/messages/count_tokens"
    est = ant(stack).messages.count_tokens(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello " * 40}]
    )
    assert 40 <= est.input_tokens <= 200


async def test_request_features_survive_translation(stack: Stack) -> None:
    """stop, max_completion_tokens, temperature, response_format and an image reach Anthropic."""
    stack.reset()
    stack.anthropic.replies.append(Reply(text='{"ok": true}'))
    tiny_png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 16).decode()
    oai(stack).chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "Be terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{tiny_png}"},
                    },
                ],
            },
        ],
        stop=["END"],
        max_completion_tokens=77,
        temperature=0.2,
        response_format={"type": "json_object"},
    )
    sent = stack.anthropic.requests[-1].json
    assert sent["max_tokens"] == 77
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 0.2
    assert "Be terse." in json.dumps(sent["system"])
    blocks = sent["messages"][0]["content"]
    assert any(b["type"] == "image" and b["source"]["data"] == tiny_png for b in blocks)


async def test_anthropic_beta_header_forwarded(stack: Stack) -> None:
    stack.reset()
    ant(stack).messages.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert stack.anthropic.requests[-1].headers.get("anthropic-beta") == "prompt-caching-2024-07-31"
    assert stack.anthropic.requests[-1].headers.get("x-api-key", "").startswith("sk-ant-upstream")


async def test_x_api_key_header_accepted(stack: Stack) -> None:
    r = httpx.post(
        stack.gateway.url + "/v1/messages",
        headers={"x-api-key": stack.seeded.user_key, "anthropic-version": "2023-06-01"},
        json={
            "model": "openai/gpt-4o-mini",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert r.status_code == 200 and r.json()["type"] == "message"


async def test_client_error_report(stack: Stack) -> None:
    r = httpx.post(
        stack.gateway.url + "/v1/error-reports",
        headers={"authorization": f"Bearer {stack.seeded.user_key}"},
        json={
            "type": "ToolCrash",
            "error": "agent tool failed",
            "agent": "coder",
            "version": "1.2.3",
        },
    )
    assert r.status_code == 202
    # An app key's report has no user: it belongs to the app's organization.
    r = httpx.post(
        stack.gateway.url + "/v1/error-reports",
        headers={"authorization": f"Bearer {stack.seeded.app_key}"},
        json={"type": "AppCrash", "error": "billing job failed"},
    )
    assert r.status_code == 202
    bad = httpx.post(
        stack.gateway.url + "/v1/error-reports",
        headers={"authorization": f"Bearer {stack.seeded.user_key}"},
        json={"type": 5},
    )
    assert bad.status_code == 400 and "type" in bad.json()["error"]["message"]
    import asyncio

    from backend.data.models.logs import ErrorReport

    for _ in range(50):
        async with orm(stack.database_url):
            rows = await ErrorReport.filter(source="client", type="ToolCrash")
            app_rows = await ErrorReport.filter(source="client", type="AppCrash")
        if rows and app_rows:
            break
        await asyncio.sleep(0.1)
    assert rows and rows[0].user_id == stack.seeded.user_id and rows[0].version == "1.2.3"
    # Each report keeps the organization it was made under (the key's), for scoping reads.
    assert rows[0].org_id == stack.seeded.org_id
    assert app_rows and app_rows[0].user_id is None and app_rows[0].org_id == stack.seeded.org_id
