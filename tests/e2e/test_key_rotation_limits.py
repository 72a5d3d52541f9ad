"""Rotating a key does not reset its counters, through the real gateway, GraphQL's rotateApiKey
and the official OpenAI SDK: the new key continues the old key's spend-cap counter in the
current period and its rate-limit window (and, during a grace period, the old key shares them).

Prices are pinned (input free, $0.01 per output token) and every answer reports 10 output
tokens for ``max_tokens=10``, so each request reserves and costs exactly $0.10.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from backend.data.models.routing import ModelPrice
from tests.e2e.caps_support import skip_near_period_edge
from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.harness import Seeded, gql, orm, super_admin_token
from tests.fakes.base import Reply

MODEL = "openai/gpt-4o-mini"
CAP = Decimal("0.50")
CREATE_KEY = """mutation($u: Int!, $n: String!) {
  createApiKey(input: {userId: $u, name: $n}) { secret apiKey { id prefix } } }"""
SET_CAP = """mutation($id: Int!, $cap: Decimal!) { setLimits(target: KEY, id: $id,
  input: {spendCapUsd: $cap, capPeriod: MONTHLY}) { spendCapUsd } }"""
SET_RPM = """mutation($id: Int!, $rpm: Int!) { setLimits(target: KEY, id: $id,
  input: {requestsPerMinute: $rpm}) { requestsPerMinute } }"""
SPEND = """query($id: Int!) { apiKey(id: $id) { spendThisPeriod { period costUsd requests } } }"""
ROTATE = """mutation($id: Int!, $g: Int) { rotateApiKey(id: $id, graceSeconds: $g) {
  secret apiKey { id prefix limits { spendCapUsd requestsPerMinute } }
  previous { id status } } }"""


@pytest.fixture(scope="module")
def admin_box() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack_setup(admin_box: dict[str, str]) -> StackSetup:
    async def prepare(db: str, _seeded: Seeded) -> None:
        async with orm(db):
            await ModelPrice.create(model=MODEL, input_per_mtok=0, output_per_mtok=10_000)
            admin_box["token"] = await super_admin_token("root@rotate.test", "rotate")

    return StackSetup(prepare=prepare)


def new_key(stack: Stack, token: str, name: str) -> tuple[str, int]:
    made = gql(stack, token, CREATE_KEY, u=stack.seeded.user_id, n=name)["createApiKey"]
    return made["secret"], made["apiKey"]["id"]


def ask(stack: Stack, key: str) -> Any:
    stack.openai.replies.append(Reply(text="ok", input_tokens=3, output_tokens=10))
    sdk = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0, timeout=60
    )
    return sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10
    )


def wait_for_spend(stack: Stack, token: str, key_id: int, requests: int) -> dict[str, Any]:
    """The key's spendThisPeriod once the log writer recorded ``requests`` requests."""
    deadline = time.monotonic() + 30
    while True:
        spend: dict[str, Any] = gql(stack, token, SPEND, id=key_id)["apiKey"]["spendThisPeriod"]
        if spend["requests"] >= requests or time.monotonic() > deadline:
            return spend
        time.sleep(0.1)


def refused(stack: Stack, key: str) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as err:
        ask(stack, key)
    stack.openai.replies.clear()  # the refused request never took its scripted answer
    return err.value


def test_rotated_key_continues_the_spend_cap(stack: Stack, admin_box: dict[str, str]) -> None:
    skip_near_period_edge()
    token = admin_box["token"]
    secret, key_id = new_key(stack, token, "capped")
    gql(stack, token, SET_CAP, id=key_id, cap=str(CAP))
    for _ in range(4):  # $0.40 of $0.50
        ask(stack, secret)

    rotated = gql(stack, token, ROTATE, id=key_id, g=None)["rotateApiKey"]
    assert rotated["previous"]["status"] == "REVOKED"
    assert Decimal(rotated["apiKey"]["limits"]["spendCapUsd"]) == CAP
    new_secret, new_prefix = rotated["secret"], rotated["apiKey"]["prefix"]
    ask(stack, new_secret)  # $0.50: the cap is reached, not passed
    err = refused(stack, new_secret)
    assert err.code == "insufficient_quota"
    assert err.response.headers.get("x-should-retry") == "false"
    message = str(err)
    assert "Spend cap reached" in message and f"key {new_prefix}" in message
    assert "$0.50 of $0.50 spent or reserved" in message, message

    # The dashboard shows what the cap counts: the whole chain's spend, on old and new key
    # (six requests: five answered, and the refusal, which the log keeps too).
    for shown in (rotated["apiKey"]["id"], key_id):
        spend = wait_for_spend(stack, token, shown, 6)
        assert spend["period"] == "MONTHLY" and spend["requests"] == 6, spend
        assert Decimal(spend["costUsd"]) == CAP

    # Rotating again with a grace period: the next key and the old one (still active) share
    # the same counter, so neither can spend more.
    again = gql(stack, token, ROTATE, id=rotated["apiKey"]["id"], g=600)["rotateApiKey"]
    assert again["previous"]["status"] == "ACTIVE"
    for key in (again["secret"], new_secret):
        assert refused(stack, key).code == "insufficient_quota"


def test_rotated_key_continues_the_rate_limit(stack: Stack, admin_box: dict[str, str]) -> None:
    token = admin_box["token"]
    secret, key_id = new_key(stack, token, "limited")
    gql(stack, token, SET_RPM, id=key_id, rpm=3)
    for _ in range(3):
        ask(stack, secret)
    rotated = gql(stack, token, ROTATE, id=key_id, g=600)["rotateApiKey"]
    assert rotated["apiKey"]["limits"]["requestsPerMinute"] == 3
    # The window holds the old key's three requests for a minute: both keys are refused.
    for key in (rotated["secret"], secret):
        err = refused(stack, key)
        assert err.code == "rate_limit_exceeded"
        assert "3 used in the last minute" in str(err), str(err)
