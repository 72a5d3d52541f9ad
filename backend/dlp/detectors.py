"""Detectors: find the spans of sensitive values in a text. Pure functions over ``str``.

Each detector finds cheap regex *candidates* and runs the expensive validator (``phonenumbers``,
Luhn, IBAN mod-97, ``ipaddress``, JWT header decoding) only on those. Candidates are looked for
only where they can be: digit-made values near digits (``Scan.digit_windows``), emails if there
is an ``@``, secrets if one of their literal prefixes occurs. Digit classes are ASCII on purpose:
the validators only understand ASCII digits.

Candidates for cards, phones and IBANs are *runs* of digit groups (``4111 1111 1111 1111``); when
a run as a whole is not valid, windows of whole groups are tried, longest first, so a valid
number next to other digits (``in 2024 212 555 1234``) is still found and a look-alike is not.

Overlaps between detectors are resolved by the ``Redactor`` (``backend.dlp.redact``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from backend.dlp.scan import Scan

#: Tie-break when two overlapping spans have the same length: lower wins (most specific first).
PRIORITY: Mapping[str, int] = MappingProxyType(
    {"secret": 0, "card": 1, "iban": 2, "ssn": 3, "custom": 4, "email": 5, "ip": 6, "phone": 7}
)

Spans = list[tuple[int, int]]


class Span(NamedTuple):
    start: int
    end: int
    rule: str
    kind: str
    priority: int


class Detector(Protocol):
    rule_id: str
    kind: str
    priority: int

    def spans(self, scan: Scan) -> Spans:
        """Start/end offsets of every value this detector recognizes in ``scan.text``."""
        ...


# -- helpers ------------------------------------------------------------------------------------

_DIGIT_GROUP = re.compile(r"[0-9]+")

#: ``shape(group lengths, index of the first group)``: a cheap structural test of a window.
Shape = Callable[[tuple[int, ...], int], bool]
#: ``score(window text, group lengths)``: ``None`` if not a valid value; higher wins overlaps.
Score = Callable[[str, tuple[int, ...]], tuple[int, ...] | None]
Extend = Callable[[str, int, int], tuple[int, int]]


def _digit_groups(run: str) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
    groups = [m.span() for m in _DIGIT_GROUP.finditer(run)]
    return groups, tuple(e - s for s, e in groups)


def _group_windows(
    run: str,
    groups: list[tuple[int, int]],
    lengths: tuple[int, ...],
    sizes: tuple[int, ...],
    shape: Shape,
    score: Score,
    extend: Extend | None = None,
    check: Callable[[], None] | None = None,
) -> list[tuple[int, int]]:
    """Non-overlapping windows of ``sizes`` whole digit groups of ``run``, best valid first.

    ``check`` is called every few hundred groups: a run can be a whole 6 MB body.
    """
    n = len(groups)
    candidates: list[tuple[tuple[int, ...], int, int]] = []
    for i in range(n):
        if check is not None and not i & 255:
            check()
        for size in sizes:
            if i + size > n:
                break
            window = lengths[i : i + size]
            if not shape(window, i):
                continue
            start, end = groups[i][0], groups[i + size - 1][1]
            if size == 1 and start > 1 and run[start - 1] == "." and run[start - 2].isdigit():
                continue  # the decimals of a number (0.5772156649), not an identifier
            if extend is not None:
                start, end = extend(run, start, end)
            rank = score(run[start:end], window)
            if rank is not None:
                candidates.append((rank, start, end))
    if len(candidates) <= 1:
        return [(s, e) for _, s, e in candidates]
    candidates.sort(key=lambda c: (c[0], -c[1]), reverse=True)
    # Taken characters, so the overlap test costs a window's length, not the number of windows
    # chosen so far (that was quadratic in a long run of valid numbers: a 400 KB list of
    # cards took 40 s).
    taken = bytearray(len(run))
    chosen: list[tuple[int, int]] = []
    for _, start, end in candidates:
        if taken.find(1, start, end) == -1:
            taken[start:end] = b"\x01" * (end - start)
            chosen.append((start, end))
    return chosen


def _preceded_by(text: str, pos: int, chars: str) -> bool:
    """Whether ``text[pos - 1]`` is an ASCII letter/digit or one of ``chars``."""
    if pos == 0:
        return False
    c = text[pos - 1]
    return c.isascii() and (c.isalnum() or c in chars)


# -- email --------------------------------------------------------------------------------------

_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_EMAIL_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}(?![A-Za-z0-9\-])")


class EmailDetector:
    rule_id = "email"
    kind = "EMAIL"
    priority = PRIORITY["email"]

    def spans(self, scan: Scan) -> Spans:
        # Anchored at each "@" (memchr-fast) rather than a regex trying every word start.
        text = scan.text
        out: Spans = []
        at = text.find("@")
        while at != -1:
            scan.tick()
            start = at
            while start > 0 and text[start - 1] in _LOCAL_CHARS:
                start -= 1
            if start < at:
                domain = _EMAIL_DOMAIN.match(text, at + 1)
                if domain is not None:
                    out.append((start, domain.end()))
            at = text.find("@", at + 1)
        return out


# -- phone --------------------------------------------------------------------------------------

# A run of digit groups with phone-ish separators, from its first digit ("+" and "(" before it are
# taken in by ``_phone_start``). Possessive: a long run of digits and spaces cannot backtrack.
_PHONE_RUN = re.compile(
    r"[0-9](?<![0-9][0-9])"
    # At least 8 digits ahead (the shortest international number), checked inside the engine
    # so the many short numbers of a text never cost a Python-level match.
    r"(?=(?:[ .\-()\u00a0]{0,3}[0-9]){7})"
    r"[0-9]*+\)?(?:(?:[ .\-\u00a0]|[ ]-[ ]|\)[ ]?)?\(?[0-9]++\)?)*+"
)
# How US numbers are written: 2125551234, 12125551234, 212-555-1234, 1-212-555-1234, (212) 5551234.
_US_SHAPES = frozenset({(10,), (11,), (3, 3, 4), (1, 3, 3, 4), (3, 7)})
_PHONE_SIZES = (1, 2, 3, 4, 5, 6)
_US_FIRST_GROUPS = frozenset(shape[0] for shape in _US_SHAPES)
# NANP: area code and exchange start with 2-9; a cheap filter before phonenumbers (slow).
_NANP = re.compile(r"1?[2-9][0-9]{2}[2-9][0-9]{6}")


def _phone_shape(run: str) -> Shape:
    international = run.startswith("+")

    def shape(window: tuple[int, ...], first: int) -> bool:
        if international and first == 0:
            return len(window) <= 6 and 8 <= sum(window) <= 15
        return window in _US_SHAPES

    return shape


def _phone_score(s: str, window: tuple[int, ...]) -> tuple[int, ...] | None:
    international = s.startswith("+")
    if not international and not _NANP.fullmatch("".join(_DIGIT_GROUP.findall(s))):
        return None
    try:
        number = phonenumbers.parse(s, "US")
    except phonenumbers.NumberParseException:
        return None
    # US first: is_valid_number tries all 25 regions of country code 1 one by one.
    if not (
        (number.country_code == 1 and phonenumbers.is_valid_number_for_region(number, "US"))
        or phonenumbers.is_valid_number(number)
    ):
        return None
    if not international or len(window) == 1:
        return (1, sum(window))
    # Prefer the window grouped as the number is written ("+1 212 555 1234 5678").
    fmt = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    expected = tuple(len(g) for g in _DIGIT_GROUP.findall(fmt))
    return (int(window == expected), sum(window))


def _phone_extend(run: str, start: int, end: int) -> tuple[int, int]:
    if start > 0 and run[start - 1] == "(":
        start -= 1
    if start > 0 and run[0] == "+" and run[:start].strip("+ ") == "":
        start = 0
    if end < len(run) and run[end] == ")" and "(" in run[start:end]:
        end += 1
    return start, end


# The start of the second digit group of a run.
_NEXT_GROUP = re.compile(r"[0-9]+[^0-9]+([0-9])")


def _phone_start(text: str, start: int) -> int:
    if start > 0 and text[start - 1] == "(":
        start -= 1
    if start > 0 and text[start - 1] == "+":
        return start - 1
    if start > 1 and text[start - 2 : start] == "+ ":
        return start - 2
    return start


class PhoneDetector:
    rule_id = "phone"
    kind = "PHONE"
    priority = PRIORITY["phone"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        seen: dict[str, tuple[int, ...] | None] = {}

        def score(s: str, window: tuple[int, ...]) -> tuple[int, ...] | None:
            if s not in seen:
                seen[s] = _phone_score(s, window)
            return seen[s]

        text = scan.text
        for pos, endpos in scan.digit_windows():
            for m in _PHONE_RUN.finditer(text, pos, endpos):
                scan.check()
                base = _phone_start(text, m.start())
                if _preceded_by(text, base, "_+."):
                    # The first group is glued to a word ("ID_1 (212) 555-1234"): not part of
                    # a number, but the groups after it may be one.
                    rest = _NEXT_GROUP.search(text, m.start(), m.end())
                    if rest is None:
                        continue
                    base = _phone_start(text, rest.start(1))
                if m.end() - base < 9:
                    continue
                run = text[base : m.end()]
                groups, lengths = _digit_groups(run)
                if run[0] != "+" and _US_FIRST_GROUPS.isdisjoint(lengths):
                    continue  # no US number can start in this run (a card, a date...)
                found = _group_windows(
                    run,
                    groups,
                    lengths,
                    _PHONE_SIZES,
                    _phone_shape(run),
                    score,
                    _phone_extend,
                    scan.check,
                )
                out.extend((base + s, base + e) for s, e in found)
        return out


# -- payment card -------------------------------------------------------------------------------

# 13 digits or more (checked inside the engine), single spaces or dashes between groups.
# Not the decimals of a number (0.9468822170900693): those digits are not an identifier.
_CARD_RUN = re.compile(r"[0-9](?<![0-9][0-9])(?<![0-9]\.[0-9])(?:[ \-]?[0-9]){12}(?:[ \-]?[0-9])*+")
# Digit group layouts cards are written in: 4-4-4-4(-3), 4-4-4-1, Amex 4-6-5, Diners 4-6-4.
# A free grouping would let any 13 digits of a table of numbers pass Luhn (1 in 10).
_CARD_LAYOUTS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 6, 5), (4, 6, 4)})
_CARD_SIZES = (1, 3, 4, 5)


def _card_shape(window: tuple[int, ...], first: int) -> bool:
    return (len(window) == 1 and 13 <= window[0] <= 19) or window in _CARD_LAYOUTS


def _card_score(s: str, window: tuple[int, ...]) -> tuple[int, ...] | None:
    compact = s.replace(" ", "").replace("-", "")
    if compact.count("0") == len(compact) or not stdnum_luhn.is_valid(compact):
        return None
    return (len(compact),)


class CardDetector:
    rule_id = "card"
    kind = "CARD"
    priority = PRIORITY["card"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        for pos, endpos in scan.digit_windows():
            for m in _CARD_RUN.finditer(scan.text, pos, endpos):
                scan.check()
                run = m.group()
                if len(run) < 13:
                    continue
                groups, lengths = _digit_groups(run)
                if 4 not in lengths and max(lengths) < 13:
                    continue
                found = _group_windows(
                    run, groups, lengths, _CARD_SIZES, _card_shape, _card_score, check=scan.check
                )
                out.extend((m.start() + s, m.start() + e) for s, e in found)
        return out


# -- IBAN ---------------------------------------------------------------------------------------

# Matched from the check digits (a digit class the engine scans for quickly); the lookbehind
# asks for the two-letter country code before them. At most 30 more characters (an IBAN has 34
# at most): unbounded, a long run of groups ("DE89 DE89 ...") was matched whole from every
# country code in it, and every separator of it tried as an end: cubic in the run's length.
_IBAN_MORE = 30
_IBAN_RUN = re.compile(
    r"[0-9](?<=(?<![A-Za-z0-9])[A-Za-z]{2}[0-9])[0-9]"
    rf"(?:[ \-]?[A-Za-z0-9]){{0,{_IBAN_MORE}}}+"
)
_IBAN_SEP = re.compile(r"[ \-]")


def _valid_iban(s: str) -> bool:
    compact = s.replace(" ", "").replace("-", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    # The mod-97 check first: stdnum's full validation (country formats) costs ~100 us.
    rearranged = compact[4:] + compact[:4]
    if int("".join(str(int(c, 36)) for c in rearranged)) % 97 != 1:
        return False
    return bool(stdnum_iban.is_valid(compact))


class IbanDetector:
    rule_id = "iban"
    kind = "IBAN"
    priority = PRIORITY["iban"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        text = scan.text
        seen: dict[str, bool] = {}
        for pos, endpos in scan.digit_windows():
            while (m := _IBAN_RUN.search(text, pos, endpos)) is not None:
                scan.check()
                start = m.start() - 2
                run = text[start : m.end()]
                pos = m.start() + 1
                if len(run) < 15:
                    continue
                # The country code anchors the start; trailing groups may be the words after
                # it, or the next IBAN of a list (so the scan goes on where a valid one ends).
                # The whole run is a candidate only where it really ends (not cut at the cap).
                ends = [g.start() for g in reversed(list(_IBAN_SEP.finditer(run)))]
                if m.end() == endpos or not text[m.end()].isalnum():
                    ends.insert(0, len(run))
                for end in ends:
                    candidate = run[:end]
                    if candidate not in seen:
                        seen[candidate] = _valid_iban(candidate)
                    if seen[candidate]:
                        out.append((start, start + end))
                        pos = start + end
                        break
        return out


# -- US SSN -------------------------------------------------------------------------------------

_SSN = re.compile(r"[0-9](?<![0-9][0-9])[0-9]{2}([\- ]?)[0-9]{2}\1[0-9]{4}(?![0-9])")
# Nine bare digits are an SSN only when the text says so just before.
_SSN_CONTEXT = re.compile(r"\bssn\b|social[ \-]security")


def _valid_ssn(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


class SsnDetector:
    rule_id = "ssn"
    kind = "SSN"
    priority = PRIORITY["ssn"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        text = scan.text
        for pos, endpos in scan.digit_windows():
            for m in _SSN.finditer(text, pos, endpos):
                scan.tick()
                s = m.group()
                if not m.group(1):
                    before = text[max(0, m.start() - 40) : m.start()].lower()
                    if not _SSN_CONTEXT.search(before):
                        continue
                    digits = s
                else:
                    digits = s[:3] + s[4:6] + s[7:]
                if _valid_ssn(digits):
                    out.append(m.span())
        return out


# -- IP -----------------------------------------------------------------------------------------

_IPV4 = re.compile(
    r"[0-9](?<![\w.][0-9])[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?!\w|\.[0-9])",
    re.ASCII,
)
_IPV6_GATE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_RUN = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]++(?![\w])", re.ASCII
)


def _plausible_ipv6(s: str) -> bool:
    # "::2" (a slice), "a::b" are valid addresses but far more often code; ask for some meat.
    groups = [g for g in s.replace(".", ":").split(":") if g]
    return len(groups) >= 3 or any(len(g) >= 3 for g in groups)


def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


class IpDetector:
    rule_id = "ip"
    kind = "IP"
    priority = PRIORITY["ip"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = []
        text = scan.text
        for pos, endpos in scan.digit_windows():
            for m in _IPV4.finditer(text, pos, endpos):
                scan.tick()
                try:
                    ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                out.append(m.span())
        if ":" in text and _IPV6_GATE.search(text):
            for m in _IPV6_RUN.finditer(text):
                scan.tick()
                cand = m.group()
                for c in (cand, cand.rstrip("."), cand.rstrip(".:")):
                    if c and _plausible_ipv6(c) and _is_ipv6(c):
                        out.append((m.start(), m.start() + len(c)))
                        break
        return out


# -- secrets ------------------------------------------------------------------------------------

_TOKEN_END = r"(?![A-Za-z0-9_\-])"
# (gate, literals one of which the text must contain, pattern). ``in`` on a str is far faster
# than any regex scan, so a text without a key-shaped prefix costs a few of those and no regex.
# A one-character gate ("_", "-") is memchr-fast and spares the longer literals in most prose.
_SECRET_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (gate, literals, re.compile(pattern))
    for gate, literals, pattern in (
        # OpenAI sk-..., sk-proj-..., Anthropic sk-ant-...
        ("-", ("sk-",), r"(?<![\w\-])sk-[A-Za-z0-9_\-]{20,}"),
        ("-", ("xox",), r"(?<![\w\-])xox[a-z]-[A-Za-z0-9\-]{10,}"),  # Slack
        (
            "A",
            ("IA", "ACCA"),  # AWS access key ids: AKIA, ASIA, ABIA, ACCA
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        ),
        ("A", ("AIza",), r"(?<![\w\-])AIza[0-9A-Za-z_\-]{35}" + _TOKEN_END),  # Google
        (
            "_",
            ("gh", "github_pat_"),
            r"(?<![\w\-])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        ),
        ("_", ("_live_",), r"(?<![\w\-])[sr]k_live_[A-Za-z0-9]{16,}"),  # Stripe
        ("_", ("hf_", "gsk_"), r"(?<![\w\-])(?:hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{40,})"),
        # JWT: the JSON header '{"' encodes as "eyJ".
        (".", ("eyJ",), r"(?<![\w\-])eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
        (
            "",
            ("ecret", "ECRET"),
            r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?"
            r"(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        ),
    )
)


# PEM private keys are found by ``_pem_spans``, not by one regex: a lazy ``[\s\S]*?-----END``
# scans to the end of the text from every header without a footer, quadratic in the number
# of headers (224 KB of them took 9 s).
_PEM_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY-----")
# An unterminated block (a truncated paste) still hides its key material.
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s\\:,.\-]*+")


def _pem_spans(scan: Scan) -> Spans:
    """Each header to its first footer, or to the end of its key material without one."""
    text = scan.text
    out: Spans = []
    if "-----BEGIN" not in text:
        return out
    footer: re.Match[str] | None = None
    searched_from = len(text) + 1  # where ``footer`` was looked for (the first one from there)
    pos = 0
    while (head := _PEM_BEGIN.search(text, pos)) is not None:
        scan.check()
        # The first footer found from an earlier point is still the first one from here, as
        # long as it lies ahead; so the text is searched for footers once, not per header.
        if searched_from > head.end() or (footer is not None and footer.start() < head.end()):
            footer = _PEM_END.search(text, head.end())
            searched_from = head.end()
        if footer is not None:
            end = footer.end()
        else:
            body = _PEM_BODY.match(text, head.end())
            end = body.end() if body is not None else head.end()
        out.append((head.start(), end))
        pos = end
    return out


def _is_jwt(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


class SecretDetector:
    rule_id = "secret"
    kind = "SECRET"
    priority = PRIORITY["secret"]

    def spans(self, scan: Scan) -> Spans:
        out: Spans = _pem_spans(scan)
        text = scan.text
        for gate, literals, pattern in _SECRET_PATTERNS:
            if gate not in text or not any(lit in text for lit in literals):
                continue
            for m in pattern.finditer(text):
                scan.tick()
                token = m.group()
                if token.startswith("sk-") and not any("0" <= c <= "9" for c in token):
                    continue  # "sk-" words such as CSS class names: a key always has digits
                if token.startswith("eyJ") and not _is_jwt(token):
                    continue
                out.append(m.span("value") if pattern.groupindex else m.span())
        return out


def builtin_detector(rule_id: str) -> Detector:
    factories: dict[str, Callable[[], Detector]] = {
        "email": EmailDetector,
        "phone": PhoneDetector,
        "card": CardDetector,
        "iban": IbanDetector,
        "ssn": SsnDetector,
        "ip": IpDetector,
        "secret": SecretDetector,
    }
    return factories[rule_id]()
