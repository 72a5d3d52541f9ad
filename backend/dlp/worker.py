"""What runs inside a DLP scan process (``backend.dlp.pool``): top-level, picklable functions.

The gateway sends ``(policy, texts, deadline)``; the process answers with a tagged tuple rather
than an exception object, so nothing a detector raised (whose message might quote the scanned
text) is pickled back, and the gateway's error classes never cross the process boundary:

- ``("ok", spans)``: one list of ``Span`` per text, in the order of ``texts``;
- ``("timeout",)``: ``deadline`` (a ``time.monotonic()`` value: CLOCK_MONOTONIC is system-wide on
  Linux, so the gateway's and the process's clocks agree) passed before the scan ended;
- ``("failure", rule_id)``: a detector failed (or the policy no longer compiles: ``"policy"``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from backend.dlp.detectors import Span
from backend.dlp.errors import DlpFailure, DlpTimeout
from backend.dlp.redact import Redactor
from backend.dlp.rules import DlpPolicy, InvalidRule

Result = tuple[Any, ...]

#: Niceness added to a scan process: when scans and the gateway's event loop compete for the
#: CPU, the loop (every other tenant's requests) wins; a scan only loses time it has a deadline
#: for anyway.
NICENESS = 10

#: Text that makes every built-in detector load what it loads lazily (phone metadata, validators).
_WARM_TEXT = (
    "mail a@b.co, call +1 212 555 1234 or (415) 555-2671, card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, SSN 078-05-1120, ip 10.0.0.1 fe80::1, key sk-" + "a" * 40
)


@functools.lru_cache(maxsize=64)
def _redactor(policy: DlpPolicy) -> Redactor:
    # Per process and keyed by the frozen policy value: compiling custom rules costs more than
    # a small scan, and the same few policies come back request after request.
    return Redactor.from_policy(policy)


def warm() -> None:
    """The pool's initializer: lower the priority, then load what the first scan would."""
    try:
        os.nice(NICENESS)
    except OSError:
        pass  # not permitted here: the process still isolates the GIL
    _redactor(DlpPolicy()).find(_WARM_TEXT)


def ready() -> int:
    """A no-op the gateway submits to start the processes; returns the process id."""
    return os.getpid()


def scan_texts(policy: DlpPolicy, texts: list[str], deadline: float) -> Result:
    """The spans of each text under ``policy``, or why there are none (see the module doc)."""
    try:
        redactor = _redactor(policy)
    except InvalidRule:
        return ("failure", "policy")
    out: list[list[Span]] = []
    try:
        for text in texts:
            out.append(redactor.find(text, deadline))
    except DlpTimeout:
        return ("timeout",)
    except DlpFailure as exc:
        return ("failure", exc.rule)
    return ("ok", out)
