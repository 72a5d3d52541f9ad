"""Noisy tenants for the noisy-neighbour test, each in its own process.

They run apart from the test process so that their CPU work (building and parsing 6 MB bodies,
hashing) competes with the gateway for the machine, as real tenants do, and not with the
measuring client for the test process's GIL.

    python -m tests.e2e.noise fake PORT                 # an Anthropic fake on 127.0.0.1:PORT
    python -m tests.e2e.noise dlp GATEWAY_URL API_KEY   # worst DLP input + pathological regex
    python -m tests.e2e.noise login GATEWAY_URL EMAIL   # wrong passwords, three loops at once

Each sender prints one line per finished request (``<status>``; the DLP sender also prints
``start big``/``start small`` before each request) and stops by itself after
``MAX_SECONDS`` or when the parent terminates it: the loops are bounded in count and time.
"""

from __future__ import annotations

import sys
import threading
import time

import httpx
import orjson

MAX_SECONDS = 300.0
MAX_REQUESTS = 10_000
#: Digits and punctuation: every stretch looks like the start of a phone, card or IBAN.
WORST_DLP_BODY_CHARS = 6_000_000
#: ``(x+x+)+y`` backtracks exponentially on a run of x without a y in a backtracking engine.
PATHOLOGICAL_TEXT = "x" * 40


def worst_dlp_text() -> str:
    unit = "4111-1111 +1 (415) 555-26.71/DE89 3704;0044 0532 0130 00,078-05-1120 "
    return (unit * (WORST_DLP_BODY_CHARS // len(unit) + 1))[:WORST_DLP_BODY_CHARS]


def _report(status: int) -> None:
    print(status, flush=True)


def run_fake(port: int) -> None:
    from tests.fakes.anthropic_fake import AnthropicFake

    fake = AnthropicFake()
    fake.port = port
    fake.start()
    print("ready", flush=True)
    deadline = time.monotonic() + MAX_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.5)
    fake.stop()


def run_dlp(url: str, key: str) -> None:
    big = orjson.dumps(
        {
            "model": "anthropic/claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": worst_dlp_text()}],
        }
    )
    small = orjson.dumps(
        {
            "model": "anthropic/claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": PATHOLOGICAL_TEXT}],
        }
    )
    headers = {"x-api-key": key, "content-type": "application/json", "anthropic-version": "x"}
    deadline = time.monotonic() + MAX_SECONDS
    with httpx.Client(base_url=url, timeout=120) as client:
        for i in range(MAX_REQUESTS):
            if time.monotonic() > deadline:
                break
            body = big if i % 2 == 0 else small
            print("start big" if body is big else "start small", flush=True)
            try:
                status = client.post("/v1/messages", content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            _report(status)


def run_login(url: str, email: str) -> None:
    query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
    deadline = time.monotonic() + MAX_SECONDS

    def loop(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(MAX_REQUESTS):
                if time.monotonic() > deadline:
                    break
                variables = {"e": email, "p": f"wrong-password-{n}-{i}"}
                try:
                    status = client.post(
                        "/graphql", json={"query": query, "variables": variables}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                _report(status)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str]) -> None:
    what = argv[0]
    if what == "fake":
        run_fake(int(argv[1]))
    elif what == "dlp":
        run_dlp(argv[1], argv[2])
    elif what == "login":
        run_login(argv[1], argv[2])
    else:
        raise SystemExit(f"unknown noise {what!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
