"""What alerts are delivered to in the tests: a local webhook receiver and a local SMTP server.

Both are real servers on 127.0.0.1 (uvicorn in a thread; aiosmtpd's ``Controller``), written
independently of ``backend.alerts`` (the signature is checked here with ``hmac`` directly).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Any

import orjson
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.base import free_port


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        """``x-switchboard-signature`` is sha256=HMAC(secret, "<timestamp>.<raw body>")."""
        ts = self.headers.get("x-switchboard-timestamp", "")
        expected = hmac.new(secret.encode(), f"{ts}.".encode() + self.body, hashlib.sha256)
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        return fresh and hmac.compare_digest(
            f"sha256={expected.hexdigest()}", self.headers.get("x-switchboard-signature", "")
        )


class WebhookReceiver:
    """Records every POST; answers ``status`` (200 by default)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.hooks: list[Hook] = []
        self.status = 200
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        self.hooks.append(
            Hook(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        return Response("ok", status_code=self.status)

    def start(self) -> WebhookReceiver:
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def of(self, path: str, kind: str | None = None) -> list[Hook]:
        out = [h for h in self.hooks if h.path == path]
        if kind is not None:
            out = [h for h in out if h.json.get("type") == kind]
        return out


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._sink.messages.append(message_from_bytes(envelope.original_content))
        self._sink.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpSink:
    """A local SMTP server (aiosmtpd) keeping every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        self._controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        # Long subjects arrive folded over lines: compare them unfolded.
        return [" ".join(str(m["Subject"]).split()) for m in self.messages]
