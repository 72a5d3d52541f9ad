"""What runs inside a DLP scan process (``backend.dlp.pool``): top-level, picklable functions.

The gateway sends ``(policy, subject, deadline)``: the whole request (chat or embeddings) or
text, and the process runs the very redaction the gateway would run inline, so the redacted
request, its placeholders and their numbering are the inline path's by construction. Sending the
whole walk rather than texts to scan and spans back is what keeps the loop free: for 6 MB of
adversarial text (174k matches of a few distinct values), unpickling the spans took 309 ms and
replaying them into a vault 119 ms, against 0.4 ms to unpickle the redacted request and its
vault (61 ms for 132k *distinct* values, the worst case). Unpickling runs in the executor's
result thread, pickling in its feeder thread (7 ms for 6 MB), not on the loop.

The answer is a tagged tuple rather than an exception object, so nothing a detector raised
(whose message might quote the scanned text) is pickled back, and the gateway's error classes
never cross the process boundary:

- ``("ok", (redacted, vault, findings))``: what ``redact_subject`` returns;
- ``("timeout",)``: ``deadline`` (a ``time.monotonic()`` value: CLOCK_MONOTONIC is system-wide on
  Linux, so the gateway's and the process's clocks agree) passed before the scan ended;
- ``("failure", rule_id)``: a detector failed (or the policy no longer compiles: ``"policy"``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from backend.dlp.errors import DlpFailure, DlpTimeout
from backend.dlp.redact import Redactor, Subject, redact_subject
from backend.dlp.rules import DlpPolicy, InvalidRule

Result = tuple[Any, ...]

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
    """The pool's initializer: load and compile what the first scan would need."""
    # Not niced: on a host busy with other work a niced scan got ~0.1 s of CPU in 2 s, and
    # legitimate large bodies timed out; the event loop wins its wake-ups from the scheduler
    # anyway (the GIL, not the CPU, was what made other tenants wait).
    _redactor(DlpPolicy()).find(_WARM_TEXT)


def ready() -> int:
    """A no-op the gateway submits to start the processes; returns the process id."""
    return os.getpid()


def redact(policy: DlpPolicy, subject: Subject, deadline: float) -> Result:
    """``redact_subject`` under ``policy``, or why it could not (see the module docstring)."""
    try:
        redactor = _redactor(policy)
    except InvalidRule:
        return ("failure", "policy")
    try:
        return ("ok", redact_subject(subject, redactor, deadline=deadline))
    except DlpTimeout:
        return ("timeout",)
    except DlpFailure as exc:
        return ("failure", exc.rule)
