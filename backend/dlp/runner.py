"""``ScanRunner``: where and for how long a DLP scan may run.

A scan is CPU work proportional to the request (about 13 us per KB of prose, 100-250 us per KB
of code or prose full of values, and up to ~1 us per *character* for adversarial runs of digits
and punctuation: a 6 MB body of them took 3-6.5 s with every built-in rule). On the event loop
that stalls every tenant, so:

- a small scan of built-in rules only runs inline: under ``inline_chars`` (8192 characters by
  default) it costs at most ~9 ms even adversarially (~0.1-2 ms for real text), while handing it
  to a thread costs ~40 us of loop time per request (measured: ``run_in_executor`` round trip
  37 us on this 2-core host, against 0.1 ms to scan 8 KB of prose);
- anything larger, and every scan of a policy with custom rules (an admin's regex is linear per
  RE2 search but its matches can still add up quadratically), runs in ``executor``: a thread pool
  of bounded size owned by the gateway's services (``backend/services.py``), never a module
  global. RE2 and the stdlib ``re`` engine both let the loop thread run between steps (RE2
  releases the GIL during a search);
- every scan has a deadline of ``timeout_s`` from the moment it is asked for, time spent waiting
  for a free thread included. Past it the request is refused with ``DlpTimeout`` (503, code
  ``dlp_timeout``), nothing is sent upstream (fail closed), and the scan itself stops at its
  next check (``Scan.check``), so an abandoned scan frees its thread within one bounded step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from backend.dlp.errors import DlpTimeout

T = TypeVar("T")

#: Scans up to this many characters (built-in rules only) run on the loop; see the docstring.
DEFAULT_INLINE_CHARS = 8192
DEFAULT_TIMEOUT_S = 5.0


class ScanRunner:
    def __init__(
        self,
        executor: Executor,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        inline_chars: int = DEFAULT_INLINE_CHARS,
    ) -> None:
        self._executor = executor
        self.timeout_s = timeout_s
        self.inline_chars = inline_chars

    async def run(self, scan: Callable[[float], T], size: int, *, inline_ok: bool = True) -> T:
        """``scan(deadline)``, inline when small and ``inline_ok``, else in the executor.

        Raises ``DlpTimeout`` when the scan has not finished ``timeout_s`` after the call.
        """
        deadline = time.monotonic() + self.timeout_s
        try:
            if inline_ok and size <= self.inline_chars:
                return scan(deadline)
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._executor, scan, deadline)
            # The scan raises DlpTimeout itself at its next check; the await's own bound (a
            # little later) covers waiting for a thread and a step that overran.
            return await asyncio.wait_for(work, self.timeout_s + 0.25)
        except (DlpTimeout, TimeoutError):
            raise DlpTimeout(self.timeout_s) from None

    async def close(self) -> None:
        """Stop the threads; queued scans are cancelled, a running one ends at its deadline."""
        self._executor.shutdown(wait=False, cancel_futures=True)
