"""Requests- and tokens-per-minute limits on sliding 60-second windows, in this process.

Which limits apply (``applicable_limits``): the key's, and its user's (user keys) or app's (app
keys), and the organization's, each with requests per minute (``rpm``) and tokens per minute
(``tpm``). A request must fit in every one of them, so the tightest applies; it is booked in all
of them or in none.

The window. Each limit counts what it admitted in one-second buckets (``floor(unix time)``). A
request is admitted when what the buckets of the last 60 whole seconds plus the current one hold,
plus what it needs, is within the limit. A request therefore counts for 60 to 61 seconds after
its admission, never less, which gives the bound the tests check:

    in any 60-second interval, the tokens (or requests) admitted are at most the limit.

Proof sketch: let t be the last admission inside an interval [s, s + 60]. Every earlier admission
in the interval is at or after s >= t - 60, so it sits in a bucket the check at t still counted;
that check admitted only if their sum plus the new request was within the limit. It is exact for
what is *reserved*: tokens are reserved at admission (estimated input + the output limit, which
is sent upstream, see ``backend.policies.budget.bound_output``) and settled to the real count
afterwards, in the bucket they were reserved in. Real usage can exceed its reservation only when
the input estimate was low, so the real tokens in a window stay within the limit plus that one
request's underestimate. The price of the one-second buckets is that a request may be refused up
to one second before a strict 60-second sliding log would admit it.

A two-bucket weighted approximation would cost less but admits up to 1.5x the limit in some
60-second interval (a burst at the end of one minute is only partly counted half a minute
later), which the bound above forbids.

``Retry-After`` is the time until enough buckets leave the window for the refused request to fit.
Every answer to a limited caller carries ``x-ratelimit-limit-*``, ``x-ratelimit-remaining-*``
and ``x-ratelimit-reset-*`` for requests and for tokens: the limit that leaves the least room,
what remains of it after this request, and when that remaining next grows (the oldest counted
bucket leaves the window).

``None`` means no limit. ``0`` refuses every request.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from backend.budget.caps import Scope
from backend.ir.errors import RateLimited
from backend.state.snapshot import Principal

WINDOW_S = 60
#: A bucket leaves the window this long after it began: 60 s plus its own second.
SPAN_S = WINDOW_S + 1
Metric = Literal["requests", "tokens"]
METRICS: tuple[Metric, ...] = ("requests", "tokens")
#: Drop empty windows once the table is this large.
_PRUNE_AT = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    scope: Scope
    metric: Metric
    limit: int
    #: The key's prefix, the user's email, the app's slug or the organization's name.
    owner: str

    def describe(self) -> str:
        kind = {"key": "key", "user": "user", "app": "app", "org": "organization"}[self.scope[0]]
        return f"{kind} {self.owner}"


def applicable_limits(principal: Principal) -> tuple[RateLimit, ...]:
    """Every rpm/tpm limit a request by ``principal`` must fit in (empty: none)."""
    out: list[RateLimit] = []
    key, user, app, org = principal.key, principal.user, principal.app, principal.org

    def add(scope: Scope, rpm: int | None, tpm: int | None, owner: str) -> None:
        if rpm is not None:
            out.append(RateLimit(scope, "requests", rpm, owner))
        if tpm is not None:
            out.append(RateLimit(scope, "tokens", tpm, owner))

    # The chain's id, not the key's: a rotated key continues its predecessor's windows.
    add(("key", key.counter_id), key.rate_limit_rpm, key.limits.tpm, key.prefix)
    if key.user_id is not None and user is not None:
        add(("user", user.id), user.limits.rpm, user.limits.tpm, user.email)
    if key.app_id is not None and app is not None:
        add(("app", app.id), app.limits.rpm, app.limits.tpm, app.slug)
    if org is not None:
        add(("org", org.id), org.limits.rpm, org.limits.tpm, org.name)
    return tuple(out)


def has_token_limit(principal: Principal) -> bool:
    return any(limit.metric == "tokens" for limit in applicable_limits(principal))


@dataclass(eq=False, slots=True)
class RateTicket:
    """What one admitted request holds in its windows, and the headers of its answers."""

    limits: tuple[RateLimit, ...]
    #: The second each limit booked the request in (settlement adjusts that bucket).
    buckets: tuple[int, ...]
    #: Tokens reserved at admission.
    tokens: int
    headers: dict[str, str] = field(default_factory=dict)
    #: ``local`` or ``redis``: where it was booked (Redis may have been down).
    store: str = "local"
    settled: bool = False

    @property
    def is_noop(self) -> bool:
        return not self.limits


NO_TICKET = RateTicket((), (), 0, settled=True)


def need_of(limit: RateLimit, tokens: int) -> int:
    return 1 if limit.metric == "requests" else tokens


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def headers_for(
    limits: tuple[RateLimit, ...], used: list[int], oldest: list[float | None], now: float
) -> dict[str, str]:
    """``x-ratelimit-*`` for each metric: the limit with the least room left."""
    out: dict[str, str] = {}
    for metric in METRICS:
        best: tuple[int, int, float | None] | None = None
        for limit, n, first in zip(limits, used, oldest, strict=True):
            if limit.metric != metric:
                continue
            remaining = max(0, limit.limit - n)
            if best is None or remaining < best[1]:
                best = (limit.limit, remaining, first)
        if best is None:
            continue
        reset = 0.0 if best[2] is None else max(0.0, best[2] + SPAN_S - now)
        out[f"x-ratelimit-limit-{metric}"] = str(best[0])
        out[f"x-ratelimit-remaining-{metric}"] = str(best[1])
        out[f"x-ratelimit-reset-{metric}"] = f"{math.ceil(reset)}s"
    return out


def rate_error(
    limit: RateLimit, used: int, need: int, retry_after_s: float, headers: dict[str, str]
) -> RateLimited:
    """429 naming the limit, what was used of it, and when the request would fit."""
    retry = _seconds(retry_after_s)
    unit = limit.metric
    what = f"this request needs {need}" if unit == "tokens" else "this request is one more"
    message = (
        f"Rate limit reached for {limit.describe()}: {limit.limit} {unit} per minute "
        f"({used} used in the last minute, {what}). Retry after {retry} s."
    )
    return RateLimited(
        message,
        code="rate_limit_exceeded",
        headers={
            **headers,
            "Retry-After": str(retry),
            f"x-ratelimit-remaining-{unit}": str(max(0, limit.limit - used)),
            f"x-ratelimit-limit-{unit}": str(limit.limit),
            f"x-ratelimit-reset-{unit}": f"{retry}s",
        },
        detail={
            "scope": limit.scope[0],
            "scope_id": limit.scope[1],
            "metric": unit,
            "limit": limit.limit,
            "used": used,
            "retry_after_s": retry,
        },
    )


def never_fits(limit: RateLimit, need: int) -> RateLimited | None:
    """The refusal of a request no wait can admit (a limit of 0, or more tokens than the limit)."""
    if limit.limit <= 0:
        message = f"Rate limit of {limit.describe()} allows no {limit.metric}."
    elif need > limit.limit:
        message = (
            f"Request too large for {limit.describe()}: it may use up to {need} tokens (estimated "
            f"input plus max_tokens) but the limit is {limit.limit} tokens per minute. Lower "
            "max_tokens or send less input."
        )
    else:
        return None
    return RateLimited(
        message,
        code="rate_limit_exceeded",
        # Waiting cannot help: tell the official SDKs not to retry.
        headers={
            "x-should-retry": "false",
            f"x-ratelimit-limit-{limit.metric}": str(limit.limit),
            f"x-ratelimit-remaining-{limit.metric}": "0",
        },
        detail={"scope": limit.scope[0], "scope_id": limit.scope[1], "limit": limit.limit},
    )


def check_fits(limits: tuple[RateLimit, ...], tokens: int) -> None:
    for limit in limits:
        err = never_fits(limit, need_of(limit, tokens))
        if err is not None:
            raise err


class _Window:
    """One limit's buckets: ``[second, amount]``, oldest first, and their total."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.total = 0

    def expire(self, now_idx: int) -> None:
        horizon = now_idx - WINDOW_S
        buckets = self.buckets
        while buckets and buckets[0][0] < horizon:
            self.total -= buckets.popleft()[1]

    def add(self, idx: int, amount: int) -> int:
        """Book ``amount`` at ``idx``; returns the bucket used (the newest, if the clock went
        back)."""
        buckets = self.buckets
        if buckets and buckets[-1][0] >= idx:
            buckets[-1][1] += amount
            idx = buckets[-1][0]
        else:
            buckets.append([idx, amount])
        self.total += amount
        return idx

    def adjust(self, idx: int, delta: int) -> None:
        for entry in reversed(self.buckets):
            if entry[0] == idx:
                entry[1] += delta
                self.total += delta
                return
            if entry[0] < idx:
                return  # gone: it left the window already

    def oldest(self) -> float | None:
        return float(self.buckets[0][0]) if self.buckets else None

    def retry_after(self, now: float, need: int, limit: int) -> float:
        freed = 0
        for idx, amount in self.buckets:
            freed += amount
            if self.total - freed + need <= limit:
                return idx + SPAN_S - now
        return float(SPAN_S)


