"""What DLP adds to time to first token, measured through the real gateway.

Run: ``.venv/bin/python benchmarks/dlp_ttft.py [--requests 40] [--prompt-kb 4]`` (about 15 s).

Starts the gateway (``python -m backend.cli serve``, SQLite in a temp dir) in front of the fake
OpenAI upstream of the test suite, with two organizations: one with DLP on (every built-in
rule), one with DLP off. Streams the same chat request through each, alternating so drift on a
shared machine hits both alike, and prints the median and p90 time from sending the request to
the first content delta the client reads, both ways, and the difference. The prompt holds a
few sensitive values per KB. The answer comes one character per SSE chunk and either starts
with plain words (DLP adds prompt redaction and restorer setup) or with a placeholder (the
restorer's worst case: it must hold ``[EMAIL_`` back until ``1]`` arrives, so the first token
waits for the whole placeholder, as it must).

``benchmarks/dlp_bench.py`` measures the engine's own cost per KB in-process; this measures what
a client sees, HTTP and both hops included.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dlp_bench import PROSE, VALUES  # noqa: E402
from tests.e2e.harness import GatewayProc, orm, prepare_database, seed_basic  # noqa: E402
from tests.fakes.base import Reply  # noqa: E402
from tests.fakes.openai_fake import OpenAIFake  # noqa: E402

#: Two answers: one that starts with plain words, one that starts with a placeholder.
ANSWERS = {
    "text first": "Sure. I will write to [EMAIL_1] about card [CARD_1] today.",
    "placeholder first": "[EMAIL_1] is on file; I will write to [EMAIL_1] about [CARD_1].",
}


async def _seed(database_url: str) -> tuple[str, str]:
    """(key of an org with DLP on, key of an org with DLP off)."""
    from backend.data.models.tenancy import Organization

    await prepare_database(database_url)
    seeded = await seed_basic(database_url)
    async with orm(database_url):
        await Organization.filter(id=seeded.org_id).update(dlp_enabled=True)
    return seeded.user_key, seeded.other_key


def _prompt(kb: int) -> str:
    chunk = PROSE + "".join(VALUES)
    return (chunk * (kb * 1024 // len(chunk) + 1))[: kb * 1024]


def _ttft(client: httpx.Client, url: str, key: str, prompt: str) -> float:
    """Seconds from sending the request to reading the first content delta."""
    body = {
        "model": "openai/gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    t0 = time.perf_counter()
    with client.stream(
        "POST",
        f"{url}/v1/chat/completions",
        content=orjson.dumps(body),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    ) as resp:
        resp.raise_for_status()
        first: float | None = None
        for line in resp.iter_lines():
            if first is None and line.startswith("data: {"):
                delta = orjson.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    first = time.perf_counter() - t0
        if first is None:
            raise RuntimeError("the stream carried no content")
        return first


def _summary(label: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"  {label:<9} median {statistics.median(ms):7.2f} ms   p90 {p90:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="measured requests per side")
    parser.add_argument("--prompt-kb", type=int, default=4, help="prompt size in KB")
    opts = parser.parse_args()

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlp-ttft-") as tmp_dir:
        tmp = Path(tmp_dir)
        database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        on_key, off_key = asyncio.run(_seed(database_url))
        fake = OpenAIFake()
        fake.start()
        env = {
            "DATABASE_URL": database_url,
            "SWITCHBOARD_DATA_DIR": str(tmp / "data"),
            "SWITCHBOARD_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "OPENAI_API_KEY": "sk-bench-upstream-0123456789",
            "OPENAI_BASE_URL": fake.sdk_base_url,
        }
        gateway = GatewayProc(env, tmp / "gateway.log").start()
        try:
            prompt = _prompt(opts.prompt_kb)
            samples: dict[tuple[str, str], list[float]] = {}
            with httpx.Client(timeout=30) as client:
                for scenario, answer in ANSWERS.items():
                    for i in range(opts.requests + 5):  # the first 5 of each side warm up
                        for side, key in (("DLP off", off_key), ("DLP on", on_key)):
                            fake.replies.append(Reply(text=answer, chunks=len(answer)))
                            ttft = _ttft(client, gateway.url, key, prompt)
                            if i >= 5:
                                samples.setdefault((scenario, side), []).append(ttft)
            # Requests alternate off, on: check that the two sides really differ.
            off_sent, on_sent = fake.requests[0::2], fake.requests[1::2]
            assert all(b"jane.doe@example.com" in r.body for r in off_sent)
            assert not any(b"jane.doe@example.com" in r.body for r in on_sent)
        finally:
            gateway.stop()
            fake.stop()

    print(
        f"time to first token through the gateway, streamed answer, {opts.prompt_kb} KB prompt "
        f"({opts.requests} requests each, fake upstream on loopback)"
    )
    for scenario in ANSWERS:
        print(f" answer starting with {scenario.split()[0]}:")
        on, off = samples[(scenario, "DLP on")], samples[(scenario, "DLP off")]
        print(_summary("DLP off", off))
        print(_summary("DLP on", on))
        added = statistics.median(on) - statistics.median(off)
        print(f"  added by DLP (median)  {added * 1000:7.2f} ms")
    print(f"done in {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
