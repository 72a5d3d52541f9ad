"""DLP micro-benchmark: redaction cost per KB of prompt and the streaming restorer's overhead.

Run: ``.venv/bin/python benchmarks/dlp_bench.py`` (a few seconds). Numbers are the best of
several repeats of the process CPU time (the least noisy estimate of the code's own cost on a
shared machine), in microseconds.

- redaction: ``redact_request`` over a one-message request, all built-in rules on, for typical
  prose (no values), prose with a handful of values per KB, and source code;
- streaming: ``StreamRestorer.feed`` per chunk for a placeholder-laden answer cut in 4-character
  chunks, against the same events passed through with an empty vault (the DLP-off path), plus
  the one-off setup and the first chunk (what DLP adds to time to first token).
"""

from __future__ import annotations

import inspect
import json.decoder
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.dlp import DlpPolicy, Redactor, StreamRestorer, Vault, redact_request
from backend.ir.chat import ChatRequest, Message, TextPart, Usage
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
)

PROSE = (
    "Thanks for the update on the Q3 planning. Before we commit to the new timeline, I would "
    "like the team to review the migration plan for the billing service, because the last "
    "rollout took 2 weeks longer than expected and we had to roll back twice. Could you "
    "summarise the open risks, the owners of each work item, and what we still need from the "
    "infrastructure group? Please keep the summary short: 3 or 4 bullet points are enough, and "
    "link the design document (version 2.4) where the details live. We meet again on Thursday "
    "at 14:30 to decide. "
)
VALUES = (
    "Contact jane.doe@example.com or call +1 (415) 555-2671. ",
    "The card on file is 4111 1111 1111 1111 and the IBAN is DE89 3704 0044 0532 0130 00. ",
    "Her SSN is 078-05-1120; the server at 10.20.30.40 uses key sk-proj-Ab3dEf6hIj9kLmN0pQrStUv. ",
)


def _kb(text: str, size: int = 8192) -> str:
    return (text * (size // len(text) + 1))[:size]


def _prose_with_values() -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < 8192:
        parts.append(PROSE)
        parts.extend(VALUES)
    return "".join(parts)


def _code() -> str:
    return _kb(inspect.getsource(json.decoder), 8192)


def _best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best per-call CPU time in microseconds (CPU time: the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - t0) / number)
    return best * 1e6


def bench_redaction(redactor: Redactor) -> None:
    print("redaction (redact_request, all built-in rules), microseconds per KB of prompt")
    cases = {
        "typical prose": _kb(PROSE),
        "prose with values": _prose_with_values(),
        "code (json/decoder.py)": _code(),
    }
    for name, text in cases.items():
        req = ChatRequest(model="m", messages=[Message("user", [TextPart(text)])])
        _, vault, findings = redact_request(req, redactor)

        def run(req: ChatRequest = req) -> None:
            redact_request(req, redactor)

        per_call = _best(run, number=20)
        matches = sum(f.count for f in findings)
        print(
            f"  {name:<24} {per_call / (len(text) / 1024):8.1f} us/KB"
            f"   ({len(text)} chars, {matches} matches, {len(vault)} placeholders)"
        )


def _answer_events(vault: Vault, chunk: int = 4) -> list[StreamEvent]:
    placeholders = [p for p, _ in vault.items()]
    text = "".join(
        f"Sure - about {placeholders[i % len(placeholders)]}, the record was updated. "
        for i in range(40)
    )
    events: list[StreamEvent] = [StreamStart(id="x", model="m"), BlockStart(0, "text")]
    events += [TextDelta(0, text[i : i + chunk]) for i in range(0, len(text), chunk)]
    events += [BlockStop(0), StreamEnd("stop", Usage())]
    return events


def bench_stream(redactor: Redactor) -> None:
    req = ChatRequest(model="m", messages=[Message("user", [TextPart(_prose_with_values())])])
    _, vault, _ = redact_request(req, redactor)
    events = _answer_events(vault)
    deltas = sum(1 for e in events if isinstance(e, TextDelta))

    def run(v: Vault) -> None:
        restorer = StreamRestorer(v)
        for ev in events:
            restorer.feed(ev)

    off = _best(lambda: run(Vault()), number=20)
    on = _best(lambda: run(vault), number=20)
    setup = _best(lambda: StreamRestorer(vault), number=200)
    first = events[2]

    def first_chunk() -> None:
        StreamRestorer(vault).feed(first)

    ttft = _best(first_chunk, number=200)
    print(f"streaming restore ({len(vault)} placeholders in the vault, {deltas} 4-char chunks)")
    print(f"  empty vault (DLP off)    {off / len(events):8.2f} us/event")
    print(f"  restoring                {on / len(events):8.2f} us/event")
    print(f"  added per chunk          {(on - off) / deltas:8.2f} us")
    print(f"  restorer setup           {setup:8.2f} us (once per request)")
    print(f"  added to first token     {ttft:8.2f} us (setup + first chunk)")


def main() -> None:
    t0 = time.perf_counter()
    redactor = Redactor.from_policy(DlpPolicy())
    bench_redaction(redactor)
    bench_stream(redactor)
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
