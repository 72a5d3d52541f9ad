"""Large DLP scans run in scan processes (``backend.dlp.pool``), whose GIL is not the gateway's.

- The process path redacts exactly as the inline path: same redacted request, same vault (same
  placeholders, same numbering, same counts), for chat requests, embeddings and free text, with
  built-in and custom rules.
- Which path a scan takes: small built-in scans inline, small custom ones in a thread, large
  ones in a process (no thread used).
- The time bound holds across the process boundary (503 ``dlp_timeout``), and a detector that
  fails in a process fails closed without sending the text back.
- A scan process that is killed mid-scan refuses its request (503 ``dlp_unavailable``) instead
  of wedging the gateway, and the next scan gets a new process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from backend.dlp import DlpPolicy, Redactor, Vault
from backend.dlp import worker as worker_module
from backend.dlp.errors import DlpFailure, DlpScanLost, DlpTimeout
from backend.dlp.pool import ScanProcesses
from backend.dlp.redact import redact_embeddings, redact_request, redact_text, request_text_size
from backend.dlp.runner import ScanRunner
from backend.dlp.scan import Scan
from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

EMAIL = "jane.doe@example.com"
EMAIL2 = "bob@example.org"
CARD = "4111 1111 1111 1111"
PHONE = "+1 415 555 2671"
IBAN = "DE89 3704 0044 0532 0130 00"
FILLER = "The quarterly report is attached for review. " * 400  # ~18 KB: past inline_chars
CUSTOM = DlpPolicy(custom_rules=[("Employee id", "EMP-[0-9]{6}")])


def adversarial(size: int) -> str:
    unit = "4111 1111 1111 1111 212 555 1234 DE89 1.2.3.4 +1 (2) 3-4 "
    return (unit * (size // len(unit) + 1))[:size]


class _CountingThreads(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(1)
        self.used = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.used += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def processes() -> Iterator[ScanProcesses]:
    pool = ScanProcesses(1)
    pool.start()
    yield pool
    asyncio.run(pool.close())


@pytest.fixture
def threads() -> Iterator[_CountingThreads]:
    pool = _CountingThreads()
    yield pool
    pool.shutdown()


def rich_request() -> ChatRequest:
    """Values in every place a walk visits, repeated, a literal placeholder, JSON arguments
    with a huge integer, and enough text that the scan goes off the loop."""
    schema = {
        "type": "object",
        "properties": {"to": {"type": "string", "description": f"e.g. {EMAIL}"}},
        "$defs": {"card": {"const": CARD}},
    }
    args = (
        '{"to": "' + EMAIL2 + '", "n": 41111111111111111111, "card": 4111111111111111,'
        ' "note": "EMP-123456 [EMAIL_1]"}'
    )
    return ChatRequest(
        model="m",
        tools=[Tool("notify", f"Notifies {EMAIL}", schema)],
        system=[TextPart(f"Support desk. Escalate to {EMAIL2} or {PHONE}.")],
        messages=[
            Message("user", [TextPart(f"I typed [EMAIL_1] myself; mine is {EMAIL}. {FILLER}")]),
            Message(
                "assistant",
                [ThinkingPart("they said [EMAIL_1]"), ToolCallPart("c1", "notify", args)],
            ),
            Message("user", [ToolResultPart("c1", [TextPart(f"sent to {EMAIL2}, IBAN {IBAN}")])]),
            Message("user", [TextPart(f"card {CARD}, employee EMP-654321, again {EMAIL}")]),
        ],
        user=EMAIL,
        metadata={"customer": PHONE, "id": 4111111111111111},
        stop=[f"Regards, {EMAIL2}"],
        extra={"safety_identifier": EMAIL, "prompt_cache_key": f"k {PHONE}"},
    )


def _vault_state(vault: Vault) -> tuple[Any, ...]:
    return (vault.items(), vault.findings(), [vault.rule_of(p) for p, _ in vault.items()])


@pytest.mark.parametrize("policy", [DlpPolicy(), CUSTOM], ids=["builtin", "custom"])
async def test_process_and_inline_paths_redact_identically(
    processes: ScanProcesses, threads: _CountingThreads, policy: DlpPolicy
) -> None:
    redactor = Redactor.from_policy(policy)
    runner = ScanRunner(threads, processes, timeout_s=60)
    req = rich_request()
    size = request_text_size(req)
    assert size > runner.inline_chars

    inline_req, inline_vault, inline_findings = redact_request(req, redactor)
    out_req, out_vault, out_findings = await runner.redact(redactor, req, size)
    assert threads.used == 0  # not a thread: the spans came from the scan process
    assert out_req == inline_req
    assert _vault_state(out_vault) == _vault_state(inline_vault)
    assert out_findings == inline_findings
    assert EMAIL not in repr(out_req) and CARD not in repr(out_req)
    assert '"card":"[CARD_' in out_req.messages[1].parts[1].arguments  # type: ignore[union-attr]
    assert out_vault.original("[EMAIL_1]") is None  # the literal the user typed was reserved
    assert out_vault.original("[EMAIL_2]") == EMAIL
    if policy is CUSTOM:
        assert out_vault.original("[EMPLOYEE_ID_1]") == "EMP-123456"
        assert out_vault.original("[EMPLOYEE_ID_2]") == "EMP-654321"

    texts = [f"{EMAIL} {FILLER}", f"{CARD} and {EMAIL}", ""]
    emb = EmbeddingRequest(model="e", input=texts)
    inline_emb, inline_emb_vault, _ = redact_embeddings(emb, redactor)
    out_emb, out_emb_vault, _ = await runner.redact(redactor, emb, sum(map(len, texts)))
    assert out_emb == inline_emb and _vault_state(out_emb_vault) == _vault_state(inline_emb_vault)

    note = f"{FILLER} call {PHONE}"
    inline_note = redact_text(note, redactor, Vault())
    out_note, _, _ = await runner.redact(redactor, note, len(note))
    assert out_note == inline_note and "[PHONE_1]" in out_note
    assert threads.used == 0


async def test_small_scans_stay_inline_or_in_a_thread(
    processes: ScanProcesses, threads: _CountingThreads
) -> None:
    runner = ScanRunner(threads, processes, timeout_s=60)
    text = f"mail {EMAIL}"
    builtin, custom = Redactor.from_policy(DlpPolicy()), Redactor.from_policy(CUSTOM)
    assert (await runner.redact(builtin, text, len(text)))[0] == "mail [EMAIL_1]"
    assert threads.used == 0  # inline
    assert (await runner.redact(custom, text, len(text)))[0] == "mail [EMAIL_1]"
    assert threads.used == 1  # custom rules, small: a thread (RE2 releases the GIL)


async def test_a_process_scan_past_its_time_bound_is_refused(
    processes: ScanProcesses, threads: _CountingThreads
) -> None:
    redactor = Redactor.from_policy(DlpPolicy())
    text = adversarial(6_000_000)
    runner = ScanRunner(threads, processes, timeout_s=0.05)
    with pytest.raises(DlpTimeout) as info:
        await runner.redact(redactor, text, len(text))
    err = info.value
    assert err.status == 503 and err.code == "dlp_timeout"
    assert "within 0.05 s" in err.message and "Nothing was sent to the provider" in err.message
    # The process stopped at its deadline and takes the next scan.
    patient = ScanRunner(threads, processes, timeout_s=120)
    small = f"{FILLER} {EMAIL}"
    out, _, _ = await patient.redact(redactor, small, len(small))
    assert out.endswith("[EMAIL_1]") and threads.used == 0


class _Boom:
    """A detector that fails, quoting the text it was given (as a careless bug would)."""

    rule_id = "phone"
    kind = "PHONE"
    priority = 7

    def spans(self, scan: Scan) -> list[tuple[int, int]]:
        raise RuntimeError(f"cannot parse {scan.text!r}")


def test_the_worker_answers_with_tags_never_with_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a scan process sends back: the redaction, or why not; a failing detector's message
    (which may quote the text) stays in the process."""
    policy = DlpPolicy()
    tag, (text, vault, _findings) = worker_module.redact(
        policy, f"mail {EMAIL}", time.monotonic() + 60
    )
    assert (tag, text, vault.original("[EMAIL_1]")) == ("ok", "mail [EMAIL_1]", EMAIL)
    assert worker_module.redact(policy, "x", time.monotonic() - 1) == ("timeout",)
    monkeypatch.setattr(worker_module, "_redactor", lambda p: Redactor([_Boom()]))
    assert worker_module.redact(policy, f"call {PHONE}", time.monotonic() + 60) == (
        "failure",
        "phone",
    )


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _scan_process(before: set[int]) -> int:
    deadline = time.monotonic() + 120
    while True:
        new = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
        if new:
            return int(new[0])
        assert time.monotonic() < deadline, "no scan process started"
        await asyncio.sleep(0.02)


