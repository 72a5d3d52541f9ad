"""Hypothesis-generated bodies against /v1/chat/completions and /v1/messages of a real gateway.

Each case is one HTTP request (valid, almost valid or hostile; see ``bodies.py``) with one of
several credentials. Every answer must be clean: no 5xx (the fake upstreams never fail here), no
hang (every request is bounded by a timeout), a 200 that is a complete answer or stream in the
caller's protocol, and every refusal an error body in the caller's format. Afterwards every
request has its log row, and the server log holds no traceback.

Budget: ``FUZZ_EXAMPLES`` cases per endpoint (default 300), derandomized so CI runs the same
cases each time; ``FUZZ_RANDOM=1`` explores new ones.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key
from tests.e2e.conftest import Stack
from tests.e2e.harness import log_rows, orm
from tests.fuzz.bodies import ANTHROPIC, OPENAI, request_bytes
from tests.fuzz.checks import check_answer, log_alarms

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
#: Far above any honest answer here (fakes answer at once, the upstream timeout is 30 s).
REQUEST_TIMEOUT = 60.0
PATHS = {OPENAI: "/v1/chat/completions", ANTHROPIC: "/v1/messages"}


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    return {
        "SWITCHBOARD_MAX_BODY_BYTES": "1000000",
        "SWITCHBOARD_UPSTREAM_TIMEOUT": "30",
        # An open circuit would report "circuit open" instead of the failure that opened it.
        "SWITCHBOARD_CIRCUIT_THRESHOLD": "100000",
    }


@pytest.fixture(scope="module")
async def keys(stack: Stack) -> dict[str, str | None]:
    """Credentials a case may present: uncapped and capped users, an app, none, a wrong one."""
    async with orm(stack.database_url):
        capped = await User.create(
            name="Capped",
            email=f"capped-{os.urandom(3).hex()}@acme.test",
            organization_id=stack.seeded.org_id,
            weekly_cap_usd=Decimal("1000"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="fuzz", user=capped)
    return {
        "user": stack.seeded.user_key,
        "capped": secret,
        "app": stack.seeded.app_key,
        "none": None,
        "wrong": "sb-not-a-real-key-0123456789",
    }


def headers_for(protocol: str, key: str | None, style: str) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if protocol == ANTHROPIC:
        headers["anthropic-version"] = "2023-06-01"
    if key is not None:
        if style == "x-api-key":
            headers["x-api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
    return headers


class Tally:
    def __init__(self) -> None:
        self.cases = 0
        self.by_status: dict[int, int] = {}
        self.by_layer: dict[str, int] = {}
        self.request_ids: dict[str, int] = {}
        #: What each request was, to name the case when its log row is missing.
        self.described: dict[str, str] = {}

    def add(self, layer: str, status: int, request_id: str | None, description: str = "") -> None:
        self.cases += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.by_layer[layer] = self.by_layer.get(layer, 0) + 1
        if request_id:
            self.request_ids[request_id] = status
            self.described[request_id] = description


def send(client: httpx.Client, protocol: str, raw: bytes, headers: dict[str, str]) -> Any:
    """(status, content type, body bytes, request id) of one request, read to the end."""
    started = time.monotonic()
    with client.stream("POST", PATHS[protocol], content=raw, headers=headers) as resp:
        body = resp.read()
    elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT, f"request took {elapsed:.1f} s"
    return (
        resp.status_code,
        resp.headers.get("content-type", ""),
        body,
        resp.headers.get("x-request-id"),
    )


def fuzz(stack: Stack, keys: dict[str, str | None], protocol: str, tally: Tally) -> None:
    """Run the hypothesis cases (synchronous: the gateway is another process)."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(
        case=request_bytes(protocol),
        who=st.sampled_from(["user", "user", "user", "capped", "app", "none", "wrong"]),
        style=st.sampled_from(["bearer", "x-api-key"]),
    )
    def one_case(case: tuple[str, bytes], who: str, style: str) -> None:
        layer, raw = case
        headers = headers_for(protocol, keys[who], style)
        status, ctype, body, rid = send(client, protocol, raw, headers)
        problem = check_answer(protocol, status, ctype, body)
        if problem is not None:
            tail = [
                line
                for line in stack.gateway.log_text().splitlines()[-400:]
                if " WARNING " in line or " ERROR " in line
            ]
            detail = "\n".join(tail[-8:])
            raise AssertionError(f"{layer} body {raw[:600]!r} as {who}: {problem}\n{detail}")
        tally.add(layer, status, rid, f"{layer} as {who}/{style} -> {status}: {raw[:400]!r}")

    started = time.monotonic()
    with httpx.Client(base_url=stack.gateway.url, timeout=REQUEST_TIMEOUT) as client:
        try:
            one_case()
        finally:
            print(
                f"\nfuzz {protocol}: {tally.cases} cases in {time.monotonic() - started:.0f} s, "
                f"by layer {tally.by_layer}, "
                f"by status {dict(sorted(tally.by_status.items()))}"
            )


@pytest.mark.parametrize("protocol", [OPENAI, ANTHROPIC])
async def test_fuzz_chat_endpoint(stack: Stack, keys: dict[str, str | None], protocol: str) -> None:
    tally = Tally()
    log_start = len(stack.gateway.log_text())
    fuzz(stack, keys, protocol, tally)
    assert tally.cases >= EXAMPLES // 2  # hypothesis really ran (it may dedupe a few)

    # Every request left exactly one (non-superseded) log row with the status it answered.
    deadline = time.monotonic() + 20
    rows: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rows = {
            r.request_id: r
            for r in await log_rows(stack.database_url, request_id__in=list(tally.request_ids))
            if not r.superseded
        }
        if len(rows) >= len(tally.request_ids):
            break
        await asyncio.sleep(0.2)
    missing = set(tally.request_ids) - set(rows)
    assert not missing, f"{len(missing)} requests have no log row: " + "; ".join(
        f"{rid} = {tally.described[rid]}" for rid in sorted(missing)[:3]
    )
    for rid, status in tally.request_ids.items():
        if status != 200:
            assert rows[rid].status == status, (rid, rows[rid].status, status)

    alarms = log_alarms(stack.gateway.log_text()[log_start:])
    assert not alarms, alarms[0]
