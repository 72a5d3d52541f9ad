"""After a DLP run through the real gateway, no raw value is anywhere the gateway writes: the
database file (SQLite bytes, WAL included, or a ``pg_dump``), request log rows, error reports,
the CSV activity export and the server log. DLP activity rows exist, with kind, scope, rule,
match count, size and request id, and no value. A stored policy that cannot compile refuses the
request (fail closed) with a clear error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.dlp_support import (
    ALL,
    CASE,
    EMPLOYEE,
    LOOKUP_OPENAI,
    MODELS,
    DlpStack,
    Scope,
    Sensitive,
    answer,
    answer_args,
    anthropic_request,
    args,
    assert_no_raw,
    call_anthropic,
    call_openai,
    dlp_stack,
    openai_messages,
    placeholder,
    prose,
    raw,
)
from tests.e2e.harness import orm, wait_for_rows
from tests.fakes.base import Reply, ToolCall

#: Every value the run sends, each only through scopes that protect it: none may be stored.
PROTECTED = ALL


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DlpStack]:
    async with dlp_stack(tmp_path_factory.mktemp("dlp-traces")) as s:
        yield s


@dataclass
class Run:
    #: request id -> (scope, expected restore counts per rule, request size or None)
    answered: dict[str, tuple[str, Counter[str], int | None]] = field(default_factory=dict)
    embedding: str = ""
    refused: list[str] = field(default_factory=list)
    upstream_failed: str = ""
    refused_messages: list[str] = field(default_factory=list)


def restore_counts(custom: Sensitive) -> Counter[str]:
    """How many placeholders of each rule the scripted answer holds (text and tool args)."""
    text = answer(placeholder, custom) + json.dumps(answer_args(placeholder, custom))
    counts: Counter[str] = Counter()
    for s in ALL:
        counts[s.rule] += text.count(s.placeholder)
    return +counts


def openai_size(tag: str, values: tuple[Sensitive, ...]) -> int:
    """``size`` of the activity rows of an ``openai_messages`` request: every text it carries,
    the tool's description included (its schema has no text)."""
    messages, places = openai_messages(tag, values)
    texts = [prose(m, raw, values) for m in places.texts]
    arguments = [json.dumps(args(a, raw, values)) for a in places.args]
    tool = LOOKUP_OPENAI["function"]["description"]  # type: ignore[index]
    return sum(map(len, texts + arguments)) + len(messages[-1]["content"]) + len(tool)


@pytest.fixture(scope="module")
async def run(stack: DlpStack) -> Run:
    """The DLP run: every place, both SDKs, streamed and not, org and app scopes, answers full
    of placeholders, embeddings, a client error report, an upstream failure, refusals."""
    out = Run()
    custom = {"org": EMPLOYEE, "app": CASE}
    org = stack.scopes["org"].redacted
    for scope, sdk, stream in [
        ("org", "openai", False),
        ("org", "openai", True),
        ("org", "anthropic", False),
        ("org", "anthropic", True),
        ("app", "openai", True),
        ("app", "anthropic", False),
    ]:
        reply_text = answer(placeholder, custom[scope])
        stack.openai.replies.append(
            Reply(
                text=reply_text,
                chunks=len(reply_text),
                tool_calls=[ToolCall("lookup", answer_args(placeholder, custom[scope]))],
            )
        )
        tag = f"{scope}-{sdk}-{stream}"
        # Each scope is sent only the values it protects, so none may be stored anywhere.
        values = stack.scopes[scope].redacted
        if sdk == "openai":
            messages, _ = openai_messages(tag, values)
            got = call_openai(stack, scope, MODELS["openai"], messages, stream)
            size: int | None = openai_size(tag, values)
        else:
            body, _ = anthropic_request(tag, not stream, values)
            got = call_anthropic(stack, scope, MODELS["openai"], body, stream)
            size = None
        assert got.text == answer(raw, custom[scope])
        assert got.tool_args == [answer_args(raw, custom[scope])]
        out.answered[got.request_id] = (scope, restore_counts(custom[scope]), size)

    emb = stack.oai("org").embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input=[prose("embed", raw, org)]
    )
    out.embedding = emb.headers["x-request-id"]

    # A client's own error report quoting what it was sending.
    report = httpx.post(
        f"{stack.gateway.url}/v1/error-reports",
        headers={"authorization": f"Bearer {stack.scopes['org'].key}"},
        json={"type": "ToolError", "error": prose("report", raw, org), "agent": "dlp-test"},
        timeout=30,
    )
    assert report.status_code == 202, report.text

    # The provider fails, quoting a placeholder back (the only thing it ever saw).
    # (It is retried once on the same model.)
    for _ in range(2):
        stack.openai.replies.append(Reply(status=500, error_message="cannot route [EMAIL_1]"))
    with pytest.raises(openai.InternalServerError) as failed:
        stack.oai("org").chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": prose("fail", raw, org)}]
        )
    out.upstream_failed = failed.value.response.headers["x-request-id"]

    # A stored policy that no longer compiles: refused in both protocols, nothing sent.
    sent_before = len(stack.openai.requests)
    broken = stack.scopes["broken"].redacted
    with pytest.raises(openai.BadRequestError) as oai_refused:
        stack.oai("broken").chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": prose("b1", raw, broken)}]
        )
    with pytest.raises(anthropic.BadRequestError) as ant_refused:
        stack.ant("broken").messages.create(
            model=MODELS["openai"],
            max_tokens=50,
            messages=[{"role": "user", "content": prose("b2", raw, broken)}],
        )
    assert len(stack.openai.requests) == sent_before
    for exc in (oai_refused.value, ant_refused.value):
        out.refused.append(exc.response.headers["x-request-id"])
        out.refused_messages.append(exc.response.text)

    ids = [*out.answered, out.embedding, out.upstream_failed, *out.refused]
    for rid in ids:
        assert await wait_for_rows(stack.database_url, 1, request_id=rid), rid
    return out


