"""What reaches the upstream is the same whichever transport sends it, and a hang-up is seen.

A raw asyncio server records each request head exactly as it arrived on the socket, so the
comparison sees what the provider would see (names, values, duplicates), not what a framework
made of it. The endless fake (``tests/fakes/endless_fake.py``) records when the gateway closes
its side of a connection: closing a stream after its first chunk must close the upstream
connection on every transport, the default one included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import get_args

import pytest

from backend.providers.http import (
    DEFAULT_TRANSPORT,
    TransportName,
    Upstream,
    make_http_client,
)
from tests.fakes.endless_fake import EndlessUpstream

TRANSPORTS: tuple[TransportName, ...] = get_args(TransportName)


class HeadRecorder:
    """Answers every request with a small JSON body and keeps each request head's lines."""

    def __init__(self) -> None:
        self.heads: list[list[tuple[str, str]]] = []
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:-2]
                pairs = [(n.strip(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines)]
                self.heads.append(pairs)
                size = next((int(v) for n, v in pairs if n.lower() == "content-length"), 0)
                self.bodies.append(await reader.readexactly(size) if size else b"")
                body = b'{"ok":true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[HeadRecorder, str]]:
    rec = HeadRecorder()
    base = await rec.start()
    yield rec, base
    await rec.stop()


async def _send_all(base: str, transport: TransportName, stream: bool) -> None:
    client = make_http_client(
        base + "/v1",
        transport=transport,
        headers={"authorization": "Bearer sk-up", "x-team": "a"},
        timeout_s=5,
    )
    try:
        body = b'{"model":"m","messages":[]}'
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        if stream:
            async with client.stream("POST", "chat/completions", content=body, headers=headers):
                pass
        else:
            resp = await client.post("chat/completions", content=body, headers=headers)
            assert resp.status_code == 200 and resp.json() == {"ok": True}
    finally:
        await client.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_every_transport_sends_the_same_headers(
    recorder: tuple[HeadRecorder, str], stream: bool
) -> None:
    rec, base = recorder
    for transport in TRANSPORTS:
        await _send_all(base, transport, stream)
    assert len(rec.heads) == len(TRANSPORTS)
    # Order may differ between clients; names, values and how often each is sent may not.
    sent = {
        t: sorted((n.lower(), v) for n, v in h) for t, h in zip(TRANSPORTS, rec.heads, strict=True)
    }
    expected = sorted(
        [
            ("host", base.removeprefix("http://")),
            ("accept", "*/*"),
            ("accept-encoding", "gzip, deflate"),
            ("user-agent", "switchboard"),
            ("authorization", "Bearer sk-up"),
            ("x-team", "a"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("content-length", "27"),
        ]
    )
    for transport, headers in sent.items():
        assert headers == expected, transport
    # Header names reach the wire lower-case, as given, on the default transport too.
    default_head = rec.heads[TRANSPORTS.index(DEFAULT_TRANSPORT)]
    assert all(name == name.lower() for name, _ in default_head)
    assert set(rec.bodies) == {b'{"model":"m","messages":[]}'}


@pytest.fixture(scope="module")
def endless() -> Iterator[EndlessUpstream]:
    up = EndlessUpstream().start()
    yield up
    up.stop()


async def _until(check: object, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_closing_a_stream_closes_the_upstream_connection(
    endless: EndlessUpstream, transport: TransportName
) -> None:
    endless.reset()
    client: Upstream = make_http_client(endless.sdk_base_url, transport=transport, timeout_s=5)
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    try:
        async with client.stream("POST", "chat/completions", content=body) as resp:
            chunks = resp.aiter_bytes()
            assert b"chat.completion.chunk" in await chunks.__anext__()
            # The upstream is still writing: nothing has closed the connection yet.
            assert endless.conns and endless.conns[0].peer_closed_at is None
        # Leaving the block is what the proxy does when its client hangs up.
        assert await _until(lambda: endless.conns[0].peer_closed_at is not None), transport
        sent = endless.conns[0].frames_sent
        await asyncio.sleep(0.2)
        assert endless.conns[0].frames_sent == sent  # nobody reads it any more
    finally:
        await client.aclose()


async def test_cancelling_the_reading_task_closes_the_upstream_connection(
    endless: EndlessUpstream,
) -> None:
    """A cancelled request task (a server's answer to a hang-up) drops the upstream read.

    Twenty times: a cancel can reach pyreqwest's read as it finishes and be lost (the read
    returns its chunk, no CancelledError follows); with two busy processes beside it, that
    happened within 4 tries and the reader of this endless stream read on for ever."""
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    for attempt in range(20):
        endless.reset()
        client = make_http_client(endless.sdk_base_url, transport=DEFAULT_TRANSPORT, timeout_s=5)
        started = asyncio.Event()

        async def read_forever(client: Upstream = client, started: asyncio.Event = started) -> None:
            async with client.stream("POST", "chat/completions", content=body) as resp:
                async for _ in resp.aiter_bytes():
                    started.set()

        task = asyncio.create_task(read_forever())
        try:
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=10)
            assert task in done and task.cancelled(), f"try {attempt}: the reader kept reading"
            assert await _until(lambda: endless.conns[0].peer_closed_at is not None)
        finally:
            if not task.done():
                task.cancel()
            await client.aclose()


async def test_a_compressed_answer_is_decoded_once_by_every_transport() -> None:
    """Upstream asks for gzip; the body comes back decoded (whole and streamed), whichever
    client decodes it (reqwest in Rust, httpx in Python), and never twice."""
    import gzip

    payload = b'{"ok":true,"text":"' + b"compressible " * 200 + b'"}'
    packed = gzip.compress(payload)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                size = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        size = int(value)
                await reader.readexactly(size)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(packed), packed)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        for transport in TRANSPORTS:
            client = make_http_client(base, transport=transport, timeout_s=5)
            try:
                resp = await client.post("x", content=b"{}")
                assert resp.content == payload, transport
                async with client.stream("POST", "x", content=b"{}") as streamed:
                    assert await streamed.aread() == payload, transport
            finally:
                await client.aclose()
    finally:
        server.close()