class LocalRateLimiter:
    """Sliding windows in this process: the whole limit for one process, or each process's own
    stand-in while Redis is unreachable. Checks and bookings happen without an await between
    them, so concurrent requests on one event loop cannot overshoot."""

    def __init__(self) -> None:
        self._windows: dict[tuple[Scope, str], _Window] = {}

    def _window(self, limit: RateLimit) -> _Window:
        ident = (limit.scope, limit.metric)
        window = self._windows.get(ident)
        if window is None:
            if len(self._windows) >= _PRUNE_AT:
                self._windows = {k: w for k, w in self._windows.items() if w.buckets}
            window = self._windows[ident] = _Window()
        return window

    def acquire(self, limits: tuple[RateLimit, ...], tokens: int, now: float) -> RateTicket:
        if not limits:
            return NO_TICKET
        check_fits(limits, tokens)
        idx = math.floor(now)
        windows = [self._window(limit) for limit in limits]
        for window in windows:
            window.expire(idx)
        for limit, window in zip(limits, windows, strict=True):
            need = need_of(limit, tokens)
            if window.total + need > limit.limit:
                current = headers_for(
                    limits, [w.total for w in windows], [w.oldest() for w in windows], now
                )
                retry = window.retry_after(now, need, limit.limit)
                raise rate_error(limit, window.total, need, retry, current)
        booked = tuple(
            window.add(idx, need_of(limit, tokens))
            for limit, window in zip(limits, windows, strict=True)
        )
        totals, oldest = [w.total for w in windows], [w.oldest() for w in windows]
        return RateTicket(limits, booked, tokens, headers_for(limits, totals, oldest, now))

    def settle(self, ticket: RateTicket, tokens: int) -> None:
        """Replace the ticket's reserved tokens by ``tokens`` in the bucket they were booked in."""
        delta = tokens - ticket.tokens
        if not delta:
            return
        for limit, idx in zip(ticket.limits, ticket.buckets, strict=True):
            if limit.metric == "tokens":
                window = self._windows.get((limit.scope, limit.metric))
                if window is not None:
                    window.adjust(idx, delta)
