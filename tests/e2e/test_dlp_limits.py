"""No DLP scan can stall the gateway (issue 13 item 4), through the real gateway process.

- An org admin's custom rule that needs backtracking is refused by the admin API with a GraphQL
  error saying why; ``(x+x+)+y``, exponential with the old engine, is accepted and harmless.
- A member's 6 MB body of digits and punctuation (inside the 8 MiB limit) is scanned off the
  event loop: ``/healthz`` completes while the scan burns CPU in a scan process (a child of the
  gateway, with its own GIL), before the big request is answered. With the time bound (2 s
  here) the request fails closed: 503 ``dlp_timeout`` in the caller's protocol, and nothing
  reaches the provider.
- Scans that run in the pool (large bodies, policies with custom rules) redact and restore as
  inline ones do.
- A scan process killed mid-scan refuses its request (503 ``dlp_unavailable``, nothing sent
  upstream) and the gateway goes on scanning in a new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.dlp_support import (
    ALL,
    EMPLOYEE,
    MODELS,
    ORG_CUSTOM,
    DlpStack,
    assert_no_raw,
    dlp_stack,
    strings,
)
from tests.e2e.harness import orm
from tests.fakes.base import Reply

SCAN_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DlpStack]:
    overrides = {"SWITCHBOARD_DLP_SCAN_TIMEOUT": str(SCAN_TIMEOUT_S)}
    async with dlp_stack(tmp_path_factory.mktemp("dlp-limits"), overrides) as s:
        yield s


@pytest.fixture(scope="module")
async def admin_token(stack: DlpStack) -> str:
    """A session of the protected organization's admin (Alice, made org_admin)."""
    from backend.data.models.tenancy import User
    from backend.security.sessions import create_session

    async with orm(stack.database_url):
        user = await User.get(id=stack.seeded.user_id)
        user.role = "org_admin"
        await user.save()
        token, _ = await create_session(user, now=dt.datetime.now(dt.UTC))
    return token


async def test_no_scan_process_runs_until_a_large_body_needs_one(stack: DlpStack) -> None:
    """First in this module, on a fresh gateway: an idle scan process cost every gateway ~58 MB
    of RSS (issue 19's idle target), so the first large scan starts it, not the start-up."""
    assert stack.gateway.proc is not None
    pid = stack.gateway.proc.pid
    assert scan_processes_cpu_s(pid) == {}, "a scan process runs before any scan"
    stack.reset()
    email = ALL[0]
    filler = "The quarterly report is attached for review. " * 2500  # ~110 KB: a process scan
    client = openai.AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes["default"].key,
        max_retries=0,
        timeout=60,
    )
    for content in (f"mail {email.value}.", f"mail {email.value}. {filler}"):
        stack.openai.replies.append(Reply(text=f"Sent to {email.placeholder}"))
        resp = await client.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": content}]
        )
        assert resp.choices[0].message.content == f"Sent to {email.value}"
        assert_no_raw(stack.last_chat("openai").body.decode(), (email,), "the upstream request")
        if content.endswith("."):
            assert scan_processes_cpu_s(pid) == {}, "a small (inline) scan started a process"
    assert scan_processes_cpu_s(pid), "the large scan ran without a scan process"


POLICY = (
    "mutation($t: Int!, $i: DlpPolicyInput!) { updateDlpPolicy(scope: ORG, targetId: $t, "
    "input: $i) { customRules { name pattern } } }"
)