def protected_by(stack: DlpStack, scope: str) -> tuple[Sensitive, ...]:
    return stack.scopes[scope].redacted


def row_text(row: Any) -> str:
    return " ".join(str(v) for v in row.__dict__.values() if isinstance(v, str))


async def test_refused_by_a_policy_that_cannot_compile(stack: DlpStack, run: Run) -> None:
    for body in run.refused_messages:
        assert "DLP could not scan it" in body and "custom:Broken" in body
    rows = [(await wait_for_rows(stack.database_url, 1, request_id=r))[0] for r in run.refused]
    for row in rows:
        assert row.status == 400 and row.error_type == "policy"
        assert row.request_body is None and row.response_body is None
    from backend.data.models.dlp import DlpActivity

    async with orm(stack.database_url):
        blocks = await DlpActivity.filter(request_id__in=run.refused).order_by("id")
    assert [(b.kind, b.rule, b.matches, b.scope) for b in blocks] == [
        ("block", "custom:Broken", 0, stack.scopes["broken"].label)
    ] * 2
    broken = stack.scopes["broken"].redacted
    sizes = [len(prose(m, raw, broken)) for m in ("b1", "b2")]
    assert [b.size for b in blocks] == sizes


async def test_request_log_rows_hold_placeholders_only(stack: DlpStack, run: Run) -> None:
    for rid, (scope, _, _) in run.answered.items():
        [row] = await wait_for_rows(stack.database_url, 1, request_id=rid)
        assert row.status == 200
        for s in protected_by(stack, scope):
            assert s.placeholder in row.request_body, (rid, s.label)
        # Answers are logged before restoration.
        assert "[EMAIL_1]" in row.response_body and "[SECRET_4]" in row.response_body
        assert_no_raw(row_text(row), protected_by(stack, scope), f"log row {rid}")
    failed = (await wait_for_rows(stack.database_url, 1, request_id=run.upstream_failed))[-1]
    assert failed.status >= 500 and "[EMAIL_1]" in (failed.error_message or "")
    [emb] = await wait_for_rows(stack.database_url, 1, request_id=run.embedding)
    for row in (failed, emb):
        assert_no_raw(row_text(row), protected_by(stack, "org"), "a log row")


