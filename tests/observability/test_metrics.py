"""Metrics in one process: what a log record counts, bounded labels, the endpoint's token, the
multiprocess directory, breaker states, the log writer's own numbers, and the Grafana dashboard's
metric names."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.observability.metrics import LabelLimits, Metrics
from backend.observability.metrics_http import metrics_endpoint
from backend.observability.multiproc import ENV, prepare_multiprocess_dir
from backend.routing.health import HealthRegistry

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def record(**fields: Any) -> LogRecord:
    base: dict[str, Any] = dict(
        request_id="req_1",
        created_at=NOW,
        endpoint="/v1/chat/completions",
        provider="openai",
        actual_model="openai/gpt-4o-mini",
        org_id=7,
        user_id=42,
        key_prefix="sk-sb-abcd",
        latency_ms=120.0,
    )
    return LogRecord(**(base | fields))


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(metrics: Metrics, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples(metrics).items() if n == name and want <= ls)


def test_a_record_counts_request_latency_tokens_cost_and_its_outcome() -> None:
    m = Metrics(CollectorRegistry())
    m.observe(
        record(
            input_tokens=100,
            cached_tokens=40,
            output_tokens=7,
            reasoning_tokens=5,
            cost_usd=Decimal("0.25"),
            ttft_ms=50.0,
            streamed=True,
        )
    )
    m.observe(record(status=429, error_type="quota", latency_ms=3.0))
    m.observe(record(status=200, cache_hit=True, cost_usd=Decimal(0), ttft_ms=1.0))
    m.observe(
        record(
            superseded=True,
            status=502,
            error_type="upstream",
            provider="anthropic",
            actual_model="anthropic/claude-x",
        )
    )
    m.observe(record(dlp_activity=[{"kind": "redact", "rule": "email", "matches": 3, "org_id": 7}]))
    org = {"organization": "7"}
    assert total(m, "switchboard_requests_total", **org) == 4  # the superseded row is no request
    assert total(m, "switchboard_requests_total", status_class="4xx") == 1
    assert total(m, "switchboard_request_duration_seconds_count") == 4
    assert total(m, "switchboard_request_duration_seconds_sum") == (120 * 3 + 3) / 1000
    assert total(m, "switchboard_time_to_first_token_seconds_count") == 2
    assert total(m, "switchboard_tokens_total", type="input") == 100
    assert total(m, "switchboard_tokens_total", type="cached") == 40
    assert total(m, "switchboard_tokens_total", type="output") == 7
    assert total(m, "switchboard_tokens_total", type="reasoning") == 5
    assert total(m, "switchboard_cost_usd_total") == 0.25
    assert total(m, "switchboard_errors_total", error_type="quota") == 1
    assert total(m, "switchboard_budget_refusals_total", **org) == 1
    assert total(m, "switchboard_cache_hits_total", model="openai/gpt-4o-mini") == 1
    assert total(m, "switchboard_fallbacks_total", provider="anthropic", error_type="upstream") == 1
    assert total(m, "switchboard_dlp_matches_total", action="redact", rule="email") == 3


def test_labels_are_bounded_and_never_name_a_user_or_key() -> None:
    m = Metrics(CollectorRegistry(), limits=LabelLimits(organizations=2, models=3))
    for org in range(10):
        m.observe(record(org_id=org, actual_model=f"openai/m{org}"))
    m.observe(record(actual_model=None, requested_model="anything-a-client-typed"))
    orgs = {
        dict(ls).get("organization") for (n, ls) in samples(m) if n == "switchboard_requests_total"
    }
    models = {dict(ls).get("model") for (n, ls) in samples(m) if n == "switchboard_requests_total"}
    assert orgs == {"0", "1", "other"}
    assert models == {"openai/m0", "openai/m1", "openai/m2", "other", "none"}
    values = {v for (_, ls) in samples(m) for _, v in ls}
    assert not values & {"42", "sk-sb-abcd", "anything-a-client-typed"}, values
    assert total(m, "switchboard_requests_total") == 11


async def test_metrics_endpoint_with_a_token_refuses_callers_without_it() -> None:
    m = Metrics(CollectorRegistry())
    m.observe(record())
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(m, "s3cret-token"))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-token"}):
            resp = await client.get("/metrics", headers=headers)
            assert resp.status_code == 401, headers
            assert "SWITCHBOARD_METRICS_TOKEN" in resp.json()["error"]["message"]
            assert "s3cret-token" not in resp.text
        ok = await client.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert "switchboard_requests_total{" in ok.text


async def test_metrics_endpoint_without_a_token_is_open() -> None:
    m = Metrics(CollectorRegistry())
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(m, None))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        resp = await client.get("/metrics")
    assert resp.status_code == 200 and "# TYPE switchboard_in_flight_requests gauge" in resp.text


def test_breaker_state_changes_reach_the_circuit_gauge() -> None:
    m = Metrics(CollectorRegistry())
    now = {"t": 0.0}
    health = HealthRegistry(threshold=2, cooldown_s=10, clock=lambda: now["t"])
    health.on_change = m.circuit_changed
    err = __import__("backend.ir.errors", fromlist=["UpstreamUnavailable"]).UpstreamUnavailable(
        "connection refused"
    )
    for _ in range(2):
        health.record_failure("openai", "gpt-x", err)
    state = {"provider": "openai", "model": "gpt-x"}
    assert total(m, "switchboard_circuit_state", **state) == 2  # open
    assert total(m, "switchboard_circuit_state", provider="openai", model="*") == 2
    now["t"] = 11
    health.rows()  # a scrape ticks the breakers
    assert total(m, "switchboard_circuit_state", **state) == 1  # half-open
    health.record_success("openai", "gpt-x")
    assert total(m, "switchboard_circuit_state", **state) == 0


async def test_log_writer_counts_submitted_rows_dropped_rows_and_its_queue() -> None:
    m = Metrics(CollectorRegistry())
    writer = LogWriter(LocalBus(), max_buffer=3, metrics=m, interval=0.01)
    for i in range(5):
        writer.submit(record(request_id=f"req_{i}"))
    assert total(m, "switchboard_requests_total") == 5
    assert total(m, "switchboard_log_rows_dropped_total") == 2 == writer.dropped
    # The flush loop samples the queue before writing (no database here: the write fails and
    # the three records stay queued).
    await writer.start()
    try:
        import asyncio

        for _ in range(500):
            if total(m, "switchboard_log_queue_depth") == 3:
                break
            await asyncio.sleep(0.01)
        assert total(m, "switchboard_log_queue_depth") == 3
    finally:
        await writer.close(timeout=0.2)


_WORKER = """
import sys
from decimal import Decimal
from prometheus_client import CollectorRegistry
from backend.observability.metrics import Metrics
from tests.observability.test_metrics import record
m = Metrics(CollectorRegistry(), multiprocess_dir=sys.argv[1])
for _ in range(int(sys.argv[2])):
    m.observe(record(input_tokens=10, cost_usd=Decimal("0.5")))
