"""``backend.policies.dlp`` fails closed: a detector that raises, or a stored policy that no longer
compiles, refuses the request with a clear ``dlp_failure`` error and a ``block`` activity row,
and neither the error, the row nor the log holds the request's values.

A detector cannot be made to raise through the real gateway honestly (every built-in detector
handles any text, and a slow custom regex is not a failure), so this is where it is covered;
the end-to-end tests cover the stored policy that cannot compile.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from backend.dlp import DlpFailure, Redactor
from backend.dlp.runner import ScanRunner
from backend.dlp.scan import Scan
from backend.ir.chat import ChatRequest, EmbeddingRequest, Message, TextPart, ToolResultPart
from backend.ir.errors import GatewayError, PolicyBlocked
from backend.policies import dlp as dlp_policy
from backend.policies.context import RequestContext
from backend.state.snapshot import DlpPolicyInfo, KeyInfo, OrgInfo, Principal, UserInfo

EMAIL = "jane.roe@example.com"
CARD = "4111 1111 1111 1111"
TEXT = f"mail {EMAIL}, card {CARD}"
ORG = OrgInfo(7, "Acme", "acme", dlp_enabled=True)
PRINCIPAL = Principal(
    KeyInfo(1, "sb-abc", 3, None), UserInfo(3, "A", "a@x.test", org_id=7), None, ORG
)


class _Boom:
    """A detector that fails, quoting the text it was given (as a careless bug would)."""

    rule_id = "phone"
    kind = "PHONE"
    priority = 7

    def spans(self, scan: Scan) -> list[tuple[int, int]]:
        raise RuntimeError(f"cannot parse {scan.text!r}")


@pytest.fixture(scope="module")
def scans() -> Iterator[ScanRunner]:
    with ThreadPoolExecutor(2) as pool:
        yield ScanRunner(pool)


class _Fixed:
    def __init__(self, redactor: Redactor, scans: ScanRunner) -> None:
        self.redactor = redactor
        self.scans = scans

    def for_principal(self, principal: Principal) -> tuple[dlp_policy.Scope, Redactor]:
        return dlp_policy.Scope("org:acme", 7, None), self.redactor


def _gw(dlp: Any) -> Any:
    return SimpleNamespace(dlp=dlp)


def _store(custom_rules: tuple[tuple[str, str], ...]) -> Any:
    info = DlpPolicyInfo(1, "org", 7, None, ("email", "card"), custom_rules)
    return SimpleNamespace(dlp={("org", 7): info})


def _ctx() -> RequestContext:
    ctx = RequestContext(endpoint="/v1/chat/completions", created_at=dt.datetime.now(dt.UTC))
    ctx.principal = PRINCIPAL
    return ctx


def _req() -> ChatRequest:
    return ChatRequest(
        model="openai/gpt-4o-mini",
        system=[TextPart(f"sys {EMAIL}")],
        messages=[
            Message("user", [TextPart(TEXT)]),
            Message("user", [ToolResultPart("call_1", [TextPart(CARD)])]),
        ],
    )


def _no_values(*things: object) -> None:
    shown = " ".join(repr(t) + str(t) for t in things)
    for value in (EMAIL, CARD, "4111111111111111"):
        assert value not in shown


async def test_a_detector_that_raises_refuses_the_request_with_a_block_row(
    scans: ScanRunner,
) -> None:
    ctx = _ctx()
    req = _req()
    with pytest.raises(DlpFailure) as info:
        await dlp_policy.redact(ctx, _gw(_Fixed(Redactor([_Boom()]), scans)), req)
    err = info.value
    assert isinstance(err, PolicyBlocked) and isinstance(err, GatewayError)
    assert err.status == 400 and err.code == "dlp_failure" and err.detail == {"rule": "phone"}
    assert "DLP could not scan" in err.message and "'phone'" in err.message
    assert ctx.vault is None  # nothing to restore, nothing was sent
    [row] = ctx.dlp_activity
    assert row["kind"] == "block" and row["rule"] == "phone" and row["matches"] == 0
    assert row["scope"] == "org:acme" and row["org_id"] == 7 and row["app_id"] is None
    assert row["request_id"] == ctx.request_id
    # Size counts every text the request carries, tool results included.
    assert row["size"] == len(f"sys {EMAIL}") + len(TEXT) + len(CARD)
    assert "fail closed" in row["detail"]
    # The detector's own error (which quotes the text) is neither chained nor shown.
    assert err.__cause__ is None and err.__suppress_context__
    _no_values(err, row)


async def test_a_detector_that_raises_refuses_embeddings_too(scans: ScanRunner) -> None:
    ctx = _ctx()
    req = EmbeddingRequest(model="openai/text-embedding-3-small", input=[TEXT])
    with pytest.raises(DlpFailure):
        await dlp_policy.redact_embedding(ctx, _gw(_Fixed(Redactor([_Boom()]), scans)), req)
    [row] = ctx.dlp_activity
    assert (row["kind"], row["rule"], row["size"]) == ("block", "phone", len(TEXT))
    _no_values(row)


async def test_a_stored_policy_that_cannot_compile_refuses_the_request(
    caplog: pytest.LogCaptureFixture, scans: ScanRunner
) -> None:
    policies = dlp_policy.DlpPolicies(
        _store((("Employee id", "EMP-[0-9]{6}"), ("Broken", "(x"))), scans
    )
    ctx = _ctx()
    with caplog.at_level(logging.WARNING, logger="switchboard.dlp"):
        with pytest.raises(DlpFailure) as info:
            await dlp_policy.redact(ctx, _gw(policies), _req())
    err = info.value
    assert err.code == "dlp_failure" and err.detail == {"rule": "custom:Broken"}
    assert err.__cause__ is None
    [row] = ctx.dlp_activity
    assert (row["kind"], row["rule"], row["scope"]) == ("block", "custom:Broken", "org:acme")
    assert "policy cannot be used" in row["detail"]
    # The operator learns why from the log: the rule and the regex error, no request text.
    [record] = [r for r in caplog.records if r.name == "switchboard.dlp"]
    assert "org:acme" in record.getMessage() and "Broken" in record.getMessage()
    _no_values(err, row, record.getMessage())
    # Error reports are refused the same way.
    with pytest.raises(DlpFailure):
        await dlp_policy.redact_note(PRINCIPAL, _gw(policies), TEXT)


async def test_a_policy_naming_an_unknown_rule_cannot_be_used_either(scans: ScanRunner) -> None:
    info = DlpPolicyInfo(1, "org", 7, None, ("email", "passport"), ())
    store = SimpleNamespace(dlp={("org", 7): info})
    policies = dlp_policy.DlpPolicies(store, scans)  # type: ignore[arg-type]
    with pytest.raises(DlpFailure) as caught:
        await dlp_policy.redact(_ctx(), _gw(policies), _req())
    assert caught.value.detail == {"rule": "policy"}


async def test_a_good_policy_redacts_and_redact_note_uses_it(scans: ScanRunner) -> None:
    policies = dlp_policy.DlpPolicies(_store(()), scans)
    ctx = _ctx()
    out = await dlp_policy.redact(ctx, _gw(policies), _req())
    assert out.messages[0].parts == [TextPart("mail [EMAIL_1], card [CARD_1]")]
    assert {(r["kind"], r["rule"], r["matches"]) for r in ctx.dlp_activity} == {
        ("redact", "email", 2),
        ("redact", "card", 2),
    }
    note = await dlp_policy.redact_note(PRINCIPAL, _gw(policies), f"failed: {TEXT}")
    assert note == "failed: mail [EMAIL_1], card [CARD_1]"
    off = Principal(PRINCIPAL.key, PRINCIPAL.user, None, OrgInfo(8, "Globex", "globex"))
    assert await dlp_policy.redact_note(off, _gw(policies), TEXT) == TEXT
