"""``/metrics`` of a real gateway process after a mixed run equals what its log rows say (issue 16
must-show 1): both SDKs, streamed and not, an upstream error, a fallback, a cap refusal and a
response-cache hit; then every counter and histogram count is compared with the rows read back
from the database. With ``--workers 2`` (needs Redis) both workers served requests and the one
scrape covers both.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, log_rows, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

START_TIMEOUT_S = 120.0
OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"
PRIMARY = "openai/gpt-metrics-primary"
FALLBACK = "openai/gpt-metrics-next"
METRICS_TOKEN = "metrics-token-" + uuid.uuid4().hex

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class MetricsStack:
    gateway: GatewayProc
    database_url: str
    seeded: Seeded
    capped_key: str
    openai: OpenAIFake
    multiproc_dir: Path


async def _seed(db: str, seeded: Seeded) -> str:
    """Response cache offered and Alice opted in; a fallback chain; a user with a tiny cap."""
    from backend.data.models.keys import ApiKey
    from backend.data.models.routing import FallbackChain, ModelPrice
    from backend.data.models.settings import Setting, UserFeature
    from backend.data.models.tenancy import User
    from backend.security.api_keys import generate_key

    async with orm(db):
        await Setting.create(key="offered_features", value=["response_cache"])
        await UserFeature.create(user_id=seeded.user_id, feature="response_cache")
        await FallbackChain.create(primary_model=PRIMARY, chain=[FALLBACK])
        for model in (PRIMARY, FALLBACK):
            await ModelPrice.create(
                model=model, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2")
            )
        capped = await User.create(
            name="Dave",
            email=f"dave-{uuid.uuid4().hex[:6]}@acme.test",
            organization_id=seeded.org_id,
            weekly_cap_usd=Decimal("0.0000001"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="capped", user=capped)
    return secret


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
async def mstack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MetricsStack]:
    workers = int(request.param)
    if workers > 1 and not redis_url():
        pytest.skip("--workers 2 needs REDIS_URL (shared budget, cache, events); not set")
    tmp: Path = tmp_path_factory.mktemp("metrics")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    capped_key = await _seed(db, seeded)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    # serve makes its multiprocess directory under TMPDIR: a private one shows the test which
    # worker counted what.
    temp = tmp / "temp"
    temp.mkdir()
    env = gateway_env(db, tmp, fakes) | {
        "SWITCHBOARD_METRICS_TOKEN": METRICS_TOKEN,
        "TMPDIR": str(temp),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gw = GatewayProc(env, tmp / "gateway.log", args=["--workers", str(workers)])
    try:
        gw.start(START_TIMEOUT_S)
        made = list(temp.glob("switchboard-metrics-*"))
        assert len(made) == (1 if workers > 1 else 0), made
        multiproc = made[0] if made else temp
        yield MetricsStack(gw, db, seeded, capped_key, fakes["openai"], multiproc)
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


# -- the mixed run ----------------------------------------------------------------------------


def _question() -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"What is {uuid.uuid4().hex}?"}]


def _openai(s: MetricsStack, key: str) -> openai.OpenAI:
    # A client (and connection) per call, so that several workers share the calls.
    return openai.OpenAI(base_url=s.gateway.openai_base_url, api_key=key, max_retries=0)


def _anthropic(s: MetricsStack, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=s.gateway.url, api_key=key, max_retries=0)


def openai_call(s: MetricsStack, key: str, model: str, messages: Any, stream: bool) -> str:
    client = _openai(s, key)
    if not stream:
        resp = client.chat.completions.create(model=model, messages=cast(Any, messages))
        return resp.choices[0].message.content or ""
    chunks = client.chat.completions.create(
        model=model,
        messages=cast(Any, messages),
        stream=True,
        stream_options={"include_usage": True},
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def anthropic_call(s: MetricsStack, key: str, messages: Any, stream: bool) -> str:
    client = _anthropic(s, key)
    if not stream:
        msg = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=50, messages=messages)
    else:
        with client.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=50, messages=messages
        ) as events:
            msg = events.get_final_message()
    return "".join(b.text for b in msg.content if b.type == "text")


def mixed_run(s: MetricsStack) -> None:
    key = s.seeded.user_key
    # Reasoning tokens: in no log column, so the test knows them from the fake's answers.
    s.openai.replies.extend([Reply(reasoning_tokens=3), Reply(reasoning_tokens=4)])
    assert openai_call(s, key, OPENAI_MODEL, _question(), False) == "ok"
    assert openai_call(s, key, OPENAI_MODEL, _question(), True) == "ok"
    assert anthropic_call(s, key, _question(), False) == "ok"
    assert anthropic_call(s, key, _question(), True) == "ok"
    # An error: the upstream refuses the request (not retried, no fallback).
    s.openai.replies.append(Reply(status=400, error_message="bad tool schema"))
    with pytest.raises(openai.BadRequestError):
        openai_call(s, s.seeded.app_key, OPENAI_MODEL, _question(), False)
    # A fallback: the primary's credential is refused, the next model answers.
    s.openai.replies.extend([Reply(status=401), Reply(text="from the fallback")])
    assert openai_call(s, key, PRIMARY, _question(), True) == "from the fallback"
    # A cap refusal, through each SDK.
    with pytest.raises(openai.RateLimitError):
        openai_call(s, s.capped_key, OPENAI_MODEL, _question(), False)
    with pytest.raises(anthropic.RateLimitError):
        anthropic_call(s, s.capped_key, _question(), False)
    # A response-cache hit: the same question again from the opted-in user.
    repeated = _question()
    s.openai.replies.append(Reply(text="cached answer"))
    assert openai_call(s, key, OPENAI_MODEL, repeated, False) == "cached answer"
    assert openai_call(s, key, OPENAI_MODEL, repeated, False) == "cached answer"
    # And a caller without a valid key.
    with pytest.raises(openai.AuthenticationError):
        openai_call(s, "sk-sb-not-a-key", OPENAI_MODEL, _question(), False)


# -- reading both sides -----------------------------------------------------------------------


def scrape(s: MetricsStack) -> Samples:
    resp = httpx.get(
        f"{s.gateway.url}/metrics",
        headers={"authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def by_labels(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Sample values of ``name`` summed by ``labels`` (zero series left out)."""
    out: Counter[tuple[str, ...]] = Counter()
    for (n, ls), value in samples.items():
        if n == name and value:
            d = dict(ls)
            out[tuple(d[label] for label in labels)] += value
    return dict(out)