async def test_a_killed_scan_process_fails_the_request_closed_and_is_replaced(
    threads: _CountingThreads,
) -> None:
    before = {p.pid for p in multiprocessing.active_children() if p.pid is not None}
    processes = ScanProcesses(1)
    try:
        processes.start()
        first = await _scan_process(before)
        runner = ScanRunner(threads, processes, timeout_s=120)
        redactor = Redactor.from_policy(DlpPolicy())
        small = f"{FILLER} {EMAIL}"
        # Started and warm: from here on its CPU time is the big scan's.
        assert (await runner.redact(redactor, small, len(small)))[0].endswith("[EMAIL_1]")
        text = adversarial(6_000_000)
        big = asyncio.create_task(runner.redact(redactor, text, len(text)))
        started = _cpu_s(first)
        deadline = time.monotonic() + 120
        while _cpu_s(first) - started < 0.3:  # the scan is under way in that process
            assert not big.done(), "the scan ended before it could be interrupted"
            assert time.monotonic() < deadline, "the scan process never worked"
            await asyncio.sleep(0.02)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(DlpScanLost) as info:
            await asyncio.wait_for(big, 60)
        err = info.value
        assert isinstance(err, DlpFailure) and err.status == 503
        assert err.code == "dlp_unavailable" and "Nothing was sent to the provider" in err.message
        # The next scan runs in a new process.
        second = await _scan_process(before | {first})
        assert second != first
        assert (await runner.redact(redactor, small, len(small)))[0].endswith("[EMAIL_1]")
        assert threads.used == 0
    finally:
        await processes.close()


