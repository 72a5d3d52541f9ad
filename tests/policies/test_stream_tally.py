"""What a stream relayed: a bounded copy for the log, and the usage billed when it is abandoned."""

from __future__ import annotations

from backend.data.log_record import MAX_BODY_CHARS
from backend.ir.chat import ChatRequest, Message, TextPart, Usage
from backend.ir.estimate import estimate_tokens
from backend.ir.stream import BlockStart, TextDelta, ThinkingDelta, ToolArgsDelta
from backend.policies.stream_tally import StreamTally, abandoned_usage


def test_the_log_copy_stays_bounded_while_the_stream_goes_on() -> None:
    tally = StreamTally(keep_text=True)
    piece = "x" * 1000
    for _ in range(5000):  # 5 million characters relayed
        tally.feed(TextDelta(0, piece))
    assert tally.chars == 5_000_000
    # Collected up to the bound (one piece past it at most), not the whole answer.
    assert tally.kept <= MAX_BODY_CHARS + len(piece)
    assert sum(len(p) for p in tally.parts) == tally.kept
    body = tally.body()
    assert body is not None and len(body) == MAX_BODY_CHARS and body.endswith("[clipped]")


def test_every_kind_of_generated_text_counts_and_nothing_is_kept_without_bodies() -> None:
    tally = StreamTally(keep_text=False)
    for ev in (
        BlockStart(0, "text"),
        TextDelta(0, "abcd"),
        ThinkingDelta(1, thinking="efgh"),
        ToolArgsDelta(2, '{"a":1}'),
    ):
        tally.feed(ev)
    assert tally.chars == 4 + 4 + 7
    assert tally.body() is None and tally.parts == []


REQ = ChatRequest(model="m", messages=[Message(role="user", parts=[TextPart("hello " * 50)])])


def test_abandoned_usage_uses_the_providers_counts_when_larger() -> None:
    billed = abandoned_usage(Usage(input_tokens=40, output_tokens=30, cached_tokens=8), REQ, 20)
    assert billed.usage == Usage(input_tokens=40, output_tokens=30, cached_tokens=8)
    assert not billed.input_estimated and not billed.output_estimated
    assert "as reported by the provider" in billed.note(20)


def test_abandoned_usage_estimates_what_the_provider_had_not_counted() -> None:
    # Anthropic's provisional message_start: input counted, output 1.
    billed = abandoned_usage(Usage(input_tokens=40, output_tokens=1), REQ, 401)
    assert billed.usage == Usage(input_tokens=40, output_tokens=101)  # ceil(401 / 4)
    assert billed.output_estimated and not billed.input_estimated
    # OpenAI counts nothing before its last chunk: input from the request.
    billed = abandoned_usage(Usage(), REQ, 8)
    assert billed.usage == Usage(input_tokens=estimate_tokens(REQ), output_tokens=2)
    assert billed.input_estimated and billed.output_estimated
    assert "input tokens estimated" in billed.note(8) and "8 characters" in billed.note(8)
