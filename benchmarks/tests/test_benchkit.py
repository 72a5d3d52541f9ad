"""The harness must measure what it claims: these check its parsers, verdicts and fakes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from benchkit import payloads, pyload
from benchkit.fake import FakeProvider
from benchkit.load import Load
from benchkit.report import Row, Table, diff, median, paired, ratio
from profile_gateway import component_of, fold
from soak import verdict

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]

SSE = payloads.sse_stream(3)


async def _read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode().lower().split("\r\n"):
        if line.startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    await reader.readexactly(length)
    return True


def _chunked(pieces: list[bytes]) -> list[bytes]:
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await _read_request(reader):
                await handler(reader, writer)  # type: ignore[misc]
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with srv:
        yield srv.sockets[0].getsockname()[1]


def _args(port: int, **kw: object) -> argparse.Namespace:
    base = {
        "url": f"http://127.0.0.1:{port}/v1/chat/completions",
        "body_bytes": b'{"stream":true}',
        "header": ["Authorization: Bearer x"],
        "connections": 2,
        "duration": 0.4,
        "warmup": 0.0,
        "requests": 0,
        "timeout": 5.0,
        "first_token": payloads.FIRST_TOKEN["openai"].decode(),
        "end": "[DONE]",
    }
    base.update(kw)
    return argparse.Namespace(**base)


async def test_pyload_decodes_chunked_streams_split_anywhere() -> None:
    # Chunks of 7 bytes, each written separately and cut mid-line: the decoder must not care.
    pieces = [SSE[i : i + 7] for i in range(0, len(SSE), 7)]
    raw = b"".join(_chunked(pieces))

    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for i in range(0, len(raw), 5):
            w.write(raw[i : i + 5])
            await w.drain()
            await asyncio.sleep(0)

    async with server(handler) as port:
        out = await pyload.run(_args(port))
    assert out["ok"] == out["requests"] > 0
    assert not any(out["errors"].values())
    assert out["ttft_ms"]["p50"] is not None
    assert out["ttft_ms"]["p50"] <= out["total_ms"]["p50"]


async def test_pyload_counts_wrong_status_and_cut_streams_as_errors() -> None:
    calls = 0

    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            body = b'{"error":{}}'
            w.write(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        else:  # complete HTTP body, but the stream never says [DONE]
            body = SSE.replace(b"data: [DONE]\n\n", b"")
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await w.drain()

    async with server(handler) as port:
        out = await pyload.run(_args(port, connections=1))
    assert out["ok"] == 0
    assert out["errors"]["status"] > 0
    assert out["errors"]["incomplete"] > 0


def test_fake_provider_serves_json_and_sse(tmp_path: Path) -> None:
    kinds = [True] + ([False] if shutil.which("nginx") or Path("/usr/sbin/nginx").exists() else [])
    for force_python in kinds:
        fake = FakeProvider(tmp_path / str(force_python), cpus=None).start(
            allow_install=False, force_python=force_python
        )
        try:
            for url, ctype, body in (
                (fake.openai_base_url, "application/json", payloads.chat_completion()),
                (fake.sse_base_url, "text/event-stream", payloads.sse_stream()),
            ):
                req = urllib.request.Request(url + "/chat/completions", data=b"{}", method="POST")
                with urllib.request.urlopen(req, timeout=5) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith(ctype)
                    assert resp.read() == body
        finally:
            fake.stop()


def test_sse_fake_has_twenty_content_chunks_then_usage_and_done() -> None:
    frames = [f for f in payloads.sse_stream().split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    assert sum(b'"content"' in f for f in frames) == payloads.STREAM_CHUNKS
    assert b'"usage":{' in frames[-2]


def test_soak_verdict() -> None:
    flat = [(60.0, 100.0), (120.0, 104.0), (180.0, 109.0), (240.0, 98.0)]
    ok, text = verdict(flat, 60, 0.10)
    assert ok and text.startswith("FLAT")
    growing = [*flat, (300.0, 111.0)]
    ok, text = verdict(growing, 60, 0.10)
    assert not ok and "+11.0%" in text
    # Samples before the end of warm-up do not count.
    ok, _ = verdict([(30.0, 50.0), (60.0, 100.0), (120.0, 101.0)], 60, 0.10)
    assert ok


def _load(rps: float, p50: float) -> Load:
    return Load(rps=rps, p50=p50, p90=p50, p99=p50, requests=1, errors={}, duration_s=1.0)


def test_ratios_are_paired_within_rounds() -> None:
    # Round 2 is slow for both: per-round ratios stay 0.5, a ratio of medians would not.
    res = {
        ("gw", "k"): [_load(50, 2.0), _load(10, 9.0), _load(60, 2.5)],
        ("direct", "k"): [_load(100, 1.0), _load(20, 8.0), _load(120, 1.0)],
    }
    assert paired(res, ("gw", "k"), ("direct", "k"), ratio, lambda x: x.rps) == 0.5
    assert paired(res, ("gw", "k"), ("direct", "k"), diff, lambda x: x.p50) == 1.0
    assert median([None, 3.0, 1.0]) == 2.0
    assert median([None]) is None


def test_table_is_markdown_with_one_label_per_group() -> None:
    t = Table()
    t.add(Row("Group A", "direct", target="x|y"))
    t.add(Row("Group A", "gateway"))
    lines = t.markdown().splitlines()
    assert lines[0].startswith("| Scenario |") and set(lines[1]) <= set("|-")
    assert lines[2].startswith("| Group A | direct") and "x/y" in lines[2]
    assert lines[3].startswith("|  | gateway")


def test_dashboard_row_says_which_database_failed() -> None:
    """A database whose db_scale run failed is a failed row, not a row left out."""
    from benchkit import dbscale
    from benchkit.table import Extras, _dashboard_rows

    sqlite = {"db": "sqlite", "timings": [{"name": "q", "ms": 12.5, "error": ""}], "export": {}}
    stderr = '[bench] sqlite: seeded\n[bench] postgres: FAILED: OperationalError: near ","\n'
    results = dbscale.with_failures([sqlite], ["sqlite", "postgres"], stderr)
    assert results[1] == {"db": "postgres", "failed": 'OperationalError: near ","'}
    rows, _ = dbscale.summarize(results)
    table = Table()
    _dashboard_rows(table, Extras(dashboard=rows, dashboard_rows=10_000_000))
    sqlite_line, pg_line = table.markdown().splitlines()[2:4]
    assert "SQLite: slowest of 1 queries" in sqlite_line and "12.5 ms" in sqlite_line
    assert sqlite_line.rstrip(" |").endswith("✅")
    assert "PostgreSQL: not measured, the run failed" in pg_line and 'near ","' in pg_line
    assert pg_line.rstrip(" |").endswith("❌")


def test_profile_fold_attributes_samples_to_components(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    root = "_run (<frozen runpy>:1);handle_chat (/work/main/backend/proxy/chat.py:40)"
    pricing = "cost (/work/main/backend/pricing/book.py:9);calc (site-packages/genai_prices/t.py:3)"
    httpx = "request (x/site-packages/httpx/_client.py:1)"
    aiohttp = "_request (x/site-packages/aiohttp/client.py:2)"
    raw.write_text(
        f"{root};{pricing} 6\n{root};{httpx};{aiohttp} 3\n{root};{httpx} 1\nnot a stack\n"
    )
    total, own, incl, comps = fold(raw)
    assert total == 10
    assert comps["pricing (PriceBook, genai_prices)"] == 6
    assert comps["upstream HTTP: aiohttp"] == 3
    assert comps["upstream HTTP: httpx types + transport adapter"] == 1
    assert own["genai_prices/t.py:calc"] == 6
    assert incl["backend/proxy/chat.py:handle_chat"] == 10
    assert component_of(["starlette/routing.py"]) == "Starlette + anyio (routing, responses)"


@pytest.mark.parametrize("cut", [1, 2, 3])
async def test_pyload_handles_a_response_split_inside_the_chunk_size_line(cut: int) -> None:
    raw = b"".join(_chunked([SSE]))

    async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + raw[:cut])
        await w.drain()
        await asyncio.sleep(0.001)
        w.write(raw[cut:])
        await w.drain()

    async with server(handler) as port:
        out = await pyload.run(_args(port, connections=1, duration=0.2))
    assert out["ok"] == out["requests"] > 0