async def test_no_scan_process_runs_until_a_large_scan_needs_one(
    threads: _CountingThreads,
) -> None:
    """The gateway creates its pool without ``start``: an idle scan process (and
    multiprocessing's resource tracker) cost ~58 MB of RSS in every gateway; the first large
    scan starts one and is redacted as usual."""
    before = {p.pid for p in multiprocessing.active_children() if p.pid is not None}
    processes = ScanProcesses(1)
    try:
        runner = ScanRunner(threads, processes, timeout_s=120)
        redactor = Redactor.from_policy(DlpPolicy())
        short = f"mail {EMAIL}"
        assert (await runner.redact(redactor, short, len(short)))[0] == "mail [EMAIL_1]"
        started = {p.pid for p in multiprocessing.active_children()} - before
        assert not started, "a small (inline) scan started a scan process"
        large = f"{FILLER} {EMAIL}"
        assert (await runner.redact(redactor, large, len(large)))[0].endswith("[EMAIL_1]")
        assert await _scan_process(before)
        assert threads.used == 0
    finally:
        await processes.close()


def _slow_warm() -> None:
    """A scan process's initializer on a loaded host: a second before it takes work."""
    time.sleep(1.0)
    worker_module.warm()


async def test_a_slow_process_start_does_not_count_against_the_scan(
    threads: _CountingThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first large scan of a gateway starts the scan process. On a busy host that start
    took longer than the scan's bound and the request was refused with ``dlp_timeout`` though
    no scan had run; the bound now starts when the process is ready."""
    monkeypatch.setattr(worker_module, "warm", _slow_warm)
    processes = ScanProcesses(1)
    try:
        runner = ScanRunner(threads, processes, timeout_s=0.5)
        redactor = Redactor.from_policy(DlpPolicy())
        large = f"{FILLER} {EMAIL}"
        started = time.monotonic()
        out, _, _ = await runner.redact(redactor, large, len(large))
        assert out.endswith("[EMAIL_1]") and threads.used == 0
        assert time.monotonic() - started >= 1.0  # it did wait for the slow start
    finally:
        await processes.close()