m.in_flight.inc()
"""


def test_multiprocess_totals_sum_every_process(tmp_path: Path) -> None:
    env = os.environ | {ENV: str(tmp_path)}
    for n in (3, 4):
        subprocess.run(
            [sys.executable, "-c", _WORKER, str(tmp_path), str(n)], env=env, cwd=ROOT, check=True
        )
    scrape = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from prometheus_client import CollectorRegistry; "
            "from backend.observability.metrics import Metrics; "
            "sys.stdout.write(Metrics(CollectorRegistry(), multiprocess_dir=sys.argv[1])"
            ".render()[0].decode())",
            str(tmp_path),
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    values = {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(scrape)
        for s in f.samples
    }

    def tot(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in values.items() if n == name and set(labels.items()) <= ls)

    assert tot("switchboard_requests_total") == 7
    assert tot("switchboard_request_duration_seconds_count") == 7
    assert tot("switchboard_tokens_total", type="input") == 70
    assert tot("switchboard_cost_usd_total") == 3.5
    # Both writers have exited without being marked dead: their live gauges still count.
    assert tot("switchboard_in_flight_requests") == 2


def test_multiprocess_dir_is_fresh_per_start(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    assert prepare_multiprocess_dir(1, env) is None and ENV not in env
    made = prepare_multiprocess_dir(2, env)
    assert made is not None and env[ENV] == made and Path(made).is_dir()
    assert not list(Path(made).iterdir())
    own = tmp_path / "prom"
    own.mkdir()
    (own / "counter_123.db").write_bytes(b"stale")
    (own / "keep.txt").write_text("not ours")
    assert prepare_multiprocess_dir(1, {ENV: str(own)}) == str(own)
    assert sorted(p.name for p in own.iterdir()) == ["keep.txt"]


def test_every_metric_of_the_grafana_dashboard_exists() -> None:
    dashboard = json.loads((ROOT / "docs/grafana/switchboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = {n for e in exprs for n in re.findall(r"\bswitchboard_[a-z_]+", e)}
    m = Metrics(CollectorRegistry())
    m.observe(record())  # labelled metrics show their samples only once used
    exposed = {
        s.name for f in text_string_to_metric_families(m.render()[0].decode()) for s in f.samples
    }
    exposed |= {f"{f.name}_total" for f in m.registry.collect() if f.type == "counter"}
    exposed |= {f.name for f in m.registry.collect()}
    assert used, "the dashboard references no metric"
    assert used <= exposed, sorted(used - exposed)
    # And the dashboard shows every metric the gateway has.
    families = {f.name for f in m.registry.collect()}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    assert families <= shown, sorted(families - shown)
