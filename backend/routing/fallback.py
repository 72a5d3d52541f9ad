"""The fallback executor: try candidates in order, retry with backoff, skip open circuits.

``run_with_fallback(candidates, attempt, router_state=...)`` calls ``attempt(model, n)`` (``n``
counts attempts from 1 across all models) and returns ``(result, model, attempts)``.

- Candidates are tried in the given order (the strategy's); one whose circuit is open (model or
  provider) is skipped without calling it.
- A candidate whose provider the gateway cannot use (``ProviderNotConfigured``: no credential,
  disabled, broken; told by ``usable(model)`` before the breaker is asked, or raised by
  ``attempt``) is skipped too. That is configuration, not an outage: it is not an attempt, is not
  reported to ``on_attempt_failed`` and never touches a breaker.
- If no candidate could be tried, the error is the first skipped candidate's reason: its
  ``ProviderNotConfigured``, or ``UpstreamUnavailable`` (code ``circuit_open``) naming each open
  circuit with its failure count and last real cause ("circuit open for openai/gpt-4o after 5
  failures; last: openai: upstream connection refused").
- A retryable ``GatewayError`` (``err.retryable``: provider 5xx, 429, 401/402/403, timeouts,
  connection errors) is retried on the same model up to ``max_retries_per_model`` times with
  exponential backoff and full jitter, ``sleep(rand() * min(backoff_max_s, backoff_base_s *
  2**k))`` for the k-th retry, then the next candidate is tried at once. Credential and billing
  refusals (401/402/403) move on without a same-model retry: they do not heal in a second.
- A non-retryable ``GatewayError`` (the caller's 400, 404, 413...) propagates at once.
- Anything else (a bug, cancellation) propagates at once and leaves the breakers as they were.
- At most ``len(candidates) * (1 + max_retries_per_model)`` attempts.
- When everything failed, the last error is raised unchanged.

``on_attempt_failed(model, n, error)`` (sync or async) is called once for every attempt that
raised a ``GatewayError``, the last one included: on failure the number of calls is the number of
attempts, on success it is ``attempts - 1``.

Outcomes feed ``router_state``: latency and success on a result, failure on a retryable error.
The latency sample is the time ``attempt`` took.

Streams: fallback is only possible before the first byte reached the client. The pipeline's
``attempt`` for a stream therefore returns only once the first event arrived (raising if the
upstream refused before it), and returns that event with the rest of the iterator. The latency
sample is then the time to first event. Failures after that are the pipeline's to report (it may
call ``router_state.record_failure``); this function never sees them.

In-flight counting is the caller's: hold ``router.in_flight(model)`` for as long as the answer
runs (the whole stream, not just until its first event).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from backend.ir.errors import GatewayError, ProviderNotConfigured, UpstreamUnavailable

T = TypeVar("T")

_NO_SAME_MODEL_RETRY = frozenset({"upstream_401", "upstream_402", "upstream_403"})


class FallbackState(Protocol):
    """What the executor needs from the router (``Router`` and ``RouterState`` provide it)."""

    def clock(self) -> float: ...
    def available(self, model: str) -> bool: ...
    def acquire(self, model: str) -> bool: ...
    def record_success(self, model: str, latency_s: float) -> None: ...
    def record_failure(self, model: str, error: GatewayError) -> None: ...
    def release(self, model: str) -> None: ...
    def why_unavailable(self, model: str) -> str: ...


OnAttemptFailed = Callable[[str, int, GatewayError], Any]


async def run_with_fallback(
    candidates: Sequence[str],
    attempt: Callable[[str, int], Awaitable[T]],
    *,
    router_state: FallbackState | None = None,
    router: FallbackState | None = None,
    max_retries_per_model: int = 1,
    backoff_base_s: float = 0.2,
    backoff_max_s: float = 2.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    on_attempt_failed: OnAttemptFailed | None = None,
    usable: Callable[[str], None] | None = None,
) -> tuple[T, str, int]:
    """See the module docstring. ``router`` is an alias of ``router_state``."""
    state = router_state if router_state is not None else router
    if state is None:
        raise TypeError("run_with_fallback needs router_state")
    if not candidates:
        raise UpstreamUnavailable("no candidate models to try", code="no_candidates")
    retries = max(0, max_retries_per_model)
    attempts = 0
    last_error: GatewayError | None = None
    #: Why each candidate that was never tried was skipped (``None``: its circuit is open).
    skipped: list[tuple[str, ProviderNotConfigured | None]] = []

    for model in dict.fromkeys(candidates):
        if usable is not None:
            try:
                usable(model)
            except ProviderNotConfigured as err:
                skipped.append((model, err))
                continue
        for k in range(retries + 1):
            if k > 0:
                if not state.available(model):
                    break  # the failures just seen opened its circuit
                await sleep(rand() * min(backoff_max_s, backoff_base_s * (2 ** (k - 1))))
            if not state.acquire(model):
                if k == 0:
                    skipped.append((model, None))
                break
            attempts += 1
            started = state.clock()
            try:
                result = await attempt(model, attempts)
            except ProviderNotConfigured as err:
                # The configuration changed since ``usable`` looked: still not an attempt.
                state.release(model)
                attempts -= 1
                if k == 0:
                    skipped.append((model, err))
                break
            except GatewayError as err:
                if not err.retryable:
                    state.release(model)
                    await _notify(on_attempt_failed, model, attempts, err)
                    raise
                state.record_failure(model, err)
                last_error = err
                await _notify(on_attempt_failed, model, attempts, err)
                if err.code in _NO_SAME_MODEL_RETRY:
                    break
                continue
            except BaseException:
                state.release(model)
                raise
            state.record_success(model, state.clock() - started)
            return result, model, attempts

    if last_error is not None:
        raise last_error
    if skipped and skipped[0][1] is not None:
        raise skipped[0][1]
    raise _circuit_open(state, [m for m, err in skipped if err is None])


def _circuit_open(state: FallbackState, models: list[str]) -> UpstreamUnavailable:
    reasons = [state.why_unavailable(m) for m in models]
    text = reasons[0] if len(reasons) == 1 else "all candidates unavailable: " + " | ".join(reasons)
    return UpstreamUnavailable(text, code="circuit_open", detail={"candidates": models})


async def _notify(callback: OnAttemptFailed | None, model: str, n: int, err: GatewayError) -> None:
    if callback is None:
        return
    out = callback(model, n, err)
    if inspect.isawaitable(out):
        await out