async def set_custom_rules(
    stack: DlpStack, token: str, rules: list[dict[str, str]]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=60) as client:
        resp = await client.post(
            "/graphql",
            json={
                "query": POLICY,
                "variables": {"t": stack.seeded.org_id, "i": {"customRules": rules}},
            },
            headers={"authorization": f"Bearer {token}"},
        )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(EMP)-[0-9]+-\1", "backreferences are not supported"),
        (r"(?<=acct:)[0-9]{8}", "lookahead and lookbehind are not supported"),
        (r"EMP-(?![0-9]{6}$)", "lookahead and lookbehind are not supported"),
    ],
)
async def test_a_custom_rule_that_needs_backtracking_is_refused_saying_why(
    stack: DlpStack, admin_token: str, pattern: str, reason: str
) -> None:
    body = await set_custom_rules(
        stack, admin_token, [ORG_CUSTOM, {"name": "Risky", "pattern": pattern}]
    )
    [err] = body["errors"]
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    assert err["extensions"]["field"] == "customRules[1].pattern"
    assert reason in err["message"] and "RE2" in err["message"], err["message"]
    assert "exponential time" in err["message"]
    snapshot = await set_custom_rules(stack, admin_token, [ORG_CUSTOM])  # unchanged, still valid
    assert snapshot["data"]["updateDlpPolicy"]["customRules"] == [ORG_CUSTOM]


async def test_a_pathological_custom_rule_is_accepted_and_harmless(
    stack: DlpStack, admin_token: str
) -> None:
    """With the backtracking engine, 25 characters took 2.7 s and each one more doubled it;
    64 would not have finished at all (the SDK's 60 s timeout would fail this test)."""
    rules = [ORG_CUSTOM, {"name": "Pathological", "pattern": "(x+x+)+y"}]
    body = await set_custom_rules(stack, admin_token, rules)
    assert body["data"]["updateDlpPolicy"]["customRules"] == rules, body
    try:
        stack.reset()
        email = ALL[0]
        stack.openai.replies.append(Reply(text=f"Sent to {email.placeholder}"))
        client = openai.AsyncOpenAI(
            base_url=stack.gateway.openai_base_url,
            api_key=stack.scopes["org"].key,
            max_retries=0,
            timeout=60,
        )
        resp = await client.chat.completions.create(
            model=MODELS["openai"],
            messages=[{"role": "user", "content": "x" * 64 + f" mail {email.value} xxy"}],
        )
        assert resp.choices[0].message.content == f"Sent to {email.value}"
        sent = stack.last_chat("openai").json["messages"][0]["content"]
        assert sent == "x" * 64 + f" mail {email.placeholder} [PATHOLOGICAL_1]"
    finally:
        await set_custom_rules(stack, admin_token, [ORG_CUSTOM])


def adversarial_body(size: int) -> str:
    """Digits and punctuation in the shapes the card, phone and IBAN detectors work hardest on."""
    unit = "4111 1111 1111 1111 212 555 1234 DE89 1.2.3.4 +1 (2) 3-4 "
    return (unit * (size // len(unit) + 1))[:size]


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def scan_processes_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each child process of the gateway (its DLP scan processes)."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = [int(c) for c in f.read().split()]
            for child in children:
                out[child] = _cpu_s(child)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread or a child that ended
    return out


async def busy_scan_process(stack: DlpStack, big: asyncio.Task[Any]) -> int:
    """The gateway's child process that burns CPU while ``big`` is scanned (not its loop)."""
    assert stack.gateway.proc is not None
    pid = stack.gateway.proc.pid
    before = scan_processes_cpu_s(pid)
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        now = scan_processes_cpu_s(pid)
        for child, cpu in now.items():
            if cpu - before.get(child, 0.0) >= 0.3:
                return child
        assert not big.done(), "the big request ended before any scan ran in a scan process"
        assert asyncio.get_running_loop().time() < deadline, "the scan never started"
        await asyncio.sleep(0.02)


async def probe_while_scanning(stack: DlpStack, big: asyncio.Task[Any]) -> None:
    """Wait until the scan has burned CPU in a scan process, then ask /healthz: it must be
    answered while the big request is still being scanned."""
    await busy_scan_process(stack, big)
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=60) as client:
        health = await client.get("/healthz")
    assert health.status_code == 200
    assert not big.done(), "/healthz was answered only after the big request"


async def test_a_6mb_adversarial_body_does_not_stall_the_gateway_and_fails_closed(
    stack: DlpStack,
) -> None:
    stack.reset()
    text = adversarial_body(6_000_000)
    client = openai.AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes["default"].key,
        max_retries=0,
        timeout=120,
    )
    big = asyncio.create_task(
        client.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": text}]
        )
    )
    await probe_while_scanning(stack, big)
    with pytest.raises(openai.APIStatusError) as info:
        await big
    err = info.value
    assert err.status_code == 503
    body = err.response.json()
    assert body["error"]["code"] == "dlp_timeout"
    assert f"DLP could not scan it within {SCAN_TIMEOUT_S:g} s" in body["error"]["message"]
    assert not [r for r in stack.openai.requests if "/chat/completions" in r.path]


