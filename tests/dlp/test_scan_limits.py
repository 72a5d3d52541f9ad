"""No DLP scan can stall the gateway: custom regexes run on a linear-time engine (patterns that
need backtracking are refused, with the reason), the built-in detectors stay linear on
adversarial digits and punctuation, and every scan has a time bound that refuses the request
(fail closed) and stops the scan itself.

Speed is not asserted here (that belongs in benchmarks/): the linear-time properties are shown
by counting work, and the time bound by a scan that cannot finish within a tiny one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.dlp import CustomRule, DlpPolicy, InvalidRule, Redactor, check_custom_rule
from backend.dlp import detectors as detectors_module
from backend.dlp.custom import CustomDetector
from backend.dlp.errors import DlpTimeout
from backend.dlp.redact import redact_request
from backend.dlp.runner import ScanRunner
from backend.dlp.scan import Scan
from backend.ir.chat import ChatRequest, Message, TextPart


def adversarial(size: int) -> str:
    """Digits and punctuation shaped like card, phone and IBAN runs: the detectors' worst."""
    unit = "4111 1111 1111 1111 212 555 1234 DE89 1.2.3.4 +1 (2) 3-4 "
    return (unit * (size // len(unit) + 1))[:size]


# -- custom rules: RE2 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)\1", "backreferences are not supported"),
        (r"(?P<v>x)(?P=v)", "invalid regex"),
        (r"secret(?=[0-9])", "lookahead and lookbehind are not supported"),
        (r"(?<!x)secret", "lookahead and lookbehind are not supported"),
        (r"(?<=id:)[0-9]+", "lookahead and lookbehind are not supported"),
        (r"[0-9]++x", "possessive quantifiers are not supported"),
        (r"(?>a|ab)c", "atomic groups are not supported"),
    ],
)
def test_patterns_that_need_backtracking_are_refused_saying_why(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidRule) as info:
        check_custom_rule("Risky", pattern)
    message = str(info.value)
    assert message.startswith("custom rule 'Risky': ") and reason in message
    if "not supported" in reason:
        assert "RE2" in message and "linearly" in message


def test_catastrophic_backtracking_pattern_is_accepted_and_harmless() -> None:
    """``(x+x+)+y`` took 2.7 s on 25 characters with the backtracking engine, doubling with each
    one more; here a thousand characters are scanned (a hang would be the failure)."""
    check_custom_rule("Pathological", "(x+x+)+y")
    redactor = Redactor.from_policy(DlpPolicy([], [("Pathological", "(x+x+)+y")]))
    assert redactor.find("x" * 1000) == []
    spans = redactor.find("x" * 1000 + "y")
    assert [(s.start, s.end, s.rule) for s in spans] == [(0, 1001, "custom:Pathological")]


def test_custom_rules_keep_value_groups_and_ascii_classes() -> None:
    redactor = Redactor.from_policy(DlpPolicy([], [("Acct", r"acct[ #:]*(?P<value>[0-9]{6})\b")]))
    text = "see acct #123456 and acct 654321x, acct ١٢٣٤٥٦"
    assert [text[s.start : s.end] for s in redactor.find(text)] == ["123456"]


# The windows a custom rule is searched in must not change what it finds: small windows here,
# every boundary case (matches across, at and next to window edges, anchors, \b).
@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab1 -\n", max_size=80),
    pattern=st.sampled_from(
        [r"a+", r"ab", r"\bab\b", r"^a", r"a$", r"(?m)^b", r"1[ -]?1", r"a(?P<value>b+)", r"b1?"]
    ),
    window=st.integers(1, 9),
)
def test_windowed_search_finds_what_a_whole_text_search_finds(
    text: str, pattern: str, window: int
) -> None:
    detector = CustomDetector(CustomRule("R", pattern), window=window, max_match=16)
    compiled = re2.compile(pattern)  # RE2's own semantics (its "$" ignores a final newline)
    group = compiled.groupindex.get("value", 0)
    expected = [m.span(group) for m in compiled.finditer(text) if m.end(group) > m.start(group)]
    assert detector.spans(Scan(text)) == expected


# -- built-in detectors: linear work on adversarial input ------------------------------------


