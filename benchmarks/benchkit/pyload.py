"""An async HTTP/1.1 load client in its own process, for what wrk cannot measure: streams.

Closed loop over ``--connections`` keep-alive connections for ``--duration`` seconds (after
``--warmup`` seconds whose results are dropped). Per response it records the time to the first
token (the first body bytes matching ``--first-token``, a regex) and the time to the end of the
body; a response counts as an error unless its status is 200 and its body contains ``--end``.
Prints one JSON object. It is a bare ``asyncio.Protocol`` on uvloop with incremental chunked
decoding, so that it stays far cheaper than the server it measures.

    python pyload.py --url http://127.0.0.1:8000/v1/chat/completions --body body.json \
        --header "Authorization: Bearer sk-..." --connections 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


class Response:
    __slots__ = ("body_tail", "end_seen", "first_token", "status")

    def __init__(self) -> None:
        self.status = 0
        self.first_token: float | None = None
        self.end_seen = False
        self.body_tail = b""


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``request()`` sends and resolves when the body is complete."""

    def __init__(self, first_token: re.Pattern[bytes] | None, end: bytes) -> None:
        self.first_token = first_token
        self.end = end
        self.keep = max(len(end), 64)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[Response] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.buf = b""
        self.head_done = False
        self.chunked = False
        self.remaining = -1  # Content-Length left, or -1 when unknown
        self.chunk_left = 0  # bytes left of the current chunk (chunked)
        self.resp = Response()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            if self.head_done and not self.chunked and self.remaining < 0:
                self._finish()  # body delimited by the close
            else:
                self.done.set_exception(ConnectionError("connection closed mid-response"))
        if not self.closed.done():
            self.closed.set_result(None)

    def request(self, raw: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.done

    def _body(self, data: bytes) -> None:
        r = self.resp
        window = r.body_tail + data
        if (
            r.first_token is None
            and self.first_token is not None
            and self.first_token.search(window)
        ):
            r.first_token = time.perf_counter()
        if not r.end_seen and self.end in window:
            r.end_seen = True
        r.body_tail = window[-self.keep :]

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.resp)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.head_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").lower().split("\r\n")
            self.buf = self.buf[end + 4 :]
            self.head_done = True
            self.resp.status = int(head[0].split(" ", 2)[1])
            for line in head[1:]:
                name, _, value = line.partition(":")
                value = value.strip()
                if name == "content-length":
                    self.remaining = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    self.chunked = True
        if self.chunked:
            self._chunked()
        elif self.remaining >= 0:
            piece, self.buf = self.buf[: self.remaining], self.buf[self.remaining :]
            if piece:
                self._body(piece)
            self.remaining -= len(piece)
            if self.remaining == 0:
                self._finish()
        elif self.buf:
            self._body(self.buf)
            self.buf = b""

    def _chunked(self) -> None:
        while self.buf:
            if self.chunk_left > 0:
                piece = self.buf[: self.chunk_left]
                self.buf = self.buf[len(piece) :]
                self.chunk_left -= len(piece)
                self._body(piece)
                if self.chunk_left == 0:
                    self.chunk_left = -2
                continue
            if self.chunk_left == -2:  # the CRLF after a chunk's data is due
                if len(self.buf) < 2:
                    return
                self.buf = self.buf[2:]
                self.chunk_left = 0
                continue
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                return
            size = int(self.buf[:eol].split(b";", 1)[0], 16)
            if size == 0:
                if self.buf.find(b"\r\n\r\n", eol) < 0:
                    return  # wait for the (empty) trailer
                self.buf = b""
                self._finish()
                return
            self.buf = self.buf[eol + 2 :]
            self.chunk_left = size


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    s = sorted(values)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": sum(s) / len(s)}


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body: bytes = args.body_bytes
    headers = [
        f"POST {url.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Accept: */*",
        *args.header,
    ]
    raw = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    first = re.compile(args.first_token.encode()) if args.first_token else None
    end = args.end.encode()
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    warm_until = t0 + args.warmup
    stop_at = warm_until + args.duration
    ttft: list[float] = []
    total: list[float] = []
    errors = {"status": 0, "incomplete": 0, "connect": 0, "read": 0}
    statuses: dict[int, int] = {}
    counted = 0
    budget = args.requests

    async def worker() -> None:
        nonlocal counted
        conn: Conn | None = None
        while True:
            now = time.perf_counter()
            if now >= stop_at or (budget and counted >= budget):
                break
            if conn is None or conn.transport is None or conn.transport.is_closing():
                try:
                    _, conn = await loop.create_connection(lambda: Conn(first, end), host, port)
                except OSError:
                    errors["connect"] += 1
                    await asyncio.sleep(0.05)
                    continue
            start = time.perf_counter()
            try:
                resp = await asyncio.wait_for(conn.request(raw), args.timeout)
            except (ConnectionError, TimeoutError):
                errors["read"] += 1
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            finish = time.perf_counter()
            if start < warm_until:
                continue
            counted += 1
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status != 200:
                errors["status"] += 1
            elif not resp.end_seen:
                errors["incomplete"] += 1
            else:
                total.append((finish - start) * 1000)
                if resp.first_token is not None:
                    ttft.append((resp.first_token - start) * 1000)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(args.connections)))
    elapsed = max(1e-9, time.perf_counter() - warm_until)
    return {
        "requests": counted,
        "ok": len(total),
        "duration_s": elapsed,
        "rps": len(total) / elapsed,
        "errors": errors,
        "statuses": {str(k): v for k, v in statuses.items()},
        "ttft_ms": percentiles(ttft),
        "total_ms": percentiles(total),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--body", help="file with the request body (POST)")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--requests", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--first-token", default="", help="regex marking the first token in the body")
    p.add_argument("--end", default="", help="bytes a complete body contains")
    args = p.parse_args()
    args.body_bytes = Path(args.body).read_bytes() if args.body else b""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
