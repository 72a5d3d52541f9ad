"""Analytics: requests, tokens, spend, errors and latency grouped by one dimension over a window.

Read from the rollups only, never ``request_logs``: hourly for windows up to two days and at
the edges of longer ones, daily for their whole days (``data.windows`` picks the narrowest
daily table that has the dimension and the filters). Hourly: ``UsageRollup`` (model, provider,
user, app, organization; its latency histogram gives p50/p95), ``KeyRollup`` (key) and
``TagRollup`` (tag). Each query reads at most one row per hour x group of its window (and, for
percentiles, the histograms of those rows), so it stays fast with millions of requests.

Scope is that of usage: a member sees their own requests made under their current
organization, an org_admin every request made under theirs, a super_admin all. Requests whose
price is unknown are counted in ``unknown_cost_requests`` and never folded into ``cost_usd``.
A request with several tags counts under each of them (the tags' total may exceed the traffic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backend.admin.access import Actor, is_admin, is_super, org_scope, own_org
from backend.admin.errors import InvalidInput
from backend.admin.logs import money
from backend.data import histogram, windows
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import App, Organization, User

#: dimension -> (rollup kind: ``data.windows.FAMILIES``, its column)
SOURCES: dict[str, tuple[str, str]] = {
    "model": ("usage", "model"),
    "provider": ("usage", "provider"),
    "user": ("usage", "user_id"),
    "app": ("usage", "app_id"),
    "org": ("usage", "org_id"),
    "key": ("key", "key_prefix"),
    "tag": ("tag", "tag"),
}
DIMENSIONS = tuple(SOURCES)
#: Dimensions whose rollup keeps a latency histogram per group (p50/p95).
WITH_PERCENTILES = frozenset({"model", "provider"})
MAX_DAYS = 366
MAX_GROUPS = 1000
#: Windows up to this long are drawn per hour, longer ones per UTC day.
HOURLY_UP_TO = dt.timedelta(hours=48)
#: Orders of the groups: column -> its value in a group's totals (None: no value, listed last
#: either way); each ``<column>_desc`` or ``<column>_asc``, plus ``label_asc``/``label_desc``.
SORT_VALUES: dict[str, Callable[[Totals], Any]] = {
    "cost": lambda t: t.cost_usd,
    "requests": lambda t: t.requests,
    "errors": lambda t: t.errors,
    "error_rate": lambda t: t.error_rate,
    "input_tokens": lambda t: t.input_tokens,
    "output_tokens": lambda t: t.output_tokens,
    "p50": lambda t: t.percentile(0.5),
    "p95": lambda t: t.percentile(0.95),
}
SORTS = (
    *(f"{c}_{d}" for c in SORT_VALUES for d in ("desc", "asc")),
    "label_asc",
    "label_desc",
)
_TOTALS = ("requests", "errors", "input_tokens", "output_tokens", "unknown_cost_requests")


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = field(default_factory=lambda: money(0))
    unknown_cost_requests: int = 0
    latency_ms_sum: float = 0.0
    hist: dict[str, int] = field(default_factory=dict)

    def add(self, other: Totals) -> None:
        for name in (*_TOTALS, "cached_tokens", "latency_ms_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd += other.cost_usd
        histogram.merge(self.hist, other.hist)

    @property
    def error_rate(self) -> float:
        return round(self.errors / self.requests, 6) if self.requests else 0.0

    @property
    def avg_latency_ms(self) -> float | None:
        return round(self.latency_ms_sum / self.requests, 3) if self.requests else None

    def percentile(self, q: float) -> float | None:
        p = histogram.percentile(self.hist, q)
        # "inf" (slower than the last bound) is not JSON: report the last finite bound.
        return None if p is None else min(p, histogram.BOUNDS_MS[-1])


@dataclass
class Group:
    key: str
    label: str
    entity_id: int | None
    totals: Totals


@dataclass
class Point:
    bucket: dt.datetime
    totals: Totals


@dataclass
class Breakdown:
    dimension: str
    since: dt.datetime
    until: dt.datetime
    granularity: str  # hour | day
    groups: list[Group]
    group_count: int
    total: Totals
    series: list[Point]
    percentiles: bool


@dataclass(frozen=True, slots=True)
class Filters:
    organization_id: int | None = None
    user_id: int | None = None
    app_id: int | None = None
    model: str | None = None
    provider: str | None = None


def window(since: dt.datetime, until: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[since, until)`` widened to whole hours (rollups are hourly), checked."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone (e.g. Z for UTC)", field="since")
    start = since.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    end = until.astimezone(dt.UTC)
    if end != end.replace(minute=0, second=0, microsecond=0):
        end = end.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if end <= start:
        raise InvalidInput("until must be after since", field="until")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise InvalidInput(f"the window may span at most {MAX_DAYS} days", field="until")
    return start, end


def _filters(actor: Actor, kind: str, f: Filters) -> dict[str, Any] | None:
    """Rollup column -> value of the viewer's scope and the asked filters; None when they
    cannot both hold (nothing matches)."""
    if not is_admin(actor):
        # Rollups store "none" as 0.
        scope: dict[str, Any] = {"user_id": actor.id, "org_id": own_org(actor) or 0}
    else:
        own = org_scope(actor, "view analytics")
        scope = {} if own is None else {"org_id": own}
    asked: dict[str, Any] = {
        column: value
        for column, value in (
            ("org_id", f.organization_id),
            ("user_id", f.user_id),
            ("app_id", f.app_id),
            ("model", f.model or None),
            ("provider", f.provider or None),
        )
        if value is not None
    }
    if kind != "usage" and ("model" in asked or "provider" in asked):
        raise InvalidInput(
            "keys and tags are not rolled up per model: filter them by organization, user or "
            "app only",
            field="filter",
        )
    return windows.both(scope, asked)


def _sums(kind: str) -> tuple[str, ...]:
    if kind == "tag":
        return (*_TOTALS, "cost_usd")
    return (*_TOTALS, "cost_usd", "cached_tokens", "latency_ms_sum")


def _totals(r: Mapping[str, Any]) -> Totals:
    return Totals(
        requests=r["requests"],
        errors=r["errors"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        cached_tokens=r.get("cached_tokens", 0),
        cost_usd=r["cost_usd"],
        unknown_cost_requests=r["unknown_cost_requests"],
        latency_ms_sum=r.get("latency_ms_sum", 0.0),
    )


def _aware(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


async def breakdown(
    actor: Actor,
    dimension: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    filters: Filters = Filters(),
    limit: int = 100,
    offset: int = 0,
    sort: str = "cost_desc",
    now: dt.datetime | None = None,
) -> Breakdown:
    """Totals per group of ``dimension`` over ``[since, until)`` (to the hour) in the order
    ``sort`` (default highest cost first; ``SORTS``), with the window's total and its series per
    hour or day. ``offset`` skips that many groups of the order (a page of a long list);
    ``group_count`` counts them all."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of: {', '.join(SORTS)}", field="sort")
    if dimension not in SOURCES:
        raise InvalidInput(f"dimension must be one of: {', '.join(DIMENSIONS)}", field="dimension")
    if not 1 <= limit <= MAX_GROUPS:
        raise InvalidInput(f"limit must be from 1 to {MAX_GROUPS}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must be 0 or more", field="offset")
    start, end = window(since, until)
    kind, column = SOURCES[dimension]
    where = _filters(actor, kind, filters)
    groups: dict[Any, Totals] = {}
    if where is not None:
        rows = await windows.grouped(
            kind, start, end, group_by=(column,), sums=_sums(kind), filters=where, now=now
        )
        groups = {r[column]: _totals(r) for r in rows}
    percentiles = dimension in WITH_PERCENTILES
    if percentiles and where is not None:
        # Histograms are JSON: merged in Python, one small dict per rollup row of the window.
        hists = await windows.histograms(kind, start, end, group_by=column, filters=where, now=now)
        for value, hist in hists.items():
            if value in groups:
                histogram.merge(groups[value].hist, hist)
    total = Totals()
    for t in groups.values():
        total.add(t)
    column_sorted, _, direction = sort.rpartition("_")
    if column_sorted == "label":
        # Every group's label is read to order by it (analytics groups number in thousands
        # at most); the other orders name only the page.
        labels = await _labels(actor, dimension, list(groups))
        ordered = sorted(
            groups.items(),
            key=lambda kv: (labels.get(kv[0], str(kv[0])).lower(), str(kv[0])),
            reverse=direction == "desc",
        )
        kept = ordered[offset : offset + limit]
    else:
        ordered = _ordered(groups, SORT_VALUES[column_sorted], desc=direction == "desc")
        kept = ordered[offset : offset + limit]
        labels = await _labels(actor, dimension, [k for k, _ in kept])
    out = [
        Group(
            key=str(k),
            label=labels.get(k, str(k)),
            entity_id=int(k) if column.endswith("_id") else None,
            totals=t,
        )
        for k, t in kept
    ]
    granularity = "hour" if end - start <= HOURLY_UP_TO else "day"
    series = await _series(kind, where, start, end, granularity, now)
    return Breakdown(
        dimension, start, end, granularity, out, len(groups), total, series, percentiles
    )