def from_rows(
    rows: list[Any], key: Callable[[Any], tuple[str, ...]], value: Callable[[Any], float]
) -> dict[tuple[str, ...], float]:
    out: Counter[tuple[str, ...]] = Counter()
    for r in rows:
        out[key(r)] += value(r)
    return {k: v for k, v in out.items() if v}


def _none(value: Any) -> str:
    return str(value) if value not in (None, "") else "none"


def base_key(r: Any) -> tuple[str, ...]:
    return (
        r.endpoint,
        _none(r.provider),
        _none(r.actual_model),
        f"{r.status // 100}xx",
        _none(r.org_id),
    )


BASE = ("endpoint", "provider", "model", "status_class", "organization")


async def settled_rows(s: MetricsStack, expected_min: int) -> list[Any]:
    """The log rows once they stop changing (every request of the run written)."""
    deadline = time.monotonic() + 60
    last: list[Any] = []
    while time.monotonic() < deadline:
        rows = await log_rows(s.database_url)
        if len(rows) >= expected_min and len(rows) == len(last):
            return rows
        last = rows
        await asyncio.sleep(0.5)
    raise AssertionError(f"log rows did not settle: {len(last)} < {expected_min}")


def requests_per_worker(directory: Path) -> dict[str, float]:
    """Requests each worker counted, read from its own multiprocess file."""
    import json

    from prometheus_client.mmap_dict import MmapedDict

    out: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        out[pid] = sum(
            value
            for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path))
            if json.loads(key)[1] == "switchboard_requests_total"
        )
    return out


# -- the test ---------------------------------------------------------------------------------


