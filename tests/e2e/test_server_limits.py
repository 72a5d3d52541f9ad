"""Server limits on a real served gateway (``python -m backend.cli serve``), over raw sockets.

- a request head (request line + headers) over ``SWITCHBOARD_MAX_HEADER_BYTES`` gets 431 and the
  connection is closed, whether the head is complete or still arriving;
- six clients each streaming an unfinished 16 MiB header do not grow the process (it holds at
  most the limit plus one socket read per connection), and the gateway keeps answering;
- a head not complete within ``SWITCHBOARD_HEADER_TIMEOUT`` gets 408 and is closed;
- a body not complete within ``SWITCHBOARD_BODY_TIMEOUT`` gets 408 in the client's protocol
  format (OpenAI, Anthropic, GraphQL) and the connection is closed.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.conftest import Stack

HEAD_LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    return {
        "SWITCHBOARD_MAX_HEADER_BYTES": str(HEAD_LIMIT),
        "SWITCHBOARD_HEADER_TIMEOUT": "2",
        "SWITCHBOARD_BODY_TIMEOUT": "2",
    }


def connect(stack: Stack) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=60)
    sock.settimeout(60)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read until the server closes: (status, headers, body)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), f"no HTTP response: {data[:200]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_complete_head_over_the_limit_gets_431(stack: Stack) -> None:
    with connect(stack) as sock:
        big = b"a" * (HEAD_LIMIT + 1024)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-big: " + big + b"\r\n\r\n")
        status, headers, body = read_response(sock)
    assert (status, headers["connection"]) == (431, "close")
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"]), headers
    assert orjson.loads(body) == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "request_header_fields_too_large",
            "message": f"Request line and headers exceed the limit of {HEAD_LIMIT} bytes.",
        },
    }
    # A head within the limit is served as before.
    ok = httpx.get(f"{stack.gateway.url}/healthz", headers={"x-fine": "a" * 8000}, timeout=30)
    assert ok.status_code == 200


def test_unfinished_head_over_the_limit_gets_431(stack: Stack) -> None:
    with connect(stack) as sock:
        # Exactly one byte over: the server reads all of it, then refuses.
        start = b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-big: "
        sock.sendall(start + b"a" * (HEAD_LIMIT + 1 - len(start)))
        status, _, body = read_response(sock)
    assert status == 431
    assert orjson.loads(body)["error"]["code"] == "request_header_fields_too_large"


def test_unfinished_huge_heads_do_not_grow_the_process(stack: Stack) -> None:
    assert stack.gateway.proc is not None
    pid = stack.gateway.proc.pid
    before = rss_bytes(pid)
    total = 16 * 1024 * 1024
    sent = [0] * 6

    def flood(i: int) -> None:
        chunk = b"a" * 65536
        with connect(stack) as sock:
            try:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-big: ")
                while sent[i] < total:
                    sock.sendall(chunk)
                    sent[i] += len(chunk)
            except OSError:
                pass  # refused and closed by the server: the point

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    grown = rss_bytes(pid) - before
    print(f"six unfinished 16 MiB heads: gateway RSS grew {grown / 2**20:.1f} MiB")
    # Unbounded, the gateway held each header whole: ~100 MB for these six.
    assert grown < 30 * 1024 * 1024, f"the gateway grew by {grown / 2**20:.1f} MiB"
    assert all(n < total for n in sent), "a 16 MiB header was read to the end"
    assert httpx.get(f"{stack.gateway.url}/healthz", timeout=30).status_code == 200


def test_stalled_head_gets_408(stack: Stack) -> None:
    with connect(stack) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n")  # ... and nothing more
        status, headers, body = read_response(sock)
    assert status == 408
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"]), headers
    assert orjson.loads(body)["error"] == {
        "type": "invalid_request_error",
        "code": "request_timeout",
        "message": "Request headers were not received within 2 seconds.",
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/v1/chat/completions",
            {
                "error": {
                    "message": "Request body was not received within 2 seconds.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        (
            "/v1/messages",
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "Request body was not received within 2 seconds.",
                },
            },
        ),
        (
            "/graphql",
            {
                "errors": [
                    {
                        "message": "Request body was not received within 2 seconds.",
                        "extensions": {"code": "REQUEST_TIMEOUT"},
                    }
                ]
            },
        ),
    ],
)
def test_stalled_body_gets_408_in_the_clients_format(
    stack: Stack, path: str, expected: dict[str, object]
) -> None:
    with connect(stack) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {stack.seeded.user_key}\r\ncontent-length: 1000\r\n\r\n"
            '{"model": "openai/gpt-4o-mini", '.encode()
        )
        status, headers, body = read_response(sock)  # the server closes after answering
    assert (status, headers.get("connection")) == (408, "close")
    parsed = orjson.loads(body)
    parsed.pop("request_id", None)
    assert parsed == expected
