"""``switchboard serve --server granian``: the same app factory on granian (a Rust HTTP server).

Measured side by side (``benchmarks/README.md``, "ASGI server"), granian used ~15 % less CPU per
proxied request than uvicorn. uvicorn stays the default all the same: it carries limits granian
has no hook for (``security.http_limits``: the 431 for an oversized request head with a body both
SDKs read and an ``x-request-id``, the 408 for a stalled head; granian bounds the head with its
own buffer size and header timeout and answers those itself, without our body or request id,
which ``tests/e2e/test_server_limits.py`` requires). What it maps:

- ``SWITCHBOARD_MAX_HEADER_BYTES`` -> HTTP/1 ``max_buffer_size``, ``SWITCHBOARD_HEADER_TIMEOUT``
  -> ``header_read_timeout``; ``SWITCHBOARD_SHUTDOWN_GRACE`` -> ``workers_kill_timeout``;
- the process's logging config; no access log; uvloop; the factory ``backend.app:app_from_env``.
"""

from __future__ import annotations

from typing import Any


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    log_config: dict[str, Any],
    max_head_bytes: int,
    head_timeout_s: float,
    shutdown_grace_s: float,
) -> None:
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    Server(
        "backend.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(head_timeout_s * 1000), max_buffer_size=max_head_bytes
        ),
        log_dictconfig=log_config,
        log_access=False,
        workers_kill_timeout=max(1, int(shutdown_grace_s)),
    ).serve()