async def test_metrics_equal_the_log_rows_after_a_mixed_run(mstack: MetricsStack) -> None:
    s = mstack
    workers = 2 if s.gateway.args[-1] == "2" else 1
    assert httpx.get(f"{s.gateway.url}/metrics", timeout=30).status_code == 401
    mixed_run(s)
    if workers > 1:
        # Calls spread over the workers by the kernel; more until both have served some.
        deadline = time.monotonic() + 90
        while sum(1 for n in requests_per_worker(s.multiproc_dir).values() if n) < 2:
            assert time.monotonic() < deadline, requests_per_worker(s.multiproc_dir)
            openai_call(s, s.seeded.user_key, OPENAI_MODEL, _question(), False)
        assert len(requests_per_worker(s.multiproc_dir)) == 2

    rows = await settled_rows(s, expected_min=12)
    own = [r for r in rows if not r.superseded]
    superseded = [r for r in rows if r.superseded]
    assert len(superseded) == 1 and superseded[0].actual_model == PRIMARY
    assert sum(r.cache_hit for r in own) == 1
    assert sum(r.error_type == "quota" for r in own) == 2
    assert {r.streamed for r in own} == {True, False}
    assert {r.endpoint for r in own} == {"/v1/chat/completions", "/v1/messages"}

    m = scrape(s)
    if workers > 1:
        per_worker = requests_per_worker(s.multiproc_dir)
        assert all(per_worker.values()) and sum(per_worker.values()) == len(own), per_worker

    def check(metric: str, labels: tuple[str, ...], expected: dict[tuple[str, ...], float]) -> None:
        got = by_labels(m, metric, *labels)
        assert got.keys() == expected.keys(), (metric, got, expected)
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9), (metric, k, got[k], v)

    one = lambda _r: 1.0  # noqa: E731
    check("switchboard_requests_total", BASE, from_rows(own, base_key, one))
    check("switchboard_request_duration_seconds_count", BASE, from_rows(own, base_key, one))
    check(
        "switchboard_request_duration_seconds_sum",
        BASE,
        from_rows(own, base_key, lambda r: r.latency_ms / 1000),
    )
    check(
        "switchboard_time_to_first_token_seconds_count",
        BASE,
        from_rows([r for r in own if r.ttft_ms is not None], base_key, one),
    )
    check(
        "switchboard_errors_total",
        ("endpoint", "provider", "model", "error_type", "organization"),
        from_rows(
            [r for r in own if r.status >= 400],
            lambda r: (*base_key(r)[:3], _none(r.error_type), base_key(r)[4]),
            one,
        ),
    )
    tokens = Counter[tuple[str, ...]]()
    for kind, column in (
        ("input", "input_tokens"),
        ("cached", "cached_tokens"),
        ("output", "output_tokens"),
    ):
        for k, v in from_rows(own, base_key, lambda r, c=column: getattr(r, c)).items():
            tokens[(*k, kind)] += v
    assert by_labels(m, "switchboard_tokens_total", "type").get(("reasoning",)) == 7
    reasoned = ("/v1/chat/completions", "openai", OPENAI_MODEL, "2xx", str(s.seeded.org_id))
    tokens[(*reasoned, "reasoning")] = 7  # the two calls that reasoned
    check("switchboard_tokens_total", (*BASE, "type"), dict(tokens))
    check(
        "switchboard_cost_usd_total",
        BASE,
        from_rows(own, base_key, lambda r: float(r.cost_usd or 0)),
    )
    check(
        "switchboard_fallbacks_total",
        ("endpoint", "provider", "model", "error_type"),
        from_rows(superseded, lambda r: (*base_key(r)[:3], _none(r.error_type)), one),
    )
    check(
        "switchboard_cache_hits_total",
        ("endpoint", "model", "organization"),
        from_rows(
            [r for r in own if r.cache_hit],
            lambda r: (r.endpoint, _none(r.actual_model), _none(r.org_id)),
            one,
        ),
    )
    check(
        "switchboard_budget_refusals_total",
        ("endpoint", "organization"),
        from_rows(
            [r for r in own if r.error_type == "quota"],
            lambda r: (r.endpoint, _none(r.org_id)),
            one,
        ),
    )
    assert sum(by_labels(m, "switchboard_in_flight_requests").values()) == 0
    assert sum(by_labels(m, "switchboard_log_rows_dropped_total").values()) == 0
    # Totals cover every row whichever worker answers the scrape.
    assert sum(by_labels(scrape(s), "switchboard_requests_total").values()) == len(own)
    if workers > 1:
        s.gateway.stop()
        assert not s.multiproc_dir.exists()  # removed when the server stopped
