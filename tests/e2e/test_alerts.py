"""Alerts through real gateway processes (issue 18 item 4, must-show 3).

A local webhook receiver (generic JSON and Slack-compatible paths) and a local SMTP server
(aiosmtpd) are started by the tests; channels and rules are set through GraphQL.

- "Send test" reaches each channel; webhook bodies carry a valid HMAC-SHA256 signature.
- A user's weekly cap of $1.00 crossed at 50, 80 and 100 % (requests through the official SDK):
  each threshold arrives exactly once on each channel, although the condition holds on every
  later evaluation (a rule added afterwards arriving proves later evaluations ran). With
  PostgreSQL + Redis two gateway instances evaluate the same rules.
- A provider failing opens its circuit and crosses an error-rate bound: both alert once; the
  circuit alert's receiver is down at first, and the delivery is retried until it arrives.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from backend.data.models.routing import ModelPrice
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.alert_receivers import SmtpSink, WebhookReceiver
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, graphql, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

START_TIMEOUT_S = 120.0
WAIT_S = 40.0
ADMIN = ("alerts-admin@switchboard.test", "alerts-password-1234")
MEMBER = ("alerts-member@acme.test", "member-password-1234")
MODEL = "openai/gpt-4o-mini"
#: $0.01 per output token, input free: max_tokens=10 reserves $0.10.
OUT_PER_MTOK = Decimal(10_000)
ON_PG_REDIS = bool(redis_url()) and os.environ.get("DATABASE_URL", "").startswith(
    ("postgres://", "postgresql://")
)

SET_CHANNEL = """
mutation($n: String!, $i: AlertChannelInput!) {
  setAlertChannel(name: $n, input: $i) {
    name kind url secretSet secretLast4 smtpHost smtpPort smtpSecurity sender recipients enabled
  }
}"""
SET_RULE = """
mutation($n: String!, $i: AlertRuleInput!) {
  setAlertRule(name: $n, input: $i) {
    name kind channels thresholds scopeKind provider errorRatePercent minRequests enabled
  }
}"""
SEND_TEST = """
mutation($n: String!) {
  sendTestAlert(name: $n) { id kind status attempts lastError channel sentAt }
}"""
DELIVERIES = """
{ alertDeliveries(first: 200) {
    id kind severity title text channel ruleId status attempts lastError nextAttemptAt sentAt
} }"""


@dataclass
class AlertStack:
    gateways: list[GatewayProc]
    db: str
    seeded: Seeded
    openai: OpenAIFake
    anthropic: AnthropicFake
    hooks: WebhookReceiver
    smtp: SmtpSink
    #: A receiver started only once a delivery to it has failed.
    late: WebhookReceiver
    token: str = ""
    member_token: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> GatewayProc:
        return self.gateways[0]


@pytest.fixture(scope="module")
async def astack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AlertStack]:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.models.tenancy import User
    from backend.security.passwords import hash_password

    tmp = tmp_path_factory.mktemp("alerts")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db, weekly_cap=Decimal("1.00"))
    async with orm(db):
        await bootstrap_super_admin(*ADMIN)
        await User.create(
            name="member",
            email=MEMBER[0],
            role="member",
            organization_id=seeded.org_id,
            password_hash=hash_password(MEMBER[1]),
        )
        await ModelPrice.create(model=MODEL, input_per_mtok=0, output_per_mtok=OUT_PER_MTOK)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    hooks, smtp, late = WebhookReceiver().start(), SmtpSink().start(), WebhookReceiver()
    env = gateway_env(db, tmp, fakes) | {
        "SWITCHBOARD_ALERT_INTERVAL": "0.3",
        # Two failed attempts (one request and its same-model retry) open a circuit.
        "SWITCHBOARD_CIRCUIT_THRESHOLD": "2",
        "SWITCHBOARD_CIRCUIT_COOLDOWN": "120",
    }
    gateways = [GatewayProc(dict(env), tmp / "gateway.log")]
    if ON_PG_REDIS:
        gateways.append(GatewayProc(dict(env), tmp / "gateway-2.log"))
    try:
        await asyncio.gather(*[asyncio.to_thread(g.start, START_TIMEOUT_S) for g in gateways])
        stack = AlertStack(
            gateways, db, seeded, fakes["openai"], fakes["anthropic"], hooks, smtp, late
        )
        stack.token = login(stack, *ADMIN)
        stack.member_token = login(stack, *MEMBER)
        yield stack
    finally:
        await asyncio.gather(*[asyncio.to_thread(g.stop) for g in gateways])
        for fake in fakes.values():
            fake.stop()
        hooks.stop()
        smtp.stop()
        late.stop()
        await drop_database(db)


# -- helpers ----------------------------------------------------------------------------------


def gql(stack: AlertStack, query: str, token: str | None, **variables: Any) -> dict[str, Any]:
    return graphql(stack.gateway.url, token, query, variables, stack.transcript)


def ok(stack: AlertStack, query: str, **variables: Any) -> Any:
    body = gql(stack, query, stack.token, **variables)
    assert not body.get("errors"), body
    return body["data"]


def login(stack: AlertStack, email: str, password: str) -> str:
    body = gql(
        stack,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        None,
        e=email,
        p=password,
    )
    assert not body.get("errors"), body
    return str(body["data"]["login"]["token"])


def code_of(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def deliveries(stack: AlertStack) -> list[dict[str, Any]]:
    return list(ok(stack, DELIVERIES)["alertDeliveries"])


def secret(stack: AlertStack, channel: str) -> str:
    stack.secrets[channel] = f"whsec-{channel}-{uuid.uuid4().hex}"
    return stack.secrets[channel]


def spend(stack: AlertStack, output_tokens: int) -> None:
    """One request through the SDK that costs output_tokens x $0.01 against the user's cap."""
    stack.openai.replies.append(Reply(text="spent", input_tokens=7, output_tokens=output_tokens))
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    resp = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "spend"}], max_tokens=10
    )
    assert resp.choices[0].message.content == "spent"


