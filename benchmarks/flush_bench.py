"""One log-writer flush of N records on SQLite: CPU per record by thread, and the event loop's
longest stall while it runs.

    .venv/bin/python benchmarks/flush_bench.py                    # 2,000 records, 500 users
    .venv/bin/python benchmarks/flush_bench.py --records 1000 --users 1 --rounds 7

Each round submits N records (bodies of ~1 KB each way unless ``--body-chars``, a tag on every
fifth, a key prefix per user) and awaits ``LogWriter.flush()`` while a sampler task sleeps 1 ms
at a time; it reports the medians over the rounds of:

- **loop** µs/record: CPU of the event loop's thread during the flush (``time.thread_time``):
  aggregation, row building, statement preparation, driver calls;
- **db thread** µs/record: CPU of aiosqlite's worker thread (parameter binding, SQLite itself),
  read from its per-thread clock (``pthread_getcpuclockid``);
- **longest step** ms: the most CPU the event loop's thread spent in one callback (one step of
  a task, between two awaits) during the flush: what a request in flight waits for at least,
  load-independent (the loop's ``Handle._run`` is timed with ``time.thread_time``, so this runs
  on asyncio's own loop, not uvloop: the steps are the same Python code);
- **stall** ms: the longest the sampler waited past its 1 ms, in wall time (the step plus any
  wait for the GIL or for the CPU: noisy on a busy machine).

CPU times are per thread, so other processes on the machine add little to them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data.db import close_db, init_db, migrate
from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter


def body(chars: int) -> str | None:
    """A request or response body of about ``chars`` characters; None for 0 (not logged)."""
    if not chars:
        return None
    return '{"messages": [{"role": "user", "content": "' + "x" * chars + '"}]}'


def records(n: int, users: int, base: int, body_chars: int = 1000) -> list[LogRecord]:
    text = body(body_chars)
    start = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        user = i % users + 1
        out.append(
            LogRecord(
                f"req-{base + i}",
                start + dt.timedelta(milliseconds=37 * (base + i)),
                "/v1/chat/completions",
                status=200 if i % 50 else 502,
                key_prefix=f"sk-sb-{user:06d}",
                user_id=user,
                org_id=user % 7 + 1,
                requested_model="gpt-4o-mini",
                actual_model="openai/gpt-4o-mini" if i % 3 else "anthropic/claude-haiku",
                provider="openai" if i % 3 else "anthropic",
                input_tokens=120 + i % 17,
                output_tokens=40 + i % 11,
                cost_usd=Decimal("0.00012345"),
                price={"input": "0.15", "output": "0.6"},
                latency_ms=3.0 + (i % 400),
                ttft_ms=None,
                tags=("team-a",) if i % 5 == 0 else (),
                request_body=text,
                response_body=text,
            )
        )
    return out


def _db_thread() -> threading.Thread | None:
    for t in threading.enumerate():
        target = getattr(t, "_target", None)
        if getattr(target, "__module__", "").startswith("aiosqlite"):
            return t
    return None


def _thread_cpu(t: threading.Thread | None) -> float:
    if t is None or t.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(t.ident))


class _Steps:
    """The longest callback the loop ran (thread CPU seconds) since ``reset``."""

    def __init__(self) -> None:
        self.longest = 0.0
        run = asyncio.events.Handle._run
        steps = self

        def timed(handle: asyncio.events.Handle) -> None:
            t0 = time.thread_time()
            run(handle)
            steps.longest = max(steps.longest, time.thread_time() - t0)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.longest = 0.0


STEPS = _Steps()


async def one_round(writer: LogWriter, batch: list[LogRecord]) -> tuple[float, float, float, float]:
    for r in batch:
        writer.submit(r)
    stall = 0.0
    done = False

    async def sample() -> None:
        nonlocal stall
        loop = asyncio.get_running_loop()
        while not done:
            t0 = loop.time()
            await asyncio.sleep(0.001)
            stall = max(stall, loop.time() - t0 - 0.001)

    sampler = asyncio.create_task(sample())
    await asyncio.sleep(0.005)  # the sampler is running
    stall = 0.0
    STEPS.reset()
    db = _db_thread()
    db0, cpu0 = _thread_cpu(db), time.thread_time()
    ok = await writer.flush()
    cpu1, db1 = time.thread_time(), _thread_cpu(db)
    step = STEPS.longest
    done = True
    await sampler
    assert ok and not writer.pending
    n = len(batch)
    return (cpu1 - cpu0) / n * 1e6, (db1 - db0) / n * 1e6, step * 1e3, stall * 1e3


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--body-chars", type=int, default=1000, help="of each body; 0: no bodies (LOG_BODIES=0)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/flush.db"
        await migrate(url)
        await init_db(url)
        try:
            writer = LogWriter(LocalBus())
            # As the gateway does after start-up (app.py): the start-up objects are left out of
            # every later full collection, which would otherwise land inside a flush.
            gc.collect()
            gc.freeze()
            await one_round(writer, records(200, args.users, 10**8))  # warm-up
            rows = []
            for i in range(args.rounds):
                batch = records(args.records, args.users, i * args.records, args.body_chars)
                rows.append(await one_round(writer, batch))
        finally:
            await close_db()
    loop_us, db_us, step, stall = (statistics.median(c) for c in zip(*rows, strict=True))
    print(
        f"{args.records} records, {args.users} users, {args.rounds} rounds (medians): "
        f"loop {loop_us:.1f} us/record, db thread {db_us:.1f} us/record, "
        f"longest step {step:.1f} ms CPU, longest stall {stall:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
