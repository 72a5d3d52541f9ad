"""``ScanProcesses``: the bounded pool of processes that run large DLP scans.

Why processes: the built-in detectors are Python code that holds the GIL. In a thread, a 6 MB
adversarial body (3-6.5 s of CPU) slowed every other tenant's requests by GIL convoying (a quiet
tenant's p50 went from 1.3 ms to ~35-40 ms, p99 ~110 ms). A process has its own GIL.

- Processes are started with ``spawn``, never ``fork``: forking the running gateway would copy
  its event loop, sockets and locks into the child mid-use. A spawned process imports only what
  ``backend.dlp.worker`` needs (~31 MB RSS, ~19 MB PSS, 0.11 s to start and warm on an idle
  2-core host).
- No process runs until the first scan that needs one (the gateway does not call ``start``):
  an idle process is ~45 MB of the gateway's RSS (with multiprocessing's resource tracker
  ~13 MB more), and most gateways never see a body large enough. The first large scan waits for
  the process to start (0.1 s idle, several seconds on a loaded host; bounded by
  ``START_TIMEOUT_S``) and *then* gets its whole time bound: the start-up is not the scan's time,
  and counting it refused the first large request of a busy gateway with ``dlp_timeout``.
  ``start`` starts one ahead of time for callers that want it. ``ProcessPoolExecutor`` starts
  the others, up to ``size``, only when scans overlap.
- A process that dies (killed, out of memory) breaks a ``ProcessPoolExecutor`` for good: every
  scan in it fails with ``BrokenProcessPool``. The scan that saw it is refused (``ScanLost``,
  fail closed) and the pool is replaced, so the next scan gets a fresh process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from backend.dlp import worker
from backend.dlp.redact import Subject
from backend.dlp.rules import DlpPolicy

log = logging.getLogger("switchboard.dlp")

#: How long a scan waits for a new scan process to start before it is refused (``TimeoutError``).
START_TIMEOUT_S = 30.0


class ScanLost(Exception):
    """The process running a scan died before answering."""


class ScanProcesses:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a scan pool needs at least one process")
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        #: The current pool's first process answering (its initializer has run).
        self._ready: Future[int] | None = None

    def start(self) -> None:
        """Create the pool and start one process now, without waiting for it."""
        self._current()

    def _current(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.size, mp_context=self._context, initializer=worker.warm
            )
            # Starts one process now (the executor starts more only when scans overlap).
            self._ready = self._pool.submit(worker.ready)
        return self._pool

    async def _started(self) -> float:
        """Wait until the pool's first process answers; the seconds waited (0 once it has)."""
        ready = self._ready
        if ready is None or ready.done():
            return 0.0
        began = time.monotonic()
        # Shielded: a caller that gives up must not cancel the start other scans wait for.
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(ready)), START_TIMEOUT_S)
        return time.monotonic() - began

    async def redact(
        self, policy: DlpPolicy, subject: Subject, deadline: float, wait_s: float
    ) -> worker.Result:
        """``worker.redact`` in a process. Raises ``ScanLost`` if the process died and
        ``TimeoutError`` after ``wait_s`` (the scan itself answers ``("timeout",)`` at
        ``deadline``; ``wait_s`` only covers a process that overran it). Both are moved on by
        the time spent waiting for a new process to start."""
        pool = self._current()
        try:
            waited = await self._started()
            work = pool.submit(worker.redact, policy, subject, deadline + waited)
            return await asyncio.wait_for(asyncio.wrap_future(work), wait_s + waited)
        except BrokenProcessPool:
            self._replace(pool)
            raise ScanLost() from None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Several scans may see the same broken pool; only the first replaces it.
        if self._pool is not broken:
            return
        log.error("a DLP scan process died; its scans were refused and the pool is restarted")
        self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)
        self._current()

    async def close(self) -> None:
        """Stop the processes: queued scans are cancelled, a running one ends at its deadline."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