def test_iban_candidates_are_bounded_per_country_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run of "DE89 " groups was matched whole from every country code and each of its
    separators tried as an end: the characters validated grew with the square of the run."""
    validated: list[int] = []
    real = detectors_module._valid_iban

    def counting(s: str) -> bool:
        validated.append(len(s))
        return real(s)

    monkeypatch.setattr(detectors_module, "_valid_iban", counting)
    for text in ("DE89 " * 1000, "DE89" + " 3704" * 2000, "GB82-WEST-" * 500):
        validated.clear()
        Redactor.from_policy(DlpPolicy(["iban"])).find(text)
        assert sum(validated) <= 100 * len(text), (text[:12], sum(validated))


@pytest.mark.parametrize(
    ("rule", "unit", "value"),
    [
        ("card", "4111 1111 1111 1111 ", "4111 1111 1111 1111"),
        ("phone", "212 555 1234 ", "212 555 1234"),
    ],
)
def test_a_long_list_of_valid_numbers_is_resolved_without_pairwise_overlap_checks(
    rule: str, unit: str, value: str
) -> None:
    """Every value of one long run is found; the overlap test between windows used to compare
    each candidate with every window chosen so far (a 400 KB list of cards took 40 s)."""
    text = unit * 20_000
    redactor = Redactor.from_policy(DlpPolicy([rule]))
    spans = redactor.find(text, deadline=time.monotonic() + 120)
    assert len(spans) == 20_000
    assert {text[s.start : s.end] for s in spans} == {value}


def test_private_key_headers_without_footers_are_each_redacted_once() -> None:
    """A lazy "up to the first footer" regex rescanned the whole text from every header."""
    text = "-----BEGIN PRIVATE KEY-----!" * 20_000
    redactor = Redactor.from_policy(DlpPolicy(["secret"]))
    spans = redactor.find(text, deadline=time.monotonic() + 120)
    assert len(spans) == 20_000 and all(s.end - s.start == 27 for s in spans)
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"
    # As the one regex did: a header runs to the first footer ahead, else to its key's end.
    text = f"a {block} b -----BEGIN PRIVATE KEY-----\nAAAA! c {block} d"
    found = [text[s.start : s.end] for s in redactor.find(text)]
    assert found == [block, f"-----BEGIN PRIVATE KEY-----\nAAAA! c {block}"]
    text = f"a {block} b -----BEGIN PRIVATE KEY-----\nAAAA! c"
    found = [text[s.start : s.end] for s in redactor.find(text)]
    assert found == [block, "-----BEGIN PRIVATE KEY-----\nAAAA"]


# -- the time bound ----------------------------------------------------------------------------


def _request(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", [TextPart(text)])])


@pytest.fixture
def one_thread() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


async def test_a_scan_past_its_time_bound_is_refused_and_stops(
    one_thread: ThreadPoolExecutor,
) -> None:
    """6 MB of adversarial text cannot be scanned in 50 ms: the request is refused with 503
    ``dlp_timeout``, and the scan itself stops at its deadline (it does not run to the end
    and keep the only thread busy)."""
    redactor = Redactor.from_policy(DlpPolicy())
    req = _request(adversarial(6_000_000))
    stopped = threading.Event()
    outcome: list[BaseException | None] = []

    def scan(deadline: float) -> Any:
        try:
            result = redact_request(req, redactor, deadline=deadline)
        except BaseException as exc:
            outcome.append(exc)
            raise
        else:
            outcome.append(None)
            return result
        finally:
            stopped.set()

    runner = ScanRunner(one_thread, timeout_s=0.05)
    with pytest.raises(DlpTimeout) as info:
        await runner.run(scan, 6_000_000)
    err = info.value
    assert err.status == 503 and err.code == "dlp_timeout"
    assert "DLP could not scan it within 0.05 s" in err.message
    assert "Nothing was sent to the provider" in err.message
    assert await asyncio.to_thread(stopped.wait, 120), "the abandoned scan never ended"
    assert len(outcome) == 1 and isinstance(outcome[0], DlpTimeout), outcome
    # The thread is free again: the next scan gets it.
    small = await ScanRunner(one_thread, inline_chars=0).run(
        lambda deadline: redact_request(_request("mail a@b.co"), redactor, deadline=deadline),
        11,
    )
    assert small[0].messages[0].parts == [TextPart("mail [EMAIL_1]")]


async def test_a_scan_waiting_for_a_thread_counts_against_its_bound(
    one_thread: ThreadPoolExecutor,
) -> None:
    release = threading.Event()
    busy = one_thread.submit(release.wait, 120)
    try:
        with pytest.raises(DlpTimeout):
            await ScanRunner(one_thread, timeout_s=0.05).run(lambda deadline: "never", 10**6)
    finally:
        release.set()
        busy.result()


class _Recording(Executor):
    """An executor that runs in a thread and remembers that it was used."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.used = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.used += 1
        return self.pool.submit(fn, *args, **kwargs)


async def test_small_builtin_scans_run_inline_large_and_custom_ones_in_the_pool(
    one_thread: ThreadPoolExecutor,
) -> None:
    pool = _Recording(one_thread)
    runner = ScanRunner(pool, inline_chars=8192)
    loop_thread = threading.get_ident()

    def where(deadline: float) -> int:
        return threading.get_ident()

    assert await runner.run(where, 8192) == loop_thread and pool.used == 0
    assert await runner.run(where, 8193) != loop_thread and pool.used == 1
    assert await runner.run(where, 10, inline_ok=False) != loop_thread and pool.used == 2
    builtin = Redactor.from_policy(DlpPolicy())
    custom = Redactor.from_policy(DlpPolicy(custom_rules=[("Emp", "EMP-[0-9]{6}")]))
    assert not builtin.has_custom and custom.has_custom