async def test_the_time_bound_fails_closed_in_the_anthropic_protocol_too(stack: DlpStack) -> None:
    stack.reset()
    client = anthropic.AsyncAnthropic(
        base_url=stack.gateway.url, api_key=stack.scopes["default"].key, max_retries=0, timeout=120
    )
    big = asyncio.create_task(
        client.messages.create(
            model=MODELS["anthropic"],
            max_tokens=100,
            messages=[{"role": "user", "content": adversarial_body(6_000_000)}],
        )
    )
    await probe_while_scanning(stack, big)
    with pytest.raises(anthropic.APIStatusError) as info:
        await big
    assert info.value.status_code == 503
    body = info.value.response.json()
    assert body["type"] == "error" and "DLP could not scan it" in body["error"]["message"]
    assert not [r for r in stack.anthropic.requests if "/v1/messages" in r.path]


@pytest.mark.parametrize("scope", ["default", "org"])
async def test_scans_in_the_pool_redact_and_restore(stack: DlpStack, scope: str) -> None:
    """``default`` (built-in rules) goes to the pool by size; ``org`` has a custom rule, so
    even its small requests do."""
    stack.reset()
    values = [s for s in ALL if s.label in stack.scopes[scope].protected][:3]
    if scope == "org":
        values.append(EMPLOYEE)
    said = "; ".join(f"{s.label} {s.value}" for s in values)
    filler = "The quarterly report is attached for review. " * 2500  # ~110 KB
    content = f"{said}. {filler}" if scope == "default" else said
    reply = " ".join(s.placeholder for s in values)
    stack.openai.replies.append(Reply(text=reply))
    client = openai.AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes[scope].key,
        max_retries=0,
        timeout=60,
    )
    resp = await client.chat.completions.create(
        model=MODELS["openai"], messages=[{"role": "user", "content": content}]
    )
    assert resp.choices[0].message.content == " ".join(s.value for s in values)
    sent = stack.last_chat("openai")
    assert_no_raw(sent.body.decode(), tuple(values), "the upstream request")
    assert any(
        "; ".join(f"{s.label} {s.placeholder}" for s in values) in leaf
        for leaf in strings(sent.json)
    )


async def test_a_killed_scan_process_fails_its_request_closed_and_the_gateway_goes_on(
    stack: DlpStack,
) -> None:
    stack.reset()
    client = openai.AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes["default"].key,
        max_retries=0,
        timeout=120,
    )
    big = asyncio.create_task(
        client.chat.completions.create(
            model=MODELS["openai"],
            messages=[{"role": "user", "content": adversarial_body(6_000_000)}],
        )
    )
    os.kill(await busy_scan_process(stack, big), signal.SIGKILL)
    with pytest.raises(openai.APIStatusError) as info:
        await big
    assert info.value.status_code == 503
    error = info.value.response.json()["error"]
    assert error["code"] == "dlp_unavailable", error
    assert "the DLP scanner stopped" in error["message"]
    assert "Nothing was sent to the provider" in error["message"]
    assert not [r for r in stack.openai.requests if "/chat/completions" in r.path]
    # A large body right after is scanned (in a new process) and served.
    stack.reset()
    email = ALL[0]
    stack.openai.replies.append(Reply(text=f"Sent to {email.placeholder}"))
    filler = "The quarterly report is attached for review. " * 2500  # ~110 KB
    resp = await client.chat.completions.create(
        model=MODELS["openai"],
        messages=[{"role": "user", "content": f"mail {email.value}. {filler}"}],
    )
    assert resp.choices[0].message.content == f"Sent to {email.value}"
    assert_no_raw(stack.last_chat("openai").body.decode(), (email,), "the upstream request")
