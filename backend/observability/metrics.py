"""Prometheus metrics of the gateway: one ``Metrics`` per app, fed from the request log records.

Every request ends in exactly one ``LogRecord`` (and every attempt a fallback replaced in one
``superseded`` record), so the counters are updated where records are submitted
(``LogWriter.submit``): the numbers on ``/metrics`` are the log rows' numbers by construction.
Nothing here does I/O or takes a lock of its own; the only per-request work is a few dict
lookups and prometheus-client's own increments (in multiprocess mode: writes to a memory map).

Labels are bounded: ``organization`` is the organization's id, ``model`` the routed model (never
the name a client typed when it was not routed), and each label keeps at most a configured number
of distinct values per process, later ones reported as ``other``. No user id, key or request text
is ever a label.

Multiprocess (``switchboard serve --workers N``): prometheus-client keeps each process's values in
files under ``PROMETHEUS_MULTIPROC_DIR`` (the serve command makes a fresh one per start) and
``/metrics`` sums them with its ``MultiProcessCollector`` on every scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from backend.data.log_record import LogRecord

PREFIX = "switchboard"
OTHER = "other"
NONE = "none"

#: Seconds; an LLM request spans tens of milliseconds (cache hit) to minutes (long answers).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

#: Breaker states as gauge values (the higher, the worse: workers' values combine with max).
CIRCUIT_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

BASE_LABELS = ("endpoint", "provider", "model", "status_class", "organization")


@dataclass(frozen=True, slots=True)
class LabelLimits:
    organizations: int = 100
    models: int = 200
    providers: int = 50
    endpoints: int = 30
    error_types: int = 50
    dlp_rules: int = 100


class BoundedLabel:
    """The first ``limit`` distinct values pass through; any later one is ``other``.

    Only admitted values are remembered, so memory is bounded by ``limit`` too.
    """

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = max(0, limit)
        self._seen: dict[str, str] = {}

    def __call__(self, value: str | None) -> str:
        if not value:
            return NONE
        label = self._seen.get(value)
        if label is not None:
            return label
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen[value] = value
        return value


@dataclass(slots=True)
class _Series:
    """The bound children of one base label set (``labels()`` is looked up once, not per row)."""

    requests: Any
    latency: Any
    ttft: Any
    input_tokens: Any
    cached_tokens: Any
    output_tokens: Any
    reasoning_tokens: Any
    cost: Any


class Metrics:
    """The gateway's metrics, registered in ``registry`` (the app's, never the global one)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        limits: LabelLimits | None = None,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.registry = registry
        self.multiprocess_dir = multiprocess_dir
        limits = limits or LabelLimits()
        self._org = BoundedLabel(limits.organizations)
        self._model = BoundedLabel(limits.models)
        self._provider = BoundedLabel(limits.providers)
        self._endpoint = BoundedLabel(limits.endpoints)
        self._error_type = BoundedLabel(limits.error_types)
        self._dlp_rule = BoundedLabel(limits.dlp_rules)
        self._series: dict[tuple[str, ...], _Series] = {}
        self._children: dict[tuple[Any, ...], Any] = {}

        def counter(name: str, doc: str, labels: Iterable[str]) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, list(labels), registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(
                f"{PREFIX}_{name}", doc, list(BASE_LABELS), registry=registry, buckets=buckets
            )

        def gauge(name: str, doc: str, labels: Iterable[str], mode: str) -> Gauge:
            return Gauge(
                f"{PREFIX}_{name}",
                doc,
                list(labels),
                registry=registry,
                multiprocess_mode=mode,  # type: ignore[arg-type]
            )

        self.requests = counter("requests", "Requests answered (one per log row).", BASE_LABELS)
        self.errors = counter(
            "errors",
            "Requests answered with a status >= 400, by error class.",
            ("endpoint", "provider", "model", "error_type", "organization"),
        )
        self.latency = histogram(
            "request_duration_seconds", "Time from request to its end.", LATENCY_BUCKETS
        )
        self.ttft = histogram(
            "time_to_first_token_seconds",
            "Time from request to the first byte of the answer.",
            TTFT_BUCKETS,
        )
        self.tokens = counter(
            "tokens",
            "Tokens by type: input, cached (part of input), output, reasoning (part of output).",
            (*BASE_LABELS, "type"),
        )
        self.cost = counter("cost_usd", "Cost charged, in USD (unpriced requests: 0).", BASE_LABELS)
        self.fallbacks = counter(
            "fallbacks",
            "Failed provider attempts that another attempt replaced (retry or next model).",
            ("endpoint", "provider", "model", "error_type"),
        )
        self.cache_hits = counter(
            "cache_hits",
            "Requests answered from the response cache.",
            ("endpoint", "model", "organization"),
        )
        self.dlp_matches = counter(
            "dlp_matches", "Values DLP replaced or restored.", ("action", "rule", "organization")
        )
        self.budget_refusals = counter(
            "budget_refusals", "Requests refused by a spend cap.", ("endpoint", "organization")
        )
        self.in_flight = gauge(
            "in_flight_requests", "Proxy requests being handled now.", (), "livesum"
        )
        self.log_queue = gauge(
            "log_queue_depth", "Log records waiting to be written.", (), "livesum"
        )
        self.log_dropped = counter(
            "log_rows_dropped", "Log records dropped (buffer full or refused).", ()
        )
        self.circuit = gauge(
            "circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open (model '*': the provider's).",
            ("provider", "model"),
            "livemax",
        )
        self._scrape = registry
        if multiprocess_dir:
            from prometheus_client import multiprocess

            # Every process writes its own files; a scrape sums all of them.
            self._scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._scrape, path=multiprocess_dir)

    # -- the hot path ----------------------------------------------------------------------------
    def observe(self, r: LogRecord) -> None:
        """Count one submitted log record (called by ``LogWriter.submit``)."""
        endpoint = self._endpoint(r.endpoint)
        provider = self._provider(r.provider)
        model = self._model(r.actual_model)
        if r.superseded:
            self._child(
                self.fallbacks, endpoint, provider, model, self._error_type(r.error_type)
            ).inc()
            return
        org = self._org(str(r.org_id) if r.org_id is not None else None)
        status_class = _status_class(r.status)
        key = (endpoint, provider, model, status_class, org)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = self._new_series(key)
        s.requests.inc()
        s.latency.observe(r.latency_ms / 1000.0)
        if r.ttft_ms is not None:
            s.ttft.observe(r.ttft_ms / 1000.0)
        if r.input_tokens:
            s.input_tokens.inc(r.input_tokens)
        if r.cached_tokens:
            s.cached_tokens.inc(r.cached_tokens)
        if r.output_tokens:
            s.output_tokens.inc(r.output_tokens)
        if r.reasoning_tokens:
            s.reasoning_tokens.inc(r.reasoning_tokens)
        if r.cost_usd:
            s.cost.inc(float(r.cost_usd))
        if r.status >= 400:
            err = self._error_type(r.error_type)
            self._child(self.errors, endpoint, provider, model, err, org).inc()
            if r.error_type == "quota":
                self._child(self.budget_refusals, endpoint, org).inc()
        if r.cache_hit:
            self._child(self.cache_hits, endpoint, model, org).inc()
        for a in r.dlp_activity:
            if a.get("matches"):
                action, rule = str(a.get("kind")), self._dlp_rule(str(a.get("rule")))
                self._child(self.dlp_matches, action, rule, org).inc(a["matches"])

    def _new_series(self, key: tuple[str, ...]) -> _Series:
        tokens = self.tokens
        return _Series(
            requests=self.requests.labels(*key),
            latency=self.latency.labels(*key),
            ttft=self.ttft.labels(*key),
            input_tokens=tokens.labels(*key, "input"),
            cached_tokens=tokens.labels(*key, "cached"),
            output_tokens=tokens.labels(*key, "output"),
            reasoning_tokens=tokens.labels(*key, "reasoning"),
            cost=self.cost.labels(*key),
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- off the request path --------------------------------------------------------------------
    def rows_dropped(self, count: int) -> None:
        self.log_dropped.inc(count)

    def queue_depth(self, depth: int) -> None:
        self.log_queue.set(depth)

    def circuit_changed(self, provider: str, model: str | None, state: str) -> None:
        """A breaker changed state (``model`` None: the provider-wide breaker)."""
        labels = (self._provider(provider), self._model(model) if model else "*")
        self._child(self.circuit, *labels).set(CIRCUIT_VALUES.get(state, 0.0))

    def render(self) -> tuple[bytes, str]:
        """The exposition text (every process's values in multiprocess mode)."""
        return generate_latest(self._scrape), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This process stops: its live gauges (in flight, queue) stop counting."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"