def _ordered(
    groups: Mapping[Any, Totals], value: Callable[[Totals], Any], *, desc: bool
) -> list[tuple[Any, Totals]]:
    """By ``value`` (groups without one last), then most requests, then key: the same order
    for every page."""

    def key(kv: tuple[Any, Totals]) -> tuple[Any, ...]:
        v = value(kv[1])
        if v is None:
            return (1, 0, -kv[1].requests, str(kv[0]))
        return (0, -v if desc else v, -kv[1].requests, str(kv[0]))

    return sorted(groups.items(), key=key)


async def _series(
    kind: str,
    where: dict[str, Any] | None,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
    now: dt.datetime | None,
) -> list[Point]:
    """One point per hour or UTC day of the window, gaps as zero."""
    rows = []
    if where is not None:
        rows = await windows.grouped(
            kind, start, end, group_by=("bucket",), sums=_sums(kind), filters=where, now=now
        )
    step = dt.timedelta(hours=1) if granularity == "hour" else dt.timedelta(days=1)
    first = start if granularity == "hour" else start.replace(hour=0)
    points: dict[dt.datetime, Totals] = {}
    t = first
    while t < end:
        points[t] = Totals()
        t += step
    for r in rows:
        bucket = _aware(r["bucket"])
        if granularity == "day":
            bucket = bucket.replace(hour=0)
        points.setdefault(bucket, Totals()).add(_totals(r))
    return [Point(b, tot) for b, tot in sorted(points.items())]


