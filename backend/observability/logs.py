"""Process logging: text or one JSON object per line, request lines, and refusals once per cause.

``SWITCHBOARD_LOG_FORMAT=json`` makes every line (the gateway's, uvicorn's, every library's) one
JSON object: ``ts``, ``level``, ``logger``, ``message``, plus the fields the call passed in
``extra`` (request lines carry request id, org, model, status and latency), and ``exc`` for a
traceback. ``logging_config`` is the one configuration, applied by the CLI and handed to uvicorn,
which applies it again in every worker process.

``RequestLog`` is what the pipeline reports each finished request to:

- one INFO line per request on ``switchboard.requests`` when request lines are on
  (``SWITCHBOARD_REQUEST_LOG``; default on with the JSON format, off with text);
- a WARNING the first time each cause of refusal is seen (status, kind, code, provider), so an
  operator learns why clients are refused without a line per request; later refusals of that
  cause are counted, and the counts are logged when the gateway stops.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.config
import re
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from backend.ir.errors import GatewayError
    from backend.policies.context import RequestContext

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Distinct refusal causes remembered; past this, refusals of new causes are only counted.
MAX_CAUSES = 256
#: Anything shaped like a credential in an error text (``sk-...``, ``AIza...``, a bearer token,
#: a long opaque run): provider error messages sometimes echo part of a key.
_SECRET_LIKE = re.compile(
    r"(?i)\b(?:bearer\s+\S+|sk-[\w\-*.]{4,}|sk_[\w\-*.]{4,}|AIza[\w\-]{4,}|[A-Za-z0-9_+/=]{32,})"
)
_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)

log = logging.getLogger("switchboard")
request_lines = logging.getLogger("switchboard.requests")


def parse_log_format(text: str | None) -> LogFormat:
    value = (text or "text").strip().lower()
    if value not in ("text", "json"):
        raise ValueError(f"SWITCHBOARD_LOG_FORMAT must be 'text' or 'json', got {text!r}")
    return "json" if value == "json" else "text"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def logging_config(fmt: LogFormat = "text", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the whole process (uvicorn's ``log_config`` too)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"switchboard": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "switchboard",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own handlers would print its lines in its own format: ours instead.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            # One INFO line per upstream call would cost time on the hot path and flood the log.
            "httpx": {"level": "WARNING"},
            # "Tortoise-ORM shutdown" on every connection close says nothing an operator needs.
            "tortoise": {"level": "WARNING"},
        },
    }


def configure_logging(fmt: LogFormat = "text", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(fmt, level))


def scrub(text: str) -> str:
    """``text`` with anything credential-shaped replaced, for log lines quoting an error."""
    return _SECRET_LIKE.sub("[redacted]", text)


Cause = tuple[int, str, str, str]


class RequestLog:
    """The log side of a finished request (see the module docstring). One per process."""

    def __init__(self, *, lines: bool = False, max_causes: int = MAX_CAUSES) -> None:
        self.lines = lines
        self._max_causes = max_causes
        #: cause -> refusals seen; bounded by ``max_causes``.
        self.refusals: dict[Cause, int] = {}
        #: Refusals whose cause arrived after the bound was reached.
        self.uncounted = 0

    def finished(self, ctx: RequestContext) -> None:
        """Called once per request with its ``RequestContext``."""
        if ctx.error is not None:
            self._refused(ctx)
        if self.lines:
            self._line(ctx)

    def _refused(self, ctx: RequestContext) -> None:
        assert ctx.error is not None
        self.refused(
            ctx.error, request_id=ctx.request_id, endpoint=ctx.endpoint, provider=ctx.provider
        )

    def refused(
        self, err: GatewayError, *, request_id: str, endpoint: str, provider: str | None = None
    ) -> None:
        """Count a refusal; log it at WARNING if it is the first of its cause.

        Also for answers that never reach the pipeline (unknown routes, ``/v1/models``,
        ``count_tokens``, error reports): every refusal a client gets has its reason logged.
        """
        cause: Cause = (err.status, err.kind, err.code or "", provider or "")
        seen = self.refusals.get(cause)
        if seen is not None:
            self.refusals[cause] = seen + 1
            return
        if len(self.refusals) >= self._max_causes:
            self.uncounted += 1
            return
        self.refusals[cause] = 1
        status, kind, code, provider = cause
        log.warning(
            "refused with %s %s%s%s: %s (first of this cause; more are counted, not logged)",
            status,
            kind,
            f"/{code}" if code else "",
            f" (provider {provider})" if provider else "",
            scrub(err.message[:500]),
            extra={
                "request_id": request_id,
                "endpoint": endpoint,
                "status": status,
                "error_type": kind,
                "error_code": code or None,
                "provider": provider or None,
            },
        )

    def _line(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        latency_ms = round(ctx.elapsed_ms(), 1)
        model = ctx.actual_model or ctx.requested_model
        request_lines.info(
            "%s %s %s %.0fms",
            ctx.endpoint,
            ctx.status,
            model or "-",
            latency_ms,
            extra={
                "request_id": ctx.request_id,
                "org_id": principal.org_id if principal is not None else None,
                "endpoint": ctx.endpoint,
                "model": model,
                "requested_model": ctx.requested_model,
                "provider": ctx.provider,
                "status": ctx.status,
                "latency_ms": latency_ms,
                "ttft_ms": None if ctx.ttft_ms is None else round(ctx.ttft_ms, 1),
                "streamed": ctx.streamed,
                "attempts": max(ctx.attempts, 1),
                "cache_hit": ctx.cache_hit,
                "error_type": ctx.error.kind if ctx.error is not None else None,
                "input_tokens": ctx.usage.input_tokens,
                "output_tokens": ctx.usage.output_tokens,
            },
        )

    def close(self) -> None:
        """Log how many refusals each cause had since the start (one line, if any)."""
        if not self.refusals and not self.uncounted:
            return
        parts = [
            f"{status} {kind}{'/' + code if code else ''}{' ' + provider if provider else ''}: {n}"
            for (status, kind, code, provider), n in sorted(
                self.refusals.items(), key=lambda item: -item[1]
            )
        ]
        if self.uncounted:
            parts.append(f"other causes: {self.uncounted}")
        log.info("refusals since start: %s", "; ".join(parts))
