"""A flush's rollup totals, summed in one pass over its records (the log writer's aggregation).

Every request is added to four hourly or per-minute batches: usage (hour, user, app,
organization, model, provider), key (hour, organization, user, app, key prefix), tag (one per
tag) and minute (minute, organization); ``daily`` sums the hourly ones into the daily tables.
This ran at ~20 µs a record on the event loop: a ``datetime.replace`` per batch, a dict of
named totals per key, a histogram key formatted as text per record. Here each record's minute
is computed once, as an integer (minutes since the epoch; its hour is that // 60), totals are
lists indexed by position and a histogram is a list of counts by bucket index; the dict rows
``rollups.upsert_totals`` takes are built once per key at the end (``usage`` etc.).

The sums are the ones the rows used to get: the same additions in the same record order (a
float's sum depends on its order), decimals added exactly, buckets in UTC (every gateway
timestamp is UTC). ``add`` takes records in chunks, so a flush can let the event loop run
between them.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from backend.data import histogram
from backend.data.log_record import LogRecord
from backend.data.models.logs import KeyRollup, UsageRollup
from backend.data.rows import max_length, text

Key = tuple[Any, ...]
Totals = dict[str, Any]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BOUNDS = histogram.BOUNDS_MS
_NAMES = (*(f"{b:g}" for b in _BOUNDS), "inf")
_MODEL_LEN = max_length(UsageRollup, "model")
_PROVIDER_LEN = max_length(UsageRollup, "provider")
_PREFIX_LEN = max_length(KeyRollup, "key_prefix")

#: Each rollup table's unique key, in the order the batches build it.
ROLLUP_KEY = ("bucket", "user_id", "app_id", "org_id", "model", "provider")
TAG_KEY = ("bucket", "org_id", "user_id", "app_id", "tag")
KEY_KEY = ("bucket", "org_id", "user_id", "app_id", "key_prefix")

#: Positions in a usage or key rollup's totals (usage adds the histogram at ``_HIST``).
_TOTALS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "unknown_cost_requests",
    "latency_ms_sum",
)
_HIST = len(_TOTALS)
_TAG_TOTALS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "unknown_cost_requests",
)
_MINUTE_TOTALS = ("requests", "errors", "tokens", "cost_usd", "unknown_cost_requests")


def _hist(counts: list[int]) -> dict[str, int]:
    return {_NAMES[i]: n for i, n in enumerate(counts) if n}


class Batch:
    """The rollup totals of the records added so far."""

    def __init__(self) -> None:
        self._usage: dict[Key, list[Any]] = {}
        self._keys: dict[Key, list[Any]] = {}
        self._tags: dict[Key, list[Any]] = {}
        #: (minute since the epoch, organization or 0) -> totals + histogram
        self._minutes: dict[tuple[int, int], list[Any]] = {}
        #: Texts made fit for their rollup column, once per distinct value.
        self._models: dict[str | None, str] = {}
        self._providers: dict[str | None, str] = {}
        self._prefixes: dict[str, str] = {}
        self._buckets: dict[int, dt.datetime] = {}

    def add(self, records: Iterable[LogRecord]) -> None:
        """Adds every record not superseded by a retry (those count in the logs only)."""
        usage, keys, tags, minutes = self._usage, self._keys, self._tags, self._minutes
        models, providers, prefixes = self._models, self._providers, self._prefixes
        for r in records:
            if r.superseded:
                continue
            t = r.created_at
            # A naive timestamp is UTC, as the database takes it (``use_tz``, UTC).
            minute = int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() // 60)
            hour = minute // 60
            user, app, org = r.user_id or 0, r.app_id or 0, r.org_id or 0
            status, cost, cost_or_0 = r.status, r.cost_usd, r.cost_usd or 0
            err = 1 if status >= 400 else 0
            inp, out, cached = r.input_tokens, r.output_tokens, r.cached_tokens
            latency = r.latency_ms
            # LogRecord.unknown_cost, inline (superseded records never get here).
            unknown = (
                1 if cost is None and not r.cache_hit and (inp or out or 200 <= status < 300) else 0
            )
            bucket = bisect_left(_BOUNDS, latency)

            raw_model = r.actual_model or r.requested_model
            model = models.get(raw_model)
            if model is None:
                model = models[raw_model] = text(raw_model, _MODEL_LEN) or ""
            provider = providers.get(r.provider)
            if provider is None:
                provider = providers[r.provider] = text(r.provider, _PROVIDER_LEN) or ""
            key: Key = (hour, user, app, org, model, provider)
            agg = usage.get(key)
            if agg is None:
                agg = usage[key] = [0, 0, 0, 0, 0, Decimal(0), 0, 0.0, [0] * (len(_BOUNDS) + 1)]
            agg[0] += 1
            agg[1] += err
            agg[2] += inp
            agg[3] += out
            agg[4] += cached
            agg[5] += cost_or_0
            agg[6] += unknown
            agg[7] += latency
            agg[8][bucket] += 1

            if r.key_prefix:
                prefix = prefixes.get(r.key_prefix)
                if prefix is None:
                    prefix = prefixes[r.key_prefix] = text(r.key_prefix, _PREFIX_LEN) or ""
                key = (hour, org, user, app, prefix)
                agg = keys.get(key)
                if agg is None:
                    agg = keys[key] = [0, 0, 0, 0, 0, Decimal(0), 0, 0.0]
                agg[0] += 1
                agg[1] += err
                agg[2] += inp
                agg[3] += out
                agg[4] += cached
                agg[5] += cost_or_0
                agg[6] += unknown
                agg[7] += latency

            for tag in r.tags:
                key = (hour, org, user, app, tag)
                agg = tags.get(key)
                if agg is None:
                    agg = tags[key] = [0, 0, 0, 0, Decimal(0), 0]
                agg[0] += 1
                agg[1] += err
                agg[2] += inp
                agg[3] += out
                agg[4] += cost_or_0
                agg[5] += unknown

            mkey = (minute, org)
            agg = minutes.get(mkey)
            if agg is None:
                agg = minutes[mkey] = [0, 0, 0, Decimal(0), 0, [0] * (len(_BOUNDS) + 1)]
            agg[0] += 1
            agg[1] += err
            agg[2] += inp + out
            agg[3] += cost_or_0
            agg[4] += unknown
            agg[5][bucket] += 1

    def _at(self, minute: int) -> dt.datetime:
        at = self._buckets.get(minute)
        if at is None:
            at = self._buckets[minute] = _EPOCH + dt.timedelta(minutes=minute)
        return at

    # -- the rows rollups.upsert_totals takes: key (bucket first) -> named totals ---------------
    def usage(self) -> dict[Key, Totals]:
        out: dict[Key, Totals] = {}
        for (hour, *rest), agg in self._usage.items():
            totals = dict(zip(_TOTALS, agg, strict=False))
            totals["latency_hist"] = _hist(agg[_HIST])
            out[(self._at(hour * 60), *rest)] = totals
        return out

    def keys(self) -> dict[Key, Totals]:
        return {
            (self._at(hour * 60), *rest): dict(zip(_TOTALS, agg, strict=True))
            for (hour, *rest), agg in self._keys.items()
        }

    def tags(self) -> dict[Key, Totals]:
        return {
            (self._at(hour * 60), *rest): dict(zip(_TAG_TOTALS, agg, strict=True))
            for (hour, *rest), agg in self._tags.items()
        }

    def minutes(self, by_org: bool) -> dict[Key, Totals]:
        """Rows of ``minute_stats`` (organizations summed) or, ``by_org``, ``org_minute_stats``
        (one per organization; requests made under none left out)."""
        sums: dict[Key, list[Any]] = {}
        for (minute, org), agg in self._minutes.items():
            if by_org and not org:
                continue
            key = (minute, org) if by_org else (minute,)
            seen = sums.get(key)
            if seen is None:
                sums[key] = [*agg[:5], list(agg[5])]
                continue
            for i in range(5):
                seen[i] += agg[i]
            seen[5] = [a + b for a, b in zip(seen[5], agg[5], strict=True)]
        out: dict[Key, Totals] = {}
        for (minute, *rest), agg in sums.items():
            totals = dict(zip(_MINUTE_TOTALS, agg, strict=False))
            totals["latency_hist"] = _hist(agg[5])
            out[(self._at(minute), *rest)] = totals
        return out


def add_totals(row: Totals | None, batch: Totals) -> Totals:
    """A rollup row's totals plus this flush's (a new row: the flush's)."""
    if row is None:
        return batch
    added = {name: row[name] + value for name, value in batch.items() if name != "cost_usd"}
    added["cost_usd"] = Decimal(row["cost_usd"]) + batch["cost_usd"]
    return added


def merge_hist(row: Totals | None, batch: Totals) -> Totals:
    """Totals added and latency histograms merged (a row older than its histogram has null)."""
    if row is None:
        return batch
    hist = dict(row["latency_hist"] or {})
    histogram.merge(hist, batch["latency_hist"])
    merged = add_totals(
        {k: v for k, v in row.items() if k != "latency_hist"},
        {k: v for k, v in batch.items() if k != "latency_hist"},
    )
    merged["latency_hist"] = hist
    return merged
