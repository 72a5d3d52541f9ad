"""``SWITCHBOARD_LOG_FORMAT=json`` on a real gateway process: every log line one JSON object,
request lines with request id, org, model, status and latency, the reason of each refusal at
WARNING once per cause (counted after, the counts logged at shutdown), and no secret anywhere.

The gateway's stderr (its log) and stdout (``serve``'s one-line banner, command output, not a
log line) land in one file; every other line must parse.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import UPSTREAM_KEYS, gateway_env
from tests.e2e.harness import GatewayProc, Seeded, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

BANNER = "Switchboard gateway on http"


@dataclass
class LogStack:
    gateway: GatewayProc
    seeded: Seeded
    openai: OpenAIFake


@pytest.fixture(scope="module")
async def lstack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LogStack]:
    tmp = tmp_path_factory.mktemp("jsonlogs")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes) | {"SWITCHBOARD_LOG_FORMAT": "json"}
    env |= {k: "" for k in os.environ if k.startswith(("OTEL_", "SWITCHBOARD_REQUEST_LOG"))}
    gw = GatewayProc(env, tmp / "gateway.log")
    try:
        gw.start()
        yield LogStack(gw, seeded, fakes["openai"])
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


def _records(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(BANNER):
            continue
        record = json.loads(line)  # raises on any line that is not one JSON document
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "message"} <= record.keys(), line
        out.append(record)
    return out


async def test_json_lines_request_fields_and_refusals_once_per_cause(lstack: LogStack) -> None:
    gw, seeded = lstack.gateway, lstack.seeded
    oc = openai.OpenAI(base_url=gw.openai_base_url, api_key=seeded.user_key, max_retries=0)
    ac = anthropic.Anthropic(base_url=gw.url, api_key=seeded.user_key, max_retries=0)
    ok = oc.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
    )
    with ac.messages.with_streaming_response.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=20,
        stream=True,
    ) as streamed:
        streamed.read()
        streamed_id = streamed.headers["x-request-id"]

    # Two refusals of each cause: a wrong key, a provider without credentials, and an upstream
    # whose error text quotes our provider key.
    refused: dict[str, list[str]] = {"key": [], "unconfigured": [], "upstream": []}
    bad = openai.OpenAI(base_url=gw.openai_base_url, api_key="sk-wrong-key", max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.AuthenticationError) as err:
            bad.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        refused["key"].append(err.value.response.headers["x-request-id"])
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as status_err:
            oc.chat.completions.create(
                model="azure/never-configured", messages=[{"role": "user", "content": "hi"}]
            )
        refused["unconfigured"].append(status_err.value.response.headers["x-request-id"])
    leak = f"Incorrect API key provided: {UPSTREAM_KEYS['openai']}"
    lstack.openai.replies.extend(Reply(status=401, error_message=leak) for _ in range(6))
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as up_err:
            oc.chat.completions.create(
                model="openai/gpt-upstream-401", messages=[{"role": "user", "content": "hi"}]
            )
        refused["upstream"].append(up_err.value.response.headers["x-request-id"])
    lstack.openai.replies.clear()
    # Refusals outside the chat pipeline have their reason logged too, once per cause: an unknown
    # route, a bad error report, count_tokens for a model that does not exist.
    elsewhere: dict[str, list[str]] = {"route": [], "report": [], "count": []}
    auth = {"authorization": f"Bearer {seeded.user_key}"}
    for _ in range(2):
        elsewhere["route"].append(httpx.get(f"{gw.url}/v1/nope").headers["x-request-id"])
        report = httpx.post(f"{gw.url}/v1/error-reports", headers=auth, json={"type": 1})
        assert report.status_code == 400
        elsewhere["report"].append(report.headers["x-request-id"])
        with pytest.raises(anthropic.APIStatusError) as count_err:
            ac.messages.count_tokens(
                model="nowhere/no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
        elsewhere["count"].append(count_err.value.response.headers["x-request-id"])

    assert gw.stop() == 0  # the refusal counts are logged on the way out
    text = gw.log_text()
    records = _records(text)

    # Request lines: one per request, with the fields an aggregator indexes.
    lines = {r["request_id"]: r for r in records if r["logger"] == "switchboard.requests"}
    line = lines[ok.headers["x-request-id"]]
    assert line["level"] == "INFO"
    assert line["org_id"] == seeded.org_id
    assert line["model"] == "openai/gpt-4o-mini"
    assert line["status"] == 200
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] > 0
    assert line["endpoint"] == "/v1/chat/completions"
    assert lines[streamed_id]["streamed"] is True and lines[streamed_id]["status"] == 200
    for ids in refused.values():
        assert all(lines[rid]["status"] >= 400 for rid in ids)
    assert [lines[rid]["org_id"] for rid in refused["key"]] == [None, None]

    # Refusals: a WARNING for the first request of each cause, none for the second.
    warnings = [
        r for r in records if r["level"] == "WARNING" and r["message"].startswith("refused with")
    ]
    for cause, ids in refused.items():
        first, second = ids
        assert [w["request_id"] for w in warnings if w["request_id"] in ids] == [first], cause
        assert second not in {w["request_id"] for w in warnings}
    for cause, ids in elsewhere.items():
        first, second = ids
        assert [w["request_id"] for w in warnings if w["request_id"] in ids] == [first], cause
        assert second not in {w["request_id"] for w in warnings}
    key_warning = next(w for w in warnings if w["request_id"] == refused["key"][0])
    assert (key_warning["status"], key_warning["error_code"]) == (401, "invalid_api_key")
    summary = [r for r in records if r["message"].startswith("refusals since start")]
    assert len(summary) == 1 and "401 authentication/invalid_api_key: 2" in summary[0]["message"]

    # No secret: neither the caller's keys nor the provider key the upstream's error quoted.
    for secret in (seeded.user_key, "sk-wrong-key", *UPSTREAM_KEYS.values()):
        assert secret not in text
