"""Property tests: redact/restore round trips on random text, and random stream chunkings."""

from __future__ import annotations

import ipaddress
import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from backend.dlp import (
    DlpPolicy,
    Redactor,
    StreamRestorer,
    Vault,
    redact_text,
    restore_text,
)
from backend.ir.chat import Usage
from backend.ir.stream import BlockStop, StreamEnd, StreamEvent, TextDelta, ToolArgsDelta
from tests.dlp.samples import POSITIVES, b64url

REDACTOR = Redactor.from_policy(DlpPolicy(custom_rules=[("ticket", r"TCK-[0-9]{5}")]))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
ALNUM = LOWER + UPPER + "0123456789"

# -- values ---------------------------------------------------------------------------------

emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-z][a-z0-9._+\-]{0,12}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["com", "org", "io", "co.uk", "example"]),
)


@st.composite
def cards(draw: st.DrawFn) -> str:
    body = str(draw(st.integers(3, 6))) + draw(st.text("0123456789", min_size=14, max_size=14))
    number = body + stdnum_luhn.calc_check_digit(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    bban = draw(st.text("0123456789", min_size=18, max_size=18))
    number = "DE" + stdnum_iban.calc_check_digits("DE00" + bban) + bban
    if draw(st.booleans()):
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


ssns = st.builds(
    lambda area, group, serial, sep: f"{area:03d}{sep}{group:02d}{sep}{serial:04d}",
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
    st.sampled_from(["-", " "]),
)
ipv4s = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
ipv6s = st.builds(
    lambda groups: str(ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))),
    st.lists(st.integers(1, 0xFFFF), min_size=8, max_size=8),
)
secrets = st.one_of(
    st.builds(lambda s: f"sk-proj-{s}9", st.text(ALNUM, min_size=24, max_size=40)),
    st.builds(lambda s: f"sk-ant-api03-{s}1", st.text(ALNUM + "_-", min_size=24, max_size=40)),
    st.builds(
        lambda s: f"AKIA{s}", st.text(LOWER.upper() + "0123456789", min_size=16, max_size=16)
    ),
    st.builds(lambda s: f"ghp_{s}", st.text(ALNUM, min_size=36, max_size=40)),
    st.builds(
        lambda payload, sig: f"{b64url({'alg': 'HS256'})}.{b64url(payload)}.{sig}",
        st.dictionaries(st.text(LOWER, min_size=1, max_size=5), st.integers(0, 10**9), max_size=3),
        st.text(ALNUM + "_-", min_size=10, max_size=43),
    ),
)
values = st.one_of(
    emails,
    cards(),
    ibans(),
    ssns,
    ipv4s,
    ipv6s,
    secrets,
    st.sampled_from(POSITIVES["phone"]),
    st.builds(lambda n: f"TCK-{n:05d}", st.integers(0, 99999)),
)

# Filler never holds digits or "@" (so it cannot merge with a value), but does hold brackets,
# underscores and placeholder-shaped literals that must come back untouched.
filler = st.lists(
    st.one_of(
        st.text(LOWER + UPPER + " ,.!?;:'\"()_\n\t", max_size=12),
        st.sampled_from(["[EMAIL_1]", "[CARD_2]", "[", "]", "[EMAIL_", "[[", "[SECRET_1", "[X]"]),
    ),
    max_size=4,
).map("".join)


@st.composite
def texts_with_values(draw: st.DrawFn) -> tuple[str, list[str]]:
    embedded = draw(st.lists(values, min_size=1, max_size=6))
    # Sometimes repeat a value: it must get the same placeholder.
    if draw(st.booleans()):
        embedded.append(draw(st.sampled_from(embedded)))
    parts = [draw(filler)]
    for value in embedded:
        parts += [" ", value, " ", draw(filler)]
    return "".join(parts), embedded


@SETTINGS
@given(texts_with_values())
def test_restore_of_redact_is_identity_and_no_raw_value_remains(
    case: tuple[str, list[str]],
) -> None:
    text, embedded = case
    vault = Vault()
    redacted = redact_text(text, REDACTOR, vault)
    assert restore_text(redacted, vault) == text
    for value in embedded:
        assert value not in redacted
    # Each distinct value has exactly one placeholder.
    originals = [v for _, v in vault.items()]
    assert len(originals) == len(set(originals))


# -- streaming ------------------------------------------------------------------------------


@st.composite
def answers(draw: st.DrawFn) -> tuple[Vault, str]:
    vault = Vault()
    redacted = redact_text(
        " ".join(draw(st.lists(values, min_size=1, max_size=5))), REDACTOR, vault
    )
    placeholders = [p for p, _ in vault.items()]
    assert placeholders, redacted
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(placeholders),
                st.sampled_from(placeholders).map(lambda p: p[: len(p) // 2]),  # a broken one
                st.sampled_from(["[EMAIL_99]", "[", "]", "[[", "[EMAIL_", "\\", '"', "\n"]),
                st.text(max_size=8),
            ),
            max_size=25,
        )
    )
    return vault, "".join(pieces)


def _chunk(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def _feed_all(restorer: StreamRestorer, events: list[StreamEvent]) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for ev in events:
        out += restorer.feed(ev)
        assert restorer.held_chars <= restorer.max_hold
    return out


@SETTINGS
@given(answers(), st.lists(st.integers(0, 10_000), max_size=30))
def test_streamed_text_equals_non_streamed_restore(
    case: tuple[Vault, str], cuts: list[int]
) -> None:
    vault, answer = case
    events: list[StreamEvent] = [TextDelta(0, c) for c in _chunk(answer, cuts)]
    events += [BlockStop(0), StreamEnd("stop", Usage())]
    out = _feed_all(StreamRestorer(vault), events)
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == restore_text(answer, vault)
    assert isinstance(out[-1], StreamEnd) and isinstance(out[-2], BlockStop)


@SETTINGS
@given(answers(), st.lists(st.integers(0, 10_000), max_size=30))
def test_streamed_tool_arguments_equal_non_streamed_restore_and_stay_json(
    case: tuple[Vault, str], cuts: list[int]
) -> None:
    vault, answer = case
    args = json.dumps({"text": answer, "list": [answer, 1]})
    events: list[StreamEvent] = [ToolArgsDelta(3, c) for c in _chunk(args, cuts)]
    events += [StreamEnd("tool_calls", Usage())]  # no BlockStop: the end flushes too
    out = _feed_all(StreamRestorer(vault), events)
    streamed = "".join(e.partial_json for e in out if isinstance(e, ToolArgsDelta))
    assert streamed == restore_text(args, vault, json_escaped=True)
    plain = restore_text(answer, vault)
    assert json.loads(streamed) == {"text": plain, "list": [plain, 1]}
