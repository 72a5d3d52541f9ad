"""What a log row tells an operator, through the real gateway and the official OpenAI SDK
(issue 17 items 1-3): the refusal behind a spend-cap 429 versus a provider's 429, every fallback
attempt with its own status, error and latency, reasoning tokens and the price the cost used;
``lastUsedAt`` written by the log writer; key rotation with and without a grace period.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.harness import Seeded, gql, orm, super_admin_token
from tests.fakes.base import Reply

MODEL = "openai/gpt-4o-mini"
WAIT_S = 30.0
ROWS = """query($f: GatewayLogFilter, $s: LogSort!) {
  gatewayLogs(filter: $f, sort: $s, first: 50) { nodes {
    id requestId status superseded actualModel provider errorType errorCode errorMessage
    upstreamStatus latencyMs inputTokens cachedTokens outputTokens reasoningTokens costUsd
    price { inputPerMtok outputPerMtok cachedPerMtok source }
    refusal { kind scope scopeId period limit used resetsAt summary }
  } }
  gatewayLogCount(filter: $f) { count exact } }"""
CREATE_KEY = """mutation($u: Int!, $n: String!) {
  createApiKey(input: {userId: $u, name: $n}) { secret apiKey { id prefix } } }"""
SET_CAP = """mutation($id: Int!) { setLimits(target: KEY, id: $id,
  input: {spendCapUsd: "0.000001", capPeriod: MONTHLY}) { spendCapUsd } }"""
KEY = """query($id: Int!) { apiKey(id: $id) { id prefix status expiresAt revokedAt lastUsedAt
  limits { requestsPerMinute spendCapUsd } spendThisPeriod { period costUsd requests } } }"""
ROTATE = """mutation($id: Int!, $g: Int) { rotateApiKey(id: $id, graceSeconds: $g) {
  secret apiKey { id prefix status limits { requestsPerMinute } }
  previous { id prefix status expiresAt revokedAt } } }"""
SET_RPM = """mutation($id: Int!) { setLimits(target: KEY, id: $id,
  input: {requestsPerMinute: 500}) { requestsPerMinute } }"""


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    # lastUsedAt at most once per second per key, so the test sees a second write soon.
    return {"SWITCHBOARD_KEY_LAST_USED_INTERVAL": "1"}


@pytest.fixture(scope="module")
def admin_box() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack_setup(admin_box: dict[str, str]) -> StackSetup:
    async def prepare(db: str, _seeded: Seeded) -> None:
        async with orm(db):
            admin_box["token"] = await super_admin_token("root@detail.test", "detail")

    return StackSetup(prepare=prepare)


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0)


def ask(stack: Stack, key: str, model: str = MODEL) -> Any:
    return client(stack, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20
    )


def rows_of(stack: Stack, token: str, f: dict[str, Any], n: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]] | None:
        got = gql(stack, token, ROWS, f=f, s="OLDEST")["gatewayLogs"]["nodes"]
        return got if len(got) >= n else None

    rows: list[dict[str, Any]] = wait_for(read, f"{n} log rows for {f}")
    return rows


def new_key(stack: Stack, token: str, name: str) -> tuple[str, int, str]:
    made = gql(stack, token, CREATE_KEY, u=stack.seeded.user_id, n=name)["createApiKey"]
    return made["secret"], made["apiKey"]["id"], made["apiKey"]["prefix"]


def test_spend_cap_429_is_told_from_a_provider_429(stack: Stack, admin_box: dict[str, str]) -> None:
    token = admin_box["token"]
    secret, key_id, prefix = new_key(stack, token, "capped")
    gql(stack, token, SET_CAP, id=key_id)
    with pytest.raises(openai.RateLimitError) as capped:
        ask(stack, secret)
    assert "Spend cap reached" in str(capped.value)
    assert stack.openai.requests == [], "a refused request never reaches the provider"

    # A provider's 429 after a fallback: the primary fails with 500 (tried twice), the chain's
    # next model answers 429 (twice): four attempts, the last one the request's own row.
    primary = "openai/detail-primary"
    gql(
        stack,
        token,
        'mutation($p: String!) { setFallbackChain(primaryModel: $p, chain: ["openai/gpt-4o"])'
        " { primaryModel } }",
        p=primary,
    )
    stack.openai.replies.extend(
        [Reply(status=500, error_message="boom")] * 2
        + [Reply(status=429, error_message="slow down")] * 2
    )
    with pytest.raises(openai.RateLimitError) as provider:
        ask(stack, stack.seeded.user_key, primary)
    request_id = provider.value.response.headers["x-request-id"]

    [cap_row] = rows_of(stack, token, {"keyPrefix": prefix}, 1)
    assert cap_row["status"] == 429 and cap_row["upstreamStatus"] is None
    assert cap_row["errorCode"] == "insufficient_quota"
    refusal = cap_row["refusal"]
    assert refusal["kind"] == "SPEND_CAP" and refusal["scope"] == "key"
    assert refusal["scopeId"] == key_id and refusal["period"] == "monthly"
    assert Decimal(refusal["limit"]) == Decimal("0.000001") and refusal["resetsAt"]
    assert refusal["summary"].startswith("Spend cap: the monthly cap of key")

    attempts = rows_of(stack, token, {"requestId": request_id, "includeSuperseded": True}, 4)
    assert [(r["status"], r["superseded"], r["upstreamStatus"]) for r in attempts] == [
        (502, True, 500),
        (502, True, 500),
        (429, True, 429),
        (429, False, 429),
    ]
    assert [r["actualModel"] for r in attempts] == [primary] * 2 + ["openai/gpt-4o"] * 2
    assert all(r["refusal"] is None for r in attempts)
    assert attempts[-1]["errorCode"] == "upstream_rate_limited"
    assert "slow down" in attempts[-1]["errorMessage"] and "boom" in attempts[0]["errorMessage"]
    # Each attempt's own latency: no attempt took as long as the whole request.
    assert all(0 < r["latencyMs"] < attempts[-1]["latencyMs"] for r in attempts[:-1])
    # Without includeSuperseded the request is one row; the count agrees with the list.
    only = gql(stack, token, ROWS, f={"requestId": request_id}, s="NEWEST")
    assert len(only["gatewayLogs"]["nodes"]) == 1
    assert only["gatewayLogCount"] == {"count": 1, "exact": True}


def test_tokens_and_the_price_used(stack: Stack, admin_box: dict[str, str]) -> None:
    token = admin_box["token"]
    stack.openai.replies.append(
        Reply(
            text="thought about it",
            input_tokens=1000,
            cached_tokens=400,
            output_tokens=50,
            reasoning_tokens=30,
        )
    )
    answer = ask(stack, stack.seeded.user_key)
    request_id = answer._request_id or ""
    [row] = rows_of(stack, token, {"search": request_id[:20]}, 1)
    assert row["requestId"] == request_id
    assert (row["inputTokens"], row["cachedTokens"], row["outputTokens"]) == (1000, 400, 50)
    assert row["reasoningTokens"] == 30
    price = row["price"]
    assert price["source"] == "price-table"
    rate_in, rate_out = Decimal(price["inputPerMtok"]), Decimal(price["outputPerMtok"])
    rate_cached = Decimal(price["cachedPerMtok"] or price["inputPerMtok"])
    expected = (600 * rate_in + 400 * rate_cached + 50 * rate_out) / 1_000_000
    assert Decimal(row["costUsd"]) == expected.quantize(Decimal("0.00000001"))


def test_last_used_and_spend_this_period(stack: Stack, admin_box: dict[str, str]) -> None:
    token = admin_box["token"]
    secret, key_id, _ = new_key(stack, token, "tracked")
    assert gql(stack, token, KEY, id=key_id)["apiKey"]["lastUsedAt"] is None
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for _ in range(3):
        ask(stack, secret)

    def used() -> dict[str, Any] | None:
        key = gql(stack, token, KEY, id=key_id)["apiKey"]
        return key if key["lastUsedAt"] and key["spendThisPeriod"]["requests"] == 3 else None

    key = wait_for(used, "lastUsedAt and 3 requests this period")
    first = dt.datetime.fromisoformat(key["lastUsedAt"])
    assert first >= before
    assert key["spendThisPeriod"]["period"] == "MONTHLY"
    assert Decimal(key["spendThisPeriod"]["costUsd"]) > 0
    # A later use reaches the row too (at most one write per key per second here).
    time.sleep(1.1)  # lets the next request's time differ from the first write's
    ask(stack, secret)
    wait_for(
        lambda: (
            dt.datetime.fromisoformat(gql(stack, token, KEY, id=key_id)["apiKey"]["lastUsedAt"])
            > first
        ),
        "a newer lastUsedAt",
    )


def test_rotation_with_and_without_grace(stack: Stack, admin_box: dict[str, str]) -> None:
    token = admin_box["token"]
    secret, key_id, _ = new_key(stack, token, "rotating")
    gql(stack, token, SET_RPM, id=key_id)
    rotated = gql(stack, token, ROTATE, id=key_id, g=None)["rotateApiKey"]
    assert rotated["previous"]["status"] == "REVOKED" and rotated["previous"]["revokedAt"]
    assert rotated["apiKey"]["status"] == "ACTIVE" and rotated["apiKey"]["id"] != key_id
    assert rotated["apiKey"]["limits"]["requestsPerMinute"] == 500
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        ask(stack, secret)
    ask(stack, rotated["secret"])

    # With a grace period the old key keeps working until it ends, then is refused.
    again = gql(stack, token, ROTATE, id=rotated["apiKey"]["id"], g=3)["rotateApiKey"]
    ends = dt.datetime.fromisoformat(again["previous"]["expiresAt"])
    assert again["previous"]["status"] == "ACTIVE" and again["previous"]["revokedAt"] is None
    ask(stack, rotated["secret"])
    ask(stack, again["secret"])

    def refused() -> bool:
        try:
            ask(stack, rotated["secret"])
        except openai.AuthenticationError as err:
            assert "expired" in str(err)
            return True
        return False

    wait_for(refused, "the old key to be refused after its grace period", timeout=15)
    assert dt.datetime.now(dt.UTC) >= ends - dt.timedelta(milliseconds=50)
    ask(stack, again["secret"])
    # Rotating a retired key is refused in words.
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": ROTATE, "variables": {"id": key_id, "g": None}},
        headers={"authorization": f"Bearer {token}"},
    ).json()
    assert "only an active key can be rotated" in resp["errors"][0]["message"]