async def test_activity_rows_count_without_values(stack: DlpStack, run: Run) -> None:
    from backend.data.models.dlp import DlpActivity, DlpPolicy

    async with orm(stack.database_url):
        rows = await DlpActivity.all().order_by("id")
        policies = await DlpPolicy.all()
    for row in rows:
        assert_no_raw(row_text(row), PROTECTED, f"activity row {row.id}")
    by_request: dict[str, list[Any]] = {}
    for row in rows:
        assert row.request_id, "every activity row names its request"
        by_request.setdefault(row.request_id, []).append(row)
    places = 9  # an OpenAI-shaped request: seven text places and two tool calls, all values
    for rid, (scope, restored, size) in run.answered.items():
        info: Scope = stack.scopes[scope]
        mine = by_request[rid]
        app_id = stack.seeded.app_id if scope == "app" else None
        # The app belongs to the organization; its rows name both.
        assert {(r.scope, r.org_id, r.app_id) for r in mine} == {
            (info.label, stack.seeded.org_id, app_id)
        }
        redacted = {r.rule: r.matches for r in mine if r.kind == "redact"}
        assert set(redacted) == {s.rule for s in info.redacted}
        if size is not None:  # OpenAI-shaped requests: exact counts and size
            expected = Counter(s.rule for s in info.redacted for _ in range(places))
            assert redacted == dict(expected)
            assert {r.size for r in mine if r.kind == "redact"} == {size}
        assert {r.rule: r.matches for r in mine if r.kind == "restore"} == dict(restored)
        assert all(r.detail and r.created_at for r in mine)
    org_rules = {s.rule for s in stack.scopes["org"].redacted}
    assert {r.rule for r in by_request[run.embedding]} == org_rules
    touched = {(p.scope, p.organization_id or p.app_id) for p in policies if p.last_activity_at}  # type: ignore[attr-defined]
    assert ("org", stack.seeded.org_id) in touched and ("app", stack.seeded.app_id) in touched


async def test_error_reports_hold_placeholders_only(stack: DlpStack, run: Run) -> None:
    from backend.data.models.logs import ErrorReport

    async with orm(stack.database_url):
        reports = await ErrorReport.all()
    client = [r for r in reports if r.source == "client"]
    org = stack.scopes["org"]
    assert len(client) == 1 and client[0].error == prose("report", org.shown, org.redacted)
    gateway = [r for r in reports if r.request_id == run.upstream_failed]
    assert gateway and "[EMAIL_1]" in gateway[0].error
    # Both kinds keep the organization they were made under (the caller's key's).
    assert {r.org_id for r in client + gateway} == {stack.seeded.org_id}
    for r in reports:
        assert_no_raw(row_text(r), PROTECTED, "an error report")


def database_dump(stack: DlpStack) -> bytes:
    url = stack.database_url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return b"".join(
            open(p, "rb").read()
            for p in (path, path + "-wal", path + "-journal")
            if os.path.exists(p)
        )
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to read the whole PostgreSQL database"
    dsn = url.replace("postgres://", "postgresql://", 1)
    return subprocess.run([pg_dump, dsn], check=True, capture_output=True, timeout=60).stdout


async def test_database_holds_no_raw_value(stack: DlpStack, run: Run) -> None:
    dump = database_dump(stack)
    assert b"[EMAIL_1]" in dump and b"[SECRET_4]" in dump  # we are reading the right data
    for s in PROTECTED:
        for needle in s.needles:
            assert needle.encode() not in dump, f"{s.label} value in the database"


async def test_every_file_the_gateway_wrote_holds_no_raw_value(stack: DlpStack, run: Run) -> None:
    """The server log (and anything in its data directory, or a SQLite file beside it)."""
    log = stack.gateway.log_text()
    assert "DLP policy of " + str(stack.scopes["broken"].label) + " cannot be used" in log
    assert "Traceback" not in log
    assert_no_raw(log, PROTECTED, "the server log")
    files = [p for p in stack.tmp.rglob("*") if p.is_file()]
    assert any(p.name == "gateway.log" for p in files)
    for path in files:
        assert_no_raw(path.read_bytes().decode(errors="replace"), PROTECTED, str(path))


async def test_csv_export_holds_no_raw_value(stack: DlpStack, run: Run) -> None:
    from backend.data.models.tenancy import User
    from backend.security.sessions import create_session

    async with orm(stack.database_url):
        user = await User.get(id=stack.seeded.user_id)
        token, _ = await create_session(user, now=dt.datetime.now(dt.UTC))
    resp = httpx.get(
        f"{stack.gateway.url}/admin/users/{user.id}/activity.csv",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    csv_text = resp.text
    org_requests = [rid for rid, (scope, _, _) in run.answered.items() if scope == "org"]
    assert org_requests and all(rid in csv_text for rid in org_requests)
    assert "[EMAIL_1]" in csv_text and "[EMPLOYEE_ID_1]" in csv_text
    assert_no_raw(csv_text, PROTECTED, "the CSV export")
