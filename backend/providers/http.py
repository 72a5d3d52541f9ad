"""Upstream HTTP clients: one pooled ``httpx.AsyncClient`` per provider, transport swappable.

The pipeline speaks httpx's API everywhere; what sits under it decides throughput. httpcore's
default pool measured an order of magnitude slower than aiohttp under concurrency on these
machines, so the default transport is aiohttp (via ``httpx-aiohttp``);
``SWITCHBOARD_TRANSPORT=httpx`` selects plain httpcore (benchmarks compare both).
"""

from __future__ import annotations

from typing import Literal

import httpx

TransportName = Literal["aiohttp", "httpx"]


def make_transport(name: TransportName = "aiohttp") -> httpx.AsyncBaseTransport:
    if name == "httpx":
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        )
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport()


def make_http_client(
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 600.0,
    connect_timeout_s: float = 10.0,
    transport: TransportName = "aiohttp",
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        transport=make_transport(transport),
    )
