"""``ScanRunner``: where and for how long a DLP scan may run.

A scan is CPU work proportional to the request (about 13 us per KB of prose, 100-250 us per KB
of code or prose full of values, and up to ~1 us per *character* for adversarial runs of digits
and punctuation: a 6 MB body of them took 3-6.5 s with every built-in rule). On the event loop
that stalls every tenant; in a thread it still does, more mildly: the built-in detectors are
Python code holding the GIL, and the loop thread waits for it at every switch (GIL convoying: a
quiet tenant's p50 went from 1.3 ms to ~35-40 ms while one 6 MB body was scanned). So:

- a small scan of built-in rules only runs inline: under ``inline_chars`` (8192 characters by
  default) it costs at most ~9 ms even adversarially (~0.1-2 ms for real text);
- a small scan of a policy with custom rules runs in ``threads`` (an admin's regex is linear
  per RE2 search, but its matches can still add up quadratically, and RE2 releases the GIL):
  a thread hop is cheaper than a process one (measured, 1 KB: 0.11 ms against 0.23 ms of wall
  time, 24 against 39 us of loop time) and the built-in part of a small scan is short;
- anything larger runs in ``processes`` (``backend.dlp.pool``), which have their own GIL. The
  loop pays ~40 us (1 KB) to ~0.6 ms (1 MB) per scan for pickling and the round trip, the same
  order as a thread hop (measured: 0.04/0.08/0.19/0.62 ms of loop time for 1 KB/64 KB/256 KB/
  1 MB); the process runs the whole redaction and the answer is unpickled off the loop
  (``backend.dlp.worker`` says why not spans). Without ``processes``
  (``SWITCHBOARD_DLP_SCAN_PROCESSES=0``), or for a redactor not built from a policy, large
  scans go to the threads as before.

Every scan has a deadline of ``timeout_s`` from the moment it is asked for, time spent waiting
for a free thread or process included. Past it the request is refused with ``DlpTimeout``
(503, code ``dlp_timeout``), nothing is sent upstream (fail closed), and the scan itself stops at
its next check (``Scan.check``), so an abandoned scan frees its worker within one bounded step.
A scan process that dies refuses its request with ``DlpScanLost`` (503) and is replaced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar, overload

from backend.dlp.errors import DlpFailure, DlpScanLost, DlpTimeout
from backend.dlp.pool import ScanLost, ScanProcesses
from backend.dlp.redact import Redactor, Subject, redact_subject
from backend.dlp.rules import DlpPolicy
from backend.dlp.vault import Finding, Vault
from backend.ir.chat import ChatRequest, EmbeddingRequest

T = TypeVar("T")

#: Scans up to this many characters (built-in rules only) run on the loop; see the docstring.
DEFAULT_INLINE_CHARS = 8192
DEFAULT_TIMEOUT_S = 5.0
#: How long past its deadline a worker may take to notice it (one bounded step) and answer.
_GRACE_S = 0.25


class ScanRunner:
    def __init__(
        self,
        threads: Executor,
        processes: ScanProcesses | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        inline_chars: int = DEFAULT_INLINE_CHARS,
    ) -> None:
        self._threads = threads
        self._processes = processes
        self.timeout_s = timeout_s
        self.inline_chars = inline_chars

    async def run(self, scan: Callable[[float], T], size: int, *, inline_ok: bool = True) -> T:
        """``scan(deadline)``, inline when small and ``inline_ok``, else in a thread.

        Raises ``DlpTimeout`` when the scan has not finished ``timeout_s`` after the call.
        """
        deadline = time.monotonic() + self.timeout_s
        try:
            return await self._inline_or_thread(scan, size, deadline, inline_ok)
        except (DlpTimeout, TimeoutError):
            raise DlpTimeout(self.timeout_s) from None

    @overload
    async def redact(
        self, redactor: Redactor, subject: ChatRequest, size: int
    ) -> tuple[ChatRequest, Vault, list[Finding]]: ...
    @overload
    async def redact(
        self, redactor: Redactor, subject: EmbeddingRequest, size: int
    ) -> tuple[EmbeddingRequest, Vault, list[Finding]]: ...
    @overload
    async def redact(
        self, redactor: Redactor, subject: str, size: int
    ) -> tuple[str, Vault, list[Finding]]: ...
    async def redact(self, redactor: Redactor, subject: Subject, size: int) -> Any:
        """``redact_subject(subject, redactor)`` wherever it is cheapest for the gateway:
        inline, in a thread, or in a scan process (see the module docstring).

        Raises ``DlpTimeout`` past ``timeout_s``, ``DlpFailure`` when a detector fails,
        ``DlpScanLost`` when the scan process died.
        """
        if not redactor:
            return redact_subject(subject, redactor)  # no rule on: nothing to scan
        deadline = time.monotonic() + self.timeout_s
        try:
            if self._processes is not None and redactor.policy is not None:
                if size > self.inline_chars:
                    return await self._in_process(redactor.policy, subject, deadline)
            return await self._inline_or_thread(
                lambda d: redact_subject(subject, redactor, deadline=d),
                size,
                deadline,
                not redactor.has_custom,
            )
        except (DlpTimeout, TimeoutError):
            raise DlpTimeout(self.timeout_s) from None

    async def _inline_or_thread(
        self, scan: Callable[[float], T], size: int, deadline: float, inline_ok: bool
    ) -> T:
        if inline_ok and size <= self.inline_chars:
            return scan(deadline)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._threads, scan, deadline)
        # The scan raises DlpTimeout itself at its next check; the await's own bound (a little
        # later) covers waiting for a thread and a step that overran.
        return await asyncio.wait_for(work, max(0.0, deadline - time.monotonic()) + _GRACE_S)

    async def _in_process(self, policy: DlpPolicy, subject: Subject, deadline: float) -> Any:
        assert self._processes is not None
        wait_s = max(0.0, deadline - time.monotonic()) + _GRACE_S
        try:
            result = await self._processes.redact(policy, subject, deadline, wait_s)
        except ScanLost:
            raise DlpScanLost() from None
        if result[0] == "ok":
            return result[1]
        if result[0] == "timeout":
            raise DlpTimeout()
        raise DlpFailure(str(result[1]))

    async def close(self) -> None:
        """Stop the threads and processes; queued scans are cancelled, a running one ends at
        its deadline."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            await self._processes.close()
