"""Server-sent events: an incremental parser for upstream streams and a frame encoder.

The parser accepts LF, CRLF or CR line endings (Gemini frames with CRLF) and yields events as
soon as their blank line arrives; partial lines stay buffered until the next chunk.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    __slots__ = ("_buf", "_data", "_decoder", "_event")

    def __init__(self) -> None:
        # Incremental: a multi-byte character split across two network chunks stays whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes | str) -> list[SSEEvent]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        self._buf += text
        if "\r" in self._buf:
            # Keep a trailing lone CR: it may be the first half of a CRLF split across chunks.
            tail = "\r" if self._buf.endswith("\r") else ""
            body = self._buf[:-1] if tail else self._buf
            self._buf = body.replace("\r\n", "\n").replace("\r", "\n") + tail
        if "\n" not in self._buf:
            return []
        # One split per chunk (slicing the buffer line by line was quadratic in the chunk).
        lines = self._buf.split("\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data or self._event is not None:
                    out.append(SSEEvent(self._event, "\n".join(self._data)))
                self._event = None
                self._data = []
                continue
            if line[0] == ":":
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
        return out

    def close(self) -> list[SSEEvent]:
        """Flush an event left without its final blank line (a truncated stream)."""
        out = self.feed("\n\n") if (self._buf or self._data) else []
        return out


def sse_frame(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
