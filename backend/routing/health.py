"""Circuit breakers, so a model or provider that is down is skipped without waiting for it.

One breaker per ``(provider, model)`` and one per provider:

    closed ──N consecutive failures──► open ──cooldown elapsed──► half-open
      ▲                                  ▲                          │ one trial request
      └──────────── trial succeeds ──────┼──── trial fails ─────────┘

- A model breaker counts every retryable failure of that model (5xx, 429, timeouts, connection
  errors, 401/402/403 of the provider).
- The provider breaker counts only failures that concern the whole provider: connection errors
  and timeouts (``UpstreamUnavailable``/``UpstreamTimeout``) and the provider refusing our
  credential or billing (401/402/403). Any answer of the provider, even a model's 500, proves it
  reachable and resets it. When it is open, every model of that provider is skipped.
- Configuration problems (``ProviderNotConfigured``) never reach a breaker: the fallback executor
  skips them before asking for a grant.
- Each breaker keeps its last failure's message (scrubbed, clipped), so a request refused because
  the circuit is open learns the real cause (``describe``).
- Half-open lets exactly one request through (``acquire``); until it reports, others are
  skipped. An attempt that ends without a verdict (cancelled, or the caller's own 400) gives the
  trial back (``release``).

Time comes from an injected monotonic ``clock``; ``since`` shown to the admin API comes from an
injected ``wall`` clock (epoch seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from backend.ir.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from backend.protocols.openai_chat.errors import scrub

State = Literal["closed", "open", "half_open"]

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 30.0

_PROVIDER_WIDE_CODES = frozenset({"upstream_401", "upstream_402", "upstream_403"})
#: The last cause is shown to every caller refused by the open circuit: keep it short.
_MAX_CAUSE = 200


def is_provider_wide(err: GatewayError) -> bool:
    """Does ``err`` say the provider (not just one model) is unusable?"""
    return (
        isinstance(err, (UpstreamUnavailable, UpstreamTimeout)) or err.code in _PROVIDER_WIDE_CODES
    )


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._wall = wall
        self._on_change = on_change
        self._state: State = "closed"
        self._opened_at = 0.0
        self._trial = False
        #: Consecutive failures (reset by a success).
        self.failures = 0
        #: Wall time of the last state change, ``None`` while never changed.
        self.since: float | None = None
        #: The last failure's message, scrubbed of anything key-like.
        self.last_error: str | None = None

    @property
    def state(self) -> State:
        self._tick()
        return self._state

    def available(self) -> bool:
        """Would ``acquire`` succeed now? (No side effect.)"""
        self._tick()
        return self._state == "closed" or (self._state == "half_open" and not self._trial)

    def acquire(self) -> bool:
        """Take permission for one request; in half-open this is the single trial."""
        if not self.available():
            return False
        if self._state == "half_open":
            self._trial = True
        return True

    def success(self) -> None:
        self.failures = 0
        self._trial = False
        if self._state != "closed":
            self._set("closed")

    def failure(self, err: GatewayError | None = None) -> None:
        if err is not None:
            text = scrub(err.message)
            self.last_error = text if len(text) <= _MAX_CAUSE else text[:_MAX_CAUSE] + "..."
        self.failures += 1
        self._tick()
        if self._state == "half_open":
            self._trial = False
            self._open()
        elif self._state == "closed" and self.failures >= self.threshold:
            self._open()

    def release(self) -> None:
        """An attempt ended without telling anything about health: free the trial."""
        self._trial = False

    def describe(self, subject: str) -> str:
        """Why ``subject`` is skipped now, e.g. "circuit open for openai after 5 failures; last:
        openai: upstream connection refused"."""
        state = self.state
        if state == "half_open":
            text = f"circuit half-open for {subject}: a trial request is under way"
        else:
            n = self.failures
            text = f"circuit {state} for {subject} after {n} failure{'' if n == 1 else 's'}"
        return f"{text}; last: {self.last_error}" if self.last_error else text

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set("open")

    def _set(self, state: State) -> None:
        self._state = state
        self.since = self._wall()
        if self._on_change is not None:
            self._on_change(state)

    def _tick(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            self._trial = False
            self._set("half_open")


class HealthRegistry:
    """The breakers of every provider and model seen so far, created on first use."""

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        provider_threshold: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.provider_threshold = provider_threshold or threshold
        self.clock = clock
        self.wall = wall
        self._models: dict[tuple[str, str], CircuitBreaker] = {}
        self._providers: dict[str, CircuitBreaker] = {}
        #: Told of every breaker's state change: ``(provider, model or None, state)`` (metrics).
        self.on_change: Callable[[str, str | None, State], None] | None = None

    def model(self, provider: str, model: str) -> CircuitBreaker:
        b = self._models.get((provider, model))
        if b is None:
            b = self._models[(provider, model)] = CircuitBreaker(
                threshold=self.threshold,
                cooldown_s=self.cooldown_s,
                clock=self.clock,
                wall=self.wall,
                on_change=self._listener(provider, model),
            )
        return b

    def provider(self, provider: str) -> CircuitBreaker:
        b = self._providers.get(provider)
        if b is None:
            b = self._providers[provider] = CircuitBreaker(
                threshold=self.provider_threshold,
                cooldown_s=self.cooldown_s,
                clock=self.clock,
                wall=self.wall,
                on_change=self._listener(provider, None),
            )
        return b

    def _listener(self, provider: str, model: str | None) -> Callable[[State], None] | None:
        on_change = self.on_change
        if on_change is None:
            return None
        return lambda state: on_change(provider, model, state)

    def available(self, provider: str, model: str) -> bool:
        # Looks without creating: the catalog asks about hundreds of models never called.
        p = self._providers.get(provider)
        m = self._models.get((provider, model))
        return (p is None or p.available()) and (m is None or m.available())

    def acquire(self, provider: str, model: str) -> bool:
        if not self.available(provider, model):
            return False
        # Both were available and nothing ran in between, so both grants succeed.
        self.provider(provider).acquire()
        self.model(provider, model).acquire()
        return True

    def record_success(self, provider: str, model: str) -> None:
        self.provider(provider).success()
        self.model(provider, model).success()

    def record_failure(self, provider: str, model: str, err: GatewayError) -> None:
        self.model(provider, model).failure(err)
        if is_provider_wide(err):
            self.provider(provider).failure(err)
        else:
            self.provider(provider).success()

    def release(self, provider: str, model: str) -> None:
        self.provider(provider).release()
        self.model(provider, model).release()

    def describe(self, provider: str, model: str) -> str:
        """Why ``provider/model`` is unavailable now (the provider's circuit first)."""
        p = self._providers.get(provider)
        if p is not None and not p.available():
            return p.describe(f"provider {provider}")
        m = self._models.get((provider, model))
        if m is not None and not m.available():
            return m.describe(f"{provider}/{model}")
        return f"{provider}/{model} is available"

    def rows(self) -> list[dict[str, Any]]:
        """One row per breaker for the admin API; ``model`` is ``None`` on provider rows."""
        out: list[dict[str, Any]] = []
        for name, b in sorted(self._providers.items()):
            out.append(_row(name, None, b))
        for (provider, model), b in sorted(self._models.items()):
            out.append(_row(provider, model, b))
        return out


def _row(provider: str, model: str | None, b: CircuitBreaker) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "state": b.state,
        "failures": b.failures,
        "since": b.since,
        "kind": "breaker",
    }