# -- tests ------------------------------------------------------------------------------------


async def test_channels_and_send_test(astack: AlertStack) -> None:
    s = astack
    hook = ok(
        s,
        SET_CHANNEL,
        n="hook",
        i={"kind": "WEBHOOK", "url": f"{s.hooks.url}/hook", "secret": secret(s, "hook")},
    )["setAlertChannel"]
    assert hook["secretSet"] and hook["secretLast4"] == s.secrets["hook"][-4:]
    ok(
        s,
        SET_CHANNEL,
        n="chat",
        i={"kind": "SLACK", "url": f"{s.hooks.url}/slack", "secret": secret(s, "chat")},
    )
    mail = ok(
        s,
        SET_CHANNEL,
        n="mail",
        i={
            "kind": "EMAIL",
            "smtpHost": "127.0.0.1",
            "smtpPort": s.smtp.port,
            "sender": "gateway@switchboard.test",
            "recipients": ["ops@acme.test", "finance@acme.test"],
        },
    )["setAlertChannel"]
    assert mail["smtpSecurity"] is None and mail["recipients"] == [
        "ops@acme.test",
        "finance@acme.test",
    ]
    # Refusals: unsigned webhook, unknown channel in a rule, a member.
    body = gql(s, SET_CHANNEL, s.token, n="unsigned", i={"kind": "WEBHOOK", "url": s.hooks.url})
    assert code_of(body) == "BAD_USER_INPUT" and "secret" in body["errors"][0]["message"]
    body = gql(
        s, SET_RULE, s.token, n="r", i={"kind": "CAP", "channels": ["nope"], "thresholds": [50]}
    )
    assert code_of(body) == "BAD_USER_INPUT" and "nope" in body["errors"][0]["message"]
    body = gql(s, SET_RULE, s.token, n="r", i={"kind": "CAP", "channels": ["hook"]})
    assert code_of(body) == "BAD_USER_INPUT" and "thresholds" in body["errors"][0]["message"]
    assert code_of(gql(s, DELIVERIES, s.member_token)) == "FORBIDDEN"
    assert code_of(gql(s, SEND_TEST, s.member_token, n="hook")) == "FORBIDDEN"

    for name in ("hook", "chat", "mail"):
        sent = ok(s, SEND_TEST, n=name)["sendTestAlert"]
        assert (sent["status"], sent["attempts"], sent["channel"]) == ("SENT", 1, name), sent
    [generic] = s.hooks.of("/hook", "test")
    assert generic.signed_by(s.secrets["hook"]) and not generic.signed_by(s.secrets["chat"])
    assert generic.json["title"] == "Test alert for channel hook" and generic.json["test"]
    [slack] = s.hooks.of("/slack")
    assert slack.signed_by(s.secrets["chat"])
    assert "Test alert for channel chat" in slack.json["text"]
    assert slack.json["blocks"][0]["type"] == "header"
    assert s.smtp.subjects() == ["[Switchboard] Test alert for channel mail"]
    assert s.smtp.recipients == [["ops@acme.test", "finance@acme.test"]]