async def _labels(actor: Actor, dimension: str, keys: Iterable[Any]) -> dict[Any, str]:
    """Names to show for ids and key prefixes: what the viewer may know, else the bare id."""
    ids = [k for k in keys if k]
    out: dict[Any, str] = {}
    if dimension == "user":
        out[0] = "(app keys: no user)"
        for u in await User.filter(id__in=ids):
            if _may_name_user(actor, u):
                out[u.id] = f"{u.name} <{u.email}>"
        for i in ids:
            out.setdefault(i, f"user #{i} (no longer in your organization)")
    elif dimension == "app":
        out[0] = "(no app: user keys)"
        for a in await App.filter(id__in=ids):
            out[a.id] = a.name
    elif dimension == "org":
        out[0] = "(no organization)"
        for o in await Organization.filter(id__in=ids):
            out[o.id] = o.name
    elif dimension == "key":
        for k in await ApiKey.filter(prefix__in=ids).prefetch_related("user", "app"):
            owner = k.app.name if k.app else (k.user.name if k.user else "")
            name = k.name or "unnamed key"
            out[k.prefix] = f"{name} ({owner})" if owner else name
        for i in ids:
            out.setdefault(i, f"{i} (deleted key)")
    elif dimension == "provider":
        out[""] = "(none: refused before a provider)"
    elif dimension == "model":
        out[""] = "(no model)"
    return out


def _may_name_user(actor: Actor, user: User) -> bool:
    """As ``visible_user``: below super_admin, a user is named while in the viewer's org."""
    if is_super(actor) or getattr(actor, "id", None) == user.id:
        return True
    mine = own_org(actor)
    return mine is not None and user.organization_id == mine  # type: ignore[attr-defined]
