"""Live state of each deployment in this instance: load, health and cooldowns.

Health is local (each instance learns from its own calls, as the router's breakers do); the
request windows behind the rpm/tpm limits are shared through Redis (``deployment_limits``).

- A 429 cools the deployment down for the answer's ``Retry-After`` (``DEFAULT_429_COOLDOWN_S``
  without one, at most ``MAX_429_COOLDOWN_S``): it is not sent anything until then.
- A connection error, a timeout or a refused credential (401/402/403) marks it down at once; other
  provider failures (5xx) after ``FAILURES_TO_DOWN`` in a row. Down lasts ``cooldown_s``, doubled
  for each further failure in a row up to ``MAX_DOWN_S``. A deployment that is down is still
  tried as a last resort when nothing else serves the request, so a provider with one deployment
  is never refused without a call (the router's circuit breakers decide that, as before).
- Any success clears both.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from backend.ir.errors import GatewayError, RateLimited, UpstreamTimeout, UpstreamUnavailable
from backend.protocols.openai_chat.errors import scrub

DEFAULT_429_COOLDOWN_S = 5.0
MAX_429_COOLDOWN_S = 60.0
FAILURES_TO_DOWN = 3
MAX_DOWN_S = 300.0
_CREDENTIAL_CODES = frozenset({"upstream_401", "upstream_402", "upstream_403"})
_MAX_CAUSE = 200

Health = Literal["healthy", "degraded", "rate_limited", "down"]


def retry_after_s(err: GatewayError) -> float | None:
    value = err.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from model APIs, the default applies
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(slots=True)
class DeploymentStatus:
    """One deployment's load and health, for the admin API (no secrets)."""

    health: Health
    in_flight: int
    requests: int
    successes: int
    failures: int
    rate_limited: int
    #: Requests this instance did not send because the deployment's own window was full.
    limit_refusals: int
    cooldown_s: float
    last_error: str | None
    last_error_at: float | None


class DeploymentState:
    def __init__(
        self,
        *,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._wall = wall
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.rate_limited = 0
        self.limit_refusals = 0
        self.consecutive = 0
        self.until = 0.0
        self.reason: Literal["rate_limited", "down"] | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        #: What the last admission saw of the shared window (for the headroom weight).
        self.window_requests = 0
        self.window_tokens = 0

    # -- reading -------------------------------------------------------------------------------
    def cooling(self) -> bool:
        return self.reason is not None and self._clock() < self.until

    def rate_limited_now(self) -> bool:
        return self.reason == "rate_limited" and self._clock() < self.until

    def remaining_s(self) -> float:
        return max(0.0, self.until - self._clock()) if self.reason is not None else 0.0

    def headroom(self, rpm: int | None, tpm: int | None) -> float:
        """The free share of the tighter of the two windows (1.0 without limits)."""
        share = 1.0
        if rpm is not None:
            share = min(share, 1.0 - self.window_requests / rpm if rpm > 0 else 0.0)
        if tpm is not None:
            share = min(share, 1.0 - self.window_tokens / tpm if tpm > 0 else 0.0)
        return max(0.0, share)

    def status(self) -> DeploymentStatus:
        health: Health = "healthy"
        if self.cooling():
            health = self.reason or "down"
        elif self.consecutive:
            health = "degraded"
        return DeploymentStatus(
            health,
            self.in_flight,
            self.requests,
            self.successes,
            self.failures,
            self.rate_limited,
            self.limit_refusals,
            round(self.remaining_s(), 1),
            self.last_error,
            self.last_error_at,
        )

    # -- recording -----------------------------------------------------------------------------
    def started(self) -> None:
        self.requests += 1
        self.in_flight += 1

    def ended(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def succeeded(self) -> None:
        self.successes += 1
        self.consecutive = 0
        self.reason = None
        self.until = 0.0

    def failed(self, err: GatewayError) -> None:
        self.failures += 1
        text = scrub(err.message)
        self.last_error = text if len(text) <= _MAX_CAUSE else text[:_MAX_CAUSE] + "..."
        self.last_error_at = self._wall()
        now = self._clock()
        if isinstance(err, RateLimited) or err.status == 429:
            self.rate_limited += 1
            wait = retry_after_s(err)
            wait = DEFAULT_429_COOLDOWN_S if wait is None else min(wait, MAX_429_COOLDOWN_S)
            self.reason, self.until = "rate_limited", now + wait
            return
        self.consecutive += 1
        outage = isinstance(err, (UpstreamUnavailable, UpstreamTimeout))
        if outage or err.code in _CREDENTIAL_CODES or self.consecutive >= FAILURES_TO_DOWN:
            extra = max(0, self.consecutive - (1 if outage else FAILURES_TO_DOWN))
            wait = min(MAX_DOWN_S, self.cooldown_s * 2 ** min(extra, 16))
            self.reason, self.until = "down", now + wait

    def refused_by_limit(self, requests: int, tokens: int) -> None:
        self.limit_refusals += 1
        self.saw_window(requests, tokens)

    def saw_window(self, requests: int, tokens: int) -> None:
        self.window_requests, self.window_tokens = requests, tokens


class SmoothWeights:
    """Smooth weighted round-robin (nginx's): exact shares, evenly interleaved, per member set.

    Each pick adds every member's weight to its running score, takes the highest score and
    takes the total off the winner. Over ``sum(weights)`` picks each member is chosen exactly
    ``weight`` times when weights stay fixed.
    """

    def __init__(self, max_sets: int = 1024) -> None:
        self._scores: OrderedDict[tuple[str, ...], dict[str, float]] = OrderedDict()
        self._max = max_sets

    def pick(self, names: Sequence[str], weights: Sequence[float]) -> int | None:
        """Index of the chosen member; ``None`` when every weight is 0."""
        total = sum(weights)
        if total <= 0:
            return None
        key = tuple(names)
        scores = self._scores.pop(key, None) or dict.fromkeys(names, 0.0)
        self._scores[key] = scores
        while len(self._scores) > self._max:
            self._scores.popitem(last=False)
        best = -1
        for i, (name, weight) in enumerate(zip(names, weights, strict=True)):
            scores[name] += weight
            if weight > 0 and (best < 0 or scores[name] > scores[names[best]]):
                best = i
        scores[names[best]] -= total
        return best