async def test_cap_thresholds_fire_once_per_period(astack: AlertStack) -> None:
    s = astack
    ok(
        s,
        SET_RULE,
        n="caps",
        i={
            "kind": "CAP",
            "scopeKind": "USER",
            "thresholds": [100, 50, 80],
            "channels": ["hook", "chat", "mail"],
        },
    )

    def cap_hooks() -> list[int]:
        return sorted(h.json["details"]["threshold_percent"] for h in s.hooks.of("/hook", "cap"))

    def cap_mails() -> list[str]:
        return [x for x in s.smtp.subjects() if "Spend reached" in x]

    for tokens, reached in ((50, [50]), (30, [50, 80]), (20, [50, 80, 100])):
        spend(s, tokens)
        await until(f"{reached} on the webhook", lambda r=reached: cap_hooks() == r)  # type: ignore[misc]
        await until(f"{reached} by email", lambda r=reached: len(cap_mails()) == len(r))  # type: ignore[misc]
    # Still over every threshold on each later evaluation: a rule made now arriving proves
    # later evaluations ran (on every instance's timer), and nothing was sent twice.
    ok(
        s,
        SET_RULE,
        n="caps-later",
        i={"kind": "CAP", "scopeKind": "USER", "thresholds": [50], "channels": ["hook"]},
    )
    await until("caps-later", lambda: len(s.hooks.of("/hook", "cap")) == 4)
    assert cap_hooks() == [50, 50, 80, 100]
    reached = sorted(int(x.split("reached ")[1].split("%")[0]) for x in cap_mails())
    assert reached == [50, 80, 100]
    assert all("of the weekly cap of user alice-" in x for x in cap_mails())
    assert len([h for h in s.hooks.of("/slack") if "Spend reached" in h.json["text"]]) == 3
    first = next(
        h for h in s.hooks.of("/hook", "cap") if h.json["details"]["threshold_percent"] == 100
    )
    assert first.signed_by(s.secrets["hook"])
    assert first.json["severity"] == "critical" and first.json["details"]["scope"] == "user"
    assert first.json["details"]["spent_usd"].startswith("1.00")
    # Recorded: one row per threshold and channel, all sent.
    rows = [d for d in deliveries(s) if d["kind"] == "cap"]
    assert len(rows) == 10 and {d["status"] for d in rows} == {"SENT"}


async def test_circuit_and_error_rate_alert_once_retried_after_receiver_down(
    astack: AlertStack,
) -> None:
    s = astack
    ok(
        s,
        SET_CHANNEL,
        n="late",
        i={"kind": "WEBHOOK", "url": f"{s.late.url}/late", "secret": secret(s, "late")},
    )
    ok(
        s,
        SET_RULE,
        n="breakers",
        i={"kind": "CIRCUIT", "provider": "anthropic", "channels": ["late"]},
    )
    ok(
        s,
        SET_RULE,
        n="errors",
        i={
            "kind": "ERROR_RATE",
            "provider": "anthropic",
            "errorRatePercent": 50,
            "minRequests": 2,
            "channels": ["hook"],
        },
    )
    s.anthropic.replies.extend(Reply(status=500, error_message="overloaded") for _ in range(4))
    client = anthropic.Anthropic(base_url=s.gateway.url, api_key=s.seeded.app_key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
        )

    def circuit_rows() -> list[dict[str, Any]]:
        return [d for d in deliveries(s) if d["kind"] == "circuit"]

    # The receiver is down: the first attempt failed and a retry is scheduled.
    failed = await until(
        "a failed attempt",
        lambda: [d for d in circuit_rows() if d["attempts"] >= 1 and d["lastError"]],
    )
    assert failed[0]["status"] == "PENDING" and "could not be reached" in failed[0]["lastError"]
    s.late.start()
    sent = await until(
        "the retried delivery", lambda: [d for d in circuit_rows() if d["status"] == "SENT"]
    )
    assert sent[0]["attempts"] >= 2 and sent[0]["lastError"] is None
    [hook] = s.late.of("/late", "circuit")
    assert hook.signed_by(s.secrets["late"])
    assert "anthropic" in hook.json["title"] and "overloaded" in hook.json["text"]
    await until("the error-rate alert", lambda: s.hooks.of("/hook", "error_rate"))
    # Later evaluations still see the open circuit and the error rate: a rule made now arriving
    # proves they ran, and neither alert came twice.
    ok(
        s,
        SET_RULE,
        n="breakers-later",
        i={"kind": "CIRCUIT", "provider": "anthropic", "channels": ["hook"]},
    )
    await until("breakers-later", lambda: s.hooks.of("/hook", "circuit"))
    assert len(s.late.of("/late")) == 1 and len(circuit_rows()) == 2
    [rate] = s.hooks.of("/hook", "error_rate")
    assert rate.json["details"]["provider"] == "anthropic" and rate.json["details"]["errors"] >= 2


async def test_no_secret_in_answers_or_logs(astack: AlertStack) -> None:
    s = astack
    assert len(s.secrets) == 3
    logs = "".join(g.log_text() for g in s.gateways)
    for value in s.secrets.values():
        assert value not in logs
        assert not any(value in answer for answer in s.transcript)
    assert "Traceback" not in logs, logs[-3000:]
