"""Fake upstream providers: real HTTP servers on 127.0.0.1 speaking a provider's wire format.

Each provider module (``openai_fake``, ``anthropic_fake``, ``gemini_fake``, ``ollama_fake``)
subclasses ``FakeUpstream`` and renders scripted ``Reply`` objects in its own JSON/SSE/NDJSON.
Tests queue replies and inspect ``requests`` (exactly what reached the "provider").

    with OpenAIFake() as fake:           # starts uvicorn in a thread on a free port
        fake.replies.append(Reply(text="hi"))
        ... fake.base_url ...
        assert fake.requests[0].json["model"] == "gpt-4o-mini"

With no queued reply a fake answers ``Reply(text="ok")``, or, when ``fake.script`` is set, what
the ``AgentScript`` makes of the request (a scripted model in an agent loop: a call of one of the
client's tools, then a final text once the tool's result comes back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = "call_1"


@dataclass
class Reply:
    """A scripted upstream answer; each fake renders it in its own protocol."""

    text: str | None = "ok"
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: Streamed text is cut into these many pieces (at least 1); ``None`` = one chunk per char up
    #: to 20 chunks.
    chunks: int | None = None
    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int = 0
    #: Part of ``output_tokens`` (OpenAI's ``completion_tokens_details.reasoning_tokens``).
    reasoning_tokens: int = 0
    finish: str = "stop"  # canonical: stop | length | tool_calls
    #: Non-2xx answer: the fake sends its protocol's error body with this status.
    status: int = 200
    error_message: str = "upstream failure"
    #: Seconds to wait before answering (for timeouts / latency ordering tests).
    delay: float = 0.0
    #: Stream only: send this many chunks then drop the connection without a proper end.
    drop_after: int | None = None
    #: Stream only: after this many frames, wait ``pause_s`` before the rest (a slow model).
    pause_after: int | None = None
    pause_s: float = 0.0
    #: Raw body to send as-is with ``status`` (invalid JSON, truncated SSE...).
    raw: bytes | None = None
    raw_content_type: str = "application/json"
    model: str | None = None

    def text_pieces(self) -> list[str]:
        text = self.text or ""
        if not text:
            return []
        n = self.chunks if self.chunks is not None else min(len(text), 20)
        n = max(1, min(n, len(text)))
        size, rem = divmod(len(text), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < rem else 0)
            out.append(text[pos : pos + step])
            pos += step
        return out


@dataclass
class Turn:
    """What a scripted model looks at in a chat request, whatever its protocol."""

    #: Names of the tools the client offered.
    tools: list[str]
    #: The text of the last user message (system messages after it are skipped).
    user_text: str
    #: The results the request's last turn carries back (text of each tool result).
    tool_results: list[str]


@dataclass
class AgentScript:
    """A model that uses one of the client's own tools when asked to, then finishes.

    When the last user text holds ``keyword`` and the client offers a tool named ``tool``, the
    answer is one call of it with ``arguments``; when the last turn carries tool results back,
    the answer is ``final_text``. Anything else gets no scripted answer (the fake's default).
    ``thinking`` goes with the tool call where the fake's reply class can render thinking.
    """

    keyword: str
    tool: str
    arguments: dict[str, Any]
    final_text: str
    call_id: str = "toolu_script_01"
    thinking: str | None = None

    def reply(self, turn: Turn, reply_class: type[Reply] = Reply) -> Reply | None:
        if turn.tool_results:
            return reply_class(text=self.final_text)
        if self.keyword in turn.user_text and self.tool in turn.tools:
            call = ToolCall(self.tool, dict(self.arguments), id=self.call_id)
            extra: dict[str, Any] = {}
            names = {f.name for f in dataclasses.fields(reply_class)}
            if self.thinking is not None and "thinking" in names:
                extra["thinking"] = self.thinking
            return reply_class(text=None, tool_calls=[call], **extra)
        return None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeUpstream:
    """Base: owns the server thread, the reply queue and the request record."""

    #: The class scripted replies are made of (a provider's own subclass renders more parts).
    reply_class: type[Reply] = Reply

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        #: Answers chat requests when no reply is queued (see ``AgentScript``).
        self.script: AgentScript | None = None
        self.requests: list[RecordedRequest] = []
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=self.routes())

    # -- subclass API --------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def turn(self, rec: RecordedRequest) -> Turn | None:
        """The scripted model's view of a chat request (``None``: not a chat request)."""
        return None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- helpers for subclasses ----------------------------------------------------------------
    async def record(self, request: Request) -> tuple[RecordedRequest, Reply]:
        body = await request.body()
        rec = RecordedRequest(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.requests.append(rec)
        reply = self.replies.popleft() if self.replies else self._scripted(rec) or Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return rec, reply

    def _scripted(self, rec: RecordedRequest) -> Reply | None:
        if self.script is None:
            return None
        turn = self.turn(rec)
        return None if turn is None else self.script.reply(turn, self.reply_class)

    @staticmethod
    def raw_response(reply: Reply) -> Response:
        assert reply.raw is not None
        return Response(reply.raw, status_code=reply.status, media_type=reply.raw_content_type)

    @staticmethod
    def json_response(obj: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(obj), status_code=status, media_type="application/json")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()
        self.script = None
