"""Where a request goes, through the real gateway and the official SDKs: aliases (an
organization's over the global one), agent tiers, aliases created at run time, and the routing
strategies switched live through the GraphQL admin API. What happens when the chosen model fails
is ``test_routing_fallback.py``; the shared stack and calls are ``routing_support.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import request_rows
from tests.e2e.routing_support import (
    ADMIN,
    AGENT,
    GLOBAL_ALIAS,
    ORG_ALIAS,
    SDKS,
    RoutingStack,
    ask,
    models_called,
    status_of,
)
from tests.e2e.routing_support import rstack as rstack
from tests.fakes.base import Reply

# -- aliases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("who", ["user", "app", "other_org"])
async def test_org_alias_beats_global_alias_for_its_own_org_only(
    rstack: RoutingStack, sdk: str, who: str
) -> None:
    rstack.reset()
    key = {
        "user": rstack.seeded.user_key,
        "app": rstack.seeded.app_key,
        "other_org": rstack.seeded.other_key,
    }[who]
    target = GLOBAL_ALIAS[1] if who == "other_org" else ORG_ALIAS[1]
    answer = ask(rstack, sdk, "team-model", key=key, stream=sdk == "anthropic")
    assert answer.text == "ok"
    assert answer.model == target
    provider, upstream_model = target.split("/", 1)
    assert models_called(rstack.openai) + models_called(rstack.anthropic) == [upstream_model]
    assert len(getattr(rstack, provider).requests) == 1
    row, superseded = await request_rows(rstack, answer.request_id, 1)
    assert (row.requested_model, row.actual_model, row.provider) == (
        "team-model",
        target,
        provider,
    )
    assert row.status == 200 and row.attempts == 1 and not superseded


# -- agent tiers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(
    ("model", "tier_header", "tier", "target"),
    [
        ("agent/coder", None, "normal", AGENT["normal_model"]),
        ("agent/coder:heavy", None, "heavy", AGENT["heavy_model"]),
        ("agent/coder", "max", "max", AGENT["max_model"]),
        # A suffix in the model name wins over the header.
        ("agent/coder:heavy", "max", "heavy", AGENT["heavy_model"]),
    ],
)
async def test_agent_tier_resolves_on_both_endpoints(
    rstack: RoutingStack, sdk: str, model: str, tier_header: str | None, tier: str, target: str
) -> None:
    rstack.reset()
    headers = {"x-switchboard-tier": tier_header} if tier_header else None
    answer = ask(rstack, sdk, model, headers=headers)
    assert answer.text == "ok" and answer.model == target
    assert models_called(rstack.openai) + models_called(rstack.anthropic) == [
        target.split("/", 1)[1]
    ]
    row, _ = await request_rows(rstack, answer.request_id, 1)
    assert (row.requested_model, row.actual_model) == (model, target)
    assert (row.agent_id, row.tier) == ("coder", tier)


@pytest.mark.parametrize("sdk", SDKS)
async def test_unknown_agent_and_tier_are_the_callers_mistake(
    rstack: RoutingStack, sdk: str
) -> None:
    rstack.reset()
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    with pytest.raises(errors) as info:
        ask(rstack, sdk, "agent/nobody")
    assert status_of(info.value) == 404
    with pytest.raises(errors) as info:
        ask(rstack, sdk, "agent/coder:huge")
    assert status_of(info.value) == 400
    assert not rstack.openai.requests and not rstack.anthropic.requests


# -- run-time changes through the GraphQL admin API -----------------------------------------------


def graphql(stack: RoutingStack, token: str, query: str, **variables: Any) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), body
    return dict(body["data"])


@pytest.fixture(scope="module")
def admin_token(rstack: RoutingStack) -> str:
    resp = httpx.post(
        f"{rstack.gateway.url}/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": ADMIN[0], "p": ADMIN[1]},
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["login"]["token"])


@pytest.fixture
def set_strategy(rstack: RoutingStack, admin_token: str) -> Iterator[Callable[[str], None]]:
    """Switch the routing strategy at run time; puts ``ordered`` back afterwards."""

    def switch(name: str) -> None:
        enum_name = name.upper().replace("-", "_")  # the GraphQL name of a stored strategy
        data = graphql(
            rstack,
            admin_token,
            "mutation($s: RoutingStrategy!) { setRoutingStrategy(strategy: $s) "
            "{ routingStrategy } }",
            s=enum_name,
        )
        assert data["setRoutingStrategy"]["routingStrategy"] == enum_name

    yield switch
    switch("ordered")


async def test_alias_created_at_run_time_applies_to_the_next_request(
    rstack: RoutingStack, admin_token: str
) -> None:
    rstack.reset()
    data = graphql(
        rstack,
        admin_token,
        'mutation($o: Int) { createModelAlias(input: {requestedModel: "live-alias", '
        'targetModel: "openai/gpt-live", organizationId: $o}) { id } }',
        o=rstack.seeded.org_id,
    )
    assert data["createModelAlias"]["id"]
    assert ask(rstack, "anthropic", "live-alias").model == "openai/gpt-live"
    with pytest.raises(openai.NotFoundError):  # an alias of another organization
        ask(rstack, "openai", "live-alias", key=rstack.seeded.other_key)
    assert models_called(rstack.openai) == ["gpt-live"]


# -- routing strategies ---------------------------------------------------------------------------


def walk(stack: RoutingStack, primary: str, *, reset: bool = True) -> list[str]:
    """The order the gateway tries ``primary``'s candidates, as seen at the upstream.

    Every candidate but the last refuses with 402 (a billing refusal: no same-model retry, on to
    the next candidate), so one request walks the whole ordered list once.
    """
    fake = stack.strat
    if reset:
        fake.reset()
    seen = len(fake.requests)
    fake.replies.extend([Reply(status=402), Reply(status=402), Reply(text="last")])
    answer = ask(stack, "openai", primary)
    order = models_called(fake)[seen:]
    assert answer.model == f"strat/{order[-1]}" and len(order) == 3
    return order


def answering(stack: RoutingStack, primary: str, delay: float = 0.0) -> str | None:
    stack.strat.reset()
    stack.strat.replies.append(Reply(delay=delay))
    answer = ask(stack, "openai", primary)
    assert len(stack.strat.requests) == 1
    return answer.model


async def test_ordered_and_cheapest_and_a_switch_applies_to_the_next_request(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("ordered")
    assert walk(rstack, "strat/cheap-a") == ["cheap-a", "cheap-b", "cheap-c"]
    set_strategy("cheapest")  # prices: b 0.5+0.5 < c 2+2 < a 5+5
    assert walk(rstack, "strat/cheap-a") == ["cheap-b", "cheap-c", "cheap-a"]
    assert answering(rstack, "strat/cheap-a") == "strat/cheap-b"
    set_strategy("ordered")
    assert answering(rstack, "strat/cheap-a") == "strat/cheap-a"
    set_strategy("cheapest")
    answer = ask(rstack, "anthropic", "strat/cheap-a")
    assert answer.model == "strat/cheap-b"
    row, _ = await request_rows(rstack, answer.request_id, 1)
    # Billed at the answering model's price: (10 + 5 tokens) x $0.5 per million.
    assert Decimal(row.cost_usd) == Decimal("0.0000075")


async def test_fastest_measures_first_then_orders_by_latency(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("fastest")
    latency = {"fast-a": 0.7, "fast-b": 0.0, "fast-c": 0.35}
    # Models never measured go first, in configured order, so each one gets measured.
    for name in ("fast-a", "fast-b", "fast-c"):
        assert answering(rstack, "strat/fast-a", latency[name]) == f"strat/{name}"
    assert walk(rstack, "strat/fast-a") == ["fast-b", "fast-c", "fast-a"]


async def test_least_busy_prefers_models_with_fewer_requests_in_flight(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("least-busy")
    fake = rstack.strat
    fake.reset()
    fake.replies.extend([Reply(text="held", delay=1.0) for _ in range(3)])
    with ThreadPoolExecutor(3) as pool:
        # In flight: busy-a once (nothing busy yet, so the primary), busy-b twice (direct).
        held = [pool.submit(ask, rstack, "openai", "strat/busy-a")]
        wait_until(lambda: len(fake.requests) == 1)
        held += [pool.submit(ask, rstack, "openai", "strat/busy-b") for _ in range(2)]
        wait_until(lambda: len(fake.requests) == 3)
        order = walk(rstack, "strat/busy-a", reset=False)
        answers = [f.result().model for f in held]
    assert order == ["busy-c", "busy-a", "busy-b"]
    assert answers == ["strat/busy-a", "strat/busy-b", "strat/busy-b"]
    # Nothing in flight any more: back to the configured order.
    assert walk(rstack, "strat/busy-a") == ["busy-a", "busy-b", "busy-c"]


async def test_round_robin_rotates_the_candidates(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("round-robin")
    got = [answering(rstack, "strat/rr-a") for _ in range(4)]
    assert got == ["strat/rr-a", "strat/rr-b", "strat/rr-c", "strat/rr-a"]
    assert walk(rstack, "strat/rr-a") == ["rr-b", "rr-c", "rr-a"]


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
