"""What the metrics cost a request: ``Metrics.observe`` of one log record (what ``LogWriter.submit``
adds per request) and the in-flight middleware's increment + decrement, in one process and in
prometheus-client's multiprocess mode (``--workers N``: every update writes a memory map).

    .venv/bin/python benchmarks/metrics_bench.py            # both modes, ~10 s

Prints microseconds per request (median of 5 rounds).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUNDS, N = 5, 50_000


def measure() -> tuple[float, float]:
    from prometheus_client import CollectorRegistry

    from backend.data.log_record import LogRecord
    from backend.observability.metrics import Metrics

    m = Metrics(CollectorRegistry(), multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    now = dt.datetime.now(dt.UTC)
    # A streamed success with tokens, cost and TTFT (the most a success row updates), spread
    # over a few organizations and models as real traffic is.
    records = [
        LogRecord(
            request_id=f"req_{i}",
            created_at=now,
            endpoint="/v1/chat/completions",
            provider="openai",
            actual_model=f"openai/model-{i % 5}",
            org_id=i % 10,
            input_tokens=1200,
            cached_tokens=300,
            output_tokens=250,
            cost_usd=Decimal("0.00123"),
            latency_ms=850.0,
            ttft_ms=210.0,
            streamed=True,
        )
        for i in range(100)
    ]
    observe, gauge = m.observe, m.in_flight
    observe_us, inflight_us = [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for i in range(N):
            observe(records[i % 100])
        observe_us.append((time.perf_counter() - t0) / N * 1e6)
        t0 = time.perf_counter()
        for _ in range(N):
            gauge.inc()
            gauge.dec()
        inflight_us.append((time.perf_counter() - t0) / N * 1e6)
    return statistics.median(observe_us), statistics.median(inflight_us)


def main() -> None:
    if os.environ.get("_METRICS_BENCH_CHILD"):
        observe_us, inflight_us = measure()
        print(f"{observe_us:.2f} {inflight_us:.2f}")
        return
    print("| mode | observe(record) µs/request | in-flight inc+dec µs/request |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as multiproc:
        for mode, extra in (
            ("one process", {}),
            ("multiprocess (--workers N)", {"PROMETHEUS_MULTIPROC_DIR": multiproc}),
        ):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            env |= extra | {"_METRICS_BENCH_CHILD": "1"}
            out = subprocess.run(
                [sys.executable, __file__], env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            print(f"| {mode} | {out[0]} | {out[1]} |")


if __name__ == "__main__":
    main()
