"""``Scan``: one text plus the facts several detectors share, each computed once, on demand.

The expensive part of scanning prose is not validation but walking every character with a
regex (about 9 us per KB each in CPython's engine). Values made of digits (cards, phones, SSNs,
IBANs, IPv4) cannot be anywhere but near digits, so ``digit_windows`` finds the digits with
``str.count``/``str.find`` (memchr speed) and hands detectors only the stretches around them.

A scan may carry a deadline (``time.monotonic()`` value): detectors call ``check`` between
bounded steps, so a scan running in a worker thread stops soon after its request was refused
for taking too long, instead of burning the thread to the end.
"""

from __future__ import annotations

import time

from backend.dlp.errors import DlpTimeout

_DIGITS = "0123456789"
#: Window around digits: room for a country code and "+(" before, a value's tail after.
_BEFORE = 4
_AFTER = 40
#: Above one digit per this many characters, finding them one by one costs more than a scan.
_DENSE = 48
#: The fewest digits a digit-made value has (IPv4 1.2.3.4); sparser clusters are skipped.
_MIN_DIGITS = 4


class Scan:
    __slots__ = ("_ticks", "_windows", "deadline", "text")

    def __init__(self, text: str, deadline: float | None = None) -> None:
        self.text = text
        self.deadline = deadline
        self._windows: list[tuple[int, int]] | None = None
        self._ticks = 0

    def check(self) -> None:
        """Raise ``DlpTimeout`` once the deadline has passed."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DlpTimeout()

    def tick(self) -> None:
        """``check`` every 1024th call: for loops whose single step costs a microsecond."""
        self._ticks += 1
        if not self._ticks & 1023:
            self.check()

    def digit_windows(self) -> list[tuple[int, int]]:
        """Disjoint ``(pos, endpos)`` stretches holding every cluster of 4+ ASCII digits.

        Digits closer than ``_AFTER + _BEFORE`` characters form a cluster; a window reaches
        ``_AFTER`` characters past its cluster's last digit and the next digit is further than
        that, so a digit-anchored pattern run with ``finditer(text, pos, endpos)`` finds what it
        would find in the whole text (lookbehinds still see before ``pos``). A cluster with
        fewer digits than any digit-made value has is left out.
        """
        if self._windows is None:
            self._windows = _digit_windows(self.text)
        return self._windows


def _digit_windows(text: str) -> list[tuple[int, int]]:
    n = len(text)
    count = 0
    for d in _DIGITS:
        count += text.count(d)
    if count == 0:
        return []
    if count * _DENSE > n:
        return [(0, n)]
    positions: list[int] = []
    for d in _DIGITS:
        i = text.find(d)
        while i != -1:
            positions.append(i)
            i = text.find(d, i + 1)
    positions.sort()
    windows: list[tuple[int, int]] = []
    start = last = positions[0]
    digits = 0
    for p in positions:
        if p - last > _AFTER + _BEFORE:
            if digits >= _MIN_DIGITS:
                windows.append((max(0, start - _BEFORE), min(n, last + _AFTER + 1)))
            start = p
            digits = 0
        last = p
        digits += 1
    if digits >= _MIN_DIGITS:
        windows.append((max(0, start - _BEFORE), min(n, last + _AFTER + 1)))
    return windows
