"""argon2 off the event loop: a small thread pool with a bounded backlog.

argon2 is deliberately slow and memory-hard (~50 ms and 64 MiB per hash); run on the event loop
it stalls every request of the process while it works. argon2-cffi releases the GIL, so a worker
thread really runs beside the loop. The backlog is bounded: when ``workers + queue`` jobs are
already running or waiting, a new one is refused at once (``PasswordWorkersBusy``) rather than
queued, so a login flood costs a refusal each, not unbounded memory and latency.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from backend.security import passwords

T = TypeVar("T")


class PasswordWorkersBusy(Exception):
    """Every worker is busy and the backlog is full."""


class PasswordWorkers:
    def __init__(self, workers: int = 2, queue: int = 16) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("password workers need at least one thread and a queue >= 0")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="passwords")
        self._limit = workers + queue
        # Released from the worker thread when a job ends, including jobs whose caller was
        # cancelled meanwhile (the thread still runs them): hence a lock, not loop-only state.
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting for a worker."""
        return self._pending

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._run(passwords.verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(passwords.hash_password, password)

    async def run(self, fn: Callable[[], T]) -> T:
        """Any other blocking password work (tests use it to occupy a worker)."""
        return await self._run(fn)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self._limit:
                raise PasswordWorkersBusy
            self._pending += 1
        try:
            job: Future[T] = self._pool.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        job.add_done_callback(self._release)
        return await asyncio.wrap_future(job)

    def _release(self, _job: object) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        # Queued jobs are dropped; a running hash finishes in its thread (it cannot be stopped).
        self._pool.shutdown(wait=False, cancel_futures=True)
