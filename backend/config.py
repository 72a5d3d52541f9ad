"""Process settings from the environment (12-factor). Read once by the CLI, passed everywhere."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from backend.observability.logs import parse_log_format

_OTLP_PROTOCOL = "http/protobuf"


class Settings(BaseModel):
    database_url: str = "sqlite://data/switchboard.sqlite3"
    redis_url: str | None = None
    #: Prefix of every Redis key and channel, so several deployments can share one Redis.
    redis_prefix: str = "switchboard:"
    data_dir: Path = Path("data")
    secret_key: str | None = None
    #: Largest request body accepted on the proxy endpoints.
    max_body_bytes: int = 8 * 1024 * 1024
    #: Largest ``/graphql`` request body, and largest WebSocket message on ``/graphql``.
    graphql_max_body_bytes: int = 2 * 1024 * 1024
    #: Longest a client may take to send a whole request body before it gets 408.
    body_timeout_s: float = 60.0
    #: Largest request head (request line + headers) the server reads; 431 beyond it.
    max_header_bytes: int = 64 * 1024
    #: Longest a client may take to send a request head once it started; 408 beyond it.
    header_timeout_s: float = 30.0
    #: Failed logins an account / a client address may have before it is locked out.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    #: First lockout; each further failure doubles it, up to ``login_lockout_max_s``.
    login_lockout_s: float = 30.0
    login_lockout_max_s: float = 900.0
    #: Header holding the client address set by a trusted reverse proxy (e.g. ``x-real-ip``);
    #: unset, the TCP peer is the address.
    login_address_header: str | None = None
    #: Threads hashing and verifying passwords (argon2 uses 64 MiB each), and how many more
    #: logins may wait for one before further logins are refused as busy.
    password_workers: int = 2
    password_queue: int = 16
    #: How often batched log rows and counters are written.
    log_flush_interval_s: float = 0.5
    #: Most one key's ``last_used_at`` is written: once per this many seconds, whatever its
    #: traffic (``backend.data.last_used``).
    key_last_used_interval_s: float = Field(default=60.0, ge=0)
    #: How long a stored Responses-API answer (``store: true``) is kept: 30 days, as OpenAI.
    #: A conversation that goes on keeps its earlier turns as long as its newest one.
    responses_ttl_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    #: How often expired stored responses are deleted from the database.
    responses_sweep_interval_s: float = Field(default=60.0, gt=0)
    #: Time one GraphQL request may spend searching the request log (a page and its counts,
    #: ``admin.logsearch``) before it answers with what it found (a partial page, a lower bound).
    log_search_budget_s: float = Field(default=0.15, gt=0)
    upstream_timeout_s: float = 600.0
    upstream_connect_timeout_s: float = 10.0
    #: Upstream HTTP transport: reqwest (default), aiohttp, httpx-aiohttp or httpx
    #: (providers/http.py).
    transport: Literal["reqwest", "aiohttp", "httpx-aiohttp", "httpx"] = "reqwest"
    #: Keep DLP-redacted request/response bodies in the log for the activity export.
    log_bodies: bool = True
    #: Log line format: ``text`` or ``json`` (one object per line; backend/observability/logs).
    log_format: Literal["text", "json"] = "text"
    #: One INFO line per request (request id, org, model, status, latency); None: on with json.
    request_log: bool | None = None
    #: OpenTelemetry traces over OTLP/HTTP, on when the standard ``OTEL_*`` variables ask.
    tracing: bool = False
    #: Record the (DLP-redacted) prompt and answer text in trace spans; off by default.
    trace_content: bool = False
    #: Reservation size when a request names no max_tokens (worst case is unknowable).
    default_reserve_output_tokens: int = 4096
    #: ``max_uses`` sent for a capped caller's Anthropic web search tool that names none, and
    #: reserved at the provider's price per search (each search is billed on top of tokens).
    default_reserve_web_searches: int = Field(default=5, ge=1)
    #: USD per million (input, output) tokens at which capped callers are reserved and billed
    #: for a model without a known price; None (default) refuses such models to capped callers.
    unpriced_model_price: tuple[Decimal, Decimal] | None = None
    shutdown_grace_s: float = 30.0
    #: Consecutive failures that open a model's (or provider's) circuit breaker.
    circuit_failure_threshold: int = 5
    #: Seconds an open circuit waits before letting one trial request through.
    circuit_cooldown_s: float = 30.0
    #: Seconds between two evaluations of the alert rules (backend/alerts), off the request path.
    alert_interval_s: float = 10.0
    #: Longest wait for the shared budget (Redis) before a capped request is refused with 503.
    #: It includes event-loop lag, so a host that is short of CPU may need more than 1 s.
    budget_timeout_s: float = 1.0
    #: Longest a DLP scan may take (waiting for a worker included) before the request is
    #: refused with 503 ``dlp_timeout``; small scans with custom rules run on this many threads
    #: (backend/dlp/runner).
    dlp_scan_timeout_s: float = 5.0
    dlp_scan_threads: int = 2
    #: Processes that scan large bodies (their own GIL, so a 6 MB body cannot slow other
    #: tenants). Two: one client sending huge bodies one after another holds only one, and the
    #: second starts only when scans overlap (~31 MB RSS each); more would let scans take every
    #: core of a 2-core host from the event loop. 0: scan in threads instead (not isolated).
    dlp_scan_processes: int = 2
    #: Bearer token ``GET /metrics`` requires; None: open (protect it at the network instead).
    metrics_token: str | None = None
    #: Distinct organizations / models a metric label keeps per process (later ones: ``other``).
    metrics_max_organizations: int = 100
    metrics_max_models: int = 200
    #: prometheus-client's multiprocess directory (``switchboard serve --workers N`` sets one).
    metrics_multiproc_dir: str | None = None
    provider_env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("SWITCHBOARD_DATA_DIR", "data"))
        values: dict[str, object] = {
            "data_dir": data_dir,
            # An absolute path: ``sqlite:///`` + a relative path would mean the filesystem root.
            "database_url": env.get("DATABASE_URL")
            or f"sqlite:///{(data_dir / 'switchboard.sqlite3').resolve()}",
            "redis_url": env.get("REDIS_URL") or None,
            "secret_key": env.get("SWITCHBOARD_SECRET_KEY") or None,
            "metrics_token": env.get("SWITCHBOARD_METRICS_TOKEN") or None,
            "metrics_multiproc_dir": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            "provider_env": {
                k: v
                for k, v in env.items()
                if k.endswith(("_API_KEY", "_BASE_URL", "_API_VERSION", "_DEPLOYMENT"))
                or k in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
            },
        }
        numeric = {
            "SWITCHBOARD_MAX_BODY_BYTES": ("max_body_bytes", int),
            "SWITCHBOARD_GRAPHQL_MAX_BODY_BYTES": ("graphql_max_body_bytes", int),
            "SWITCHBOARD_BODY_TIMEOUT": ("body_timeout_s", float),
            "SWITCHBOARD_MAX_HEADER_BYTES": ("max_header_bytes", int),
            "SWITCHBOARD_HEADER_TIMEOUT": ("header_timeout_s", float),
            "SWITCHBOARD_LOGIN_MAX_FAILURES": ("login_max_failures", int),
            "SWITCHBOARD_LOGIN_MAX_FAILURES_PER_ADDRESS": ("login_max_failures_per_address", int),
            "SWITCHBOARD_LOGIN_LOCKOUT": ("login_lockout_s", float),
            "SWITCHBOARD_LOGIN_LOCKOUT_MAX": ("login_lockout_max_s", float),
            "SWITCHBOARD_PASSWORD_WORKERS": ("password_workers", int),
            "SWITCHBOARD_PASSWORD_QUEUE": ("password_queue", int),
            "SWITCHBOARD_LOG_FLUSH_INTERVAL": ("log_flush_interval_s", float),
            "SWITCHBOARD_KEY_LAST_USED_INTERVAL": ("key_last_used_interval_s", float),
            "SWITCHBOARD_RESPONSES_TTL": ("responses_ttl_s", float),
            "SWITCHBOARD_RESPONSES_SWEEP_INTERVAL": ("responses_sweep_interval_s", float),
            "SWITCHBOARD_LOG_SEARCH_BUDGET": ("log_search_budget_s", float),
            "SWITCHBOARD_UPSTREAM_TIMEOUT": ("upstream_timeout_s", float),
            "SWITCHBOARD_CONNECT_TIMEOUT": ("upstream_connect_timeout_s", float),
            "SWITCHBOARD_SHUTDOWN_GRACE": ("shutdown_grace_s", float),
            "SWITCHBOARD_CIRCUIT_THRESHOLD": ("circuit_failure_threshold", int),
            "SWITCHBOARD_CIRCUIT_COOLDOWN": ("circuit_cooldown_s", float),
            "SWITCHBOARD_ALERT_INTERVAL": ("alert_interval_s", float),
            "SWITCHBOARD_BUDGET_TIMEOUT": ("budget_timeout_s", float),
            "SWITCHBOARD_DLP_SCAN_TIMEOUT": ("dlp_scan_timeout_s", float),
            "SWITCHBOARD_DLP_SCAN_THREADS": ("dlp_scan_threads", int),
            "SWITCHBOARD_METRICS_MAX_ORGANIZATIONS": ("metrics_max_organizations", int),
            "SWITCHBOARD_METRICS_MAX_MODELS": ("metrics_max_models", int),
            "SWITCHBOARD_DLP_SCAN_PROCESSES": ("dlp_scan_processes", int),
            "SWITCHBOARD_RESERVE_WEB_SEARCHES": ("default_reserve_web_searches", int),
        }
        for var, (field, conv) in numeric.items():
            if env.get(var):
                try:
                    values[field] = conv(env[var])
                except ValueError:
                    kind = "a whole number" if conv is int else "a number"
                    raise ValueError(f"{var} must be {kind}, not {env[var]!r}") from None
        if env.get("SWITCHBOARD_REDIS_PREFIX"):
            values["redis_prefix"] = env["SWITCHBOARD_REDIS_PREFIX"]
        if env.get("SWITCHBOARD_LOGIN_ADDRESS_HEADER"):
            values["login_address_header"] = env["SWITCHBOARD_LOGIN_ADDRESS_HEADER"].lower()
        if env.get("SWITCHBOARD_TRANSPORT"):
            values["transport"] = env["SWITCHBOARD_TRANSPORT"]
        if env.get("SWITCHBOARD_LOG_BODIES"):
            values["log_bodies"] = env["SWITCHBOARD_LOG_BODIES"].lower() not in ("0", "false", "no")
        values["log_format"] = parse_log_format(env.get("SWITCHBOARD_LOG_FORMAT"))
        if env.get("SWITCHBOARD_REQUEST_LOG"):
            values["request_log"] = _flag(env["SWITCHBOARD_REQUEST_LOG"])
        values["tracing"] = otel_traces_enabled(env)
        if env.get("SWITCHBOARD_TRACE_CONTENT"):
            values["trace_content"] = _flag(env["SWITCHBOARD_TRACE_CONTENT"])
        if env.get("SWITCHBOARD_UNPRICED_MODEL_PRICE"):
            values["unpriced_model_price"] = _price_pair(env["SWITCHBOARD_UNPRICED_MODEL_PRICE"])
        sources = {field: var for var, (field, _) in numeric.items()} | {
            "transport": "SWITCHBOARD_TRANSPORT",
            "redis_prefix": "SWITCHBOARD_REDIS_PREFIX",
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ValueError(_named(exc, sources, env)) from None


def _named(exc: ValidationError, sources: Mapping[str, str], env: Mapping[str, str]) -> str:
    """Pydantic's complaints in the operator's terms: the variable that was set, and its value."""
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        var = sources.get(field)
        where = f"{var}={env[var]!r}" if var and var in env else field
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def otel_traces_enabled(env: Mapping[str, str]) -> bool:
    """Whether the standard ``OTEL_*`` variables ask for traces; raises on what we cannot do.

    Unlike the SDK's own default (OTLP to localhost), nothing is exported unless asked: an
    operator who never set up a collector must not get a stream of failed exports.
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    exporters = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    exporters = [e for e in exporters if e]
    if exporters:
        unknown = [e for e in exporters if e not in ("otlp", "none")]
        if unknown:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={','.join(unknown)} is not supported: use 'otlp' or 'none'"
            )
        enabled = "otlp" in exporters
    else:
        enabled = bool(
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
    if enabled and protocol and protocol.strip() != _OTLP_PROTOCOL:
        raise ValueError(
            f"OTLP protocol {protocol!r} is not supported: traces are exported with "
            f"{_OTLP_PROTOCOL!r} (OTEL_EXPORTER_OTLP_PROTOCOL)"
        )
    return enabled


def _flag(text: str) -> bool:
    return text.strip().lower() not in ("0", "false", "no", "off")


def _price_pair(text: str) -> tuple[Decimal, Decimal]:
    """``"INPUT,OUTPUT"`` USD per million tokens (one number: both), each finite and >= 0."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) not in (1, 2):
            raise InvalidOperation
        pair = tuple(Decimal(p) for p in parts)
    except InvalidOperation:
        raise ValueError(
            f"SWITCHBOARD_UNPRICED_MODEL_PRICE must be 'INPUT,OUTPUT' USD per million tokens "
            f"(e.g. '5,15'), got {text!r}"
        ) from None
    if not all(p.is_finite() and p >= 0 for p in pair):
        raise ValueError(f"SWITCHBOARD_UNPRICED_MODEL_PRICE must be >= 0, got {text!r}")
    return (pair[0], pair[-1])
