"""Restoration of answers: non-streaming, and streaming with placeholders split across chunks."""

from __future__ import annotations

import json

from backend.dlp import (
    DlpPolicy,
    Finding,
    Redactor,
    StreamRestorer,
    Vault,
    redact_text,
    restore_response,
    restore_text,
)
from backend.ir.chat import (
    ChatResponse,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from backend.ir.errors import UpstreamError
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from tests.dlp.samples import PEM

REDACTOR = Redactor.from_policy(DlpPolicy(custom_rules=[("quoted", r'say "[a-z]+"')]))
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def _vault(*values: str) -> Vault:
    vault = Vault()
    redact_text(" | ".join(values), REDACTOR, vault)
    return vault


def _resp(*parts: Part) -> ChatResponse:
    return ChatResponse("r", "m", list(parts), "stop", Usage())


def _text_of(events: list[StreamEvent], kind: type = TextDelta) -> str:
    out = []
    for ev in events:
        if isinstance(ev, TextDelta) and kind is TextDelta:
            out.append(ev.text)
        elif isinstance(ev, ToolArgsDelta) and kind is ToolArgsDelta:
            out.append(ev.partial_json)
    return "".join(out)


def _stream(vault: Vault, chunks: list[str], kind: str = "text") -> tuple[list[StreamEvent], int]:
    """Feed one block of ``chunks``; return the events out and the largest hold seen."""
    restorer = StreamRestorer(vault)
    make = TextDelta if kind == "text" else ToolArgsDelta
    events: list[StreamEvent] = [
        StreamStart("id", "m"),
        BlockStart(0, "text" if kind == "text" else "tool_call", "c1", "f"),
    ]
    events += [make(0, c) for c in chunks]
    events += [BlockStop(0), StreamEnd("stop", Usage())]
    out: list[StreamEvent] = []
    max_held = 0
    for ev in events:
        out.extend(restorer.feed(ev))
        max_held = max(max_held, restorer.held_chars)
        assert restorer.held_chars <= restorer.max_hold
    return out, max_held


# -- non-streaming --------------------------------------------------------------------------


def test_restore_response_text_and_tool_arguments() -> None:
    vault = _vault(EMAIL, CARD, PEM, 'say "hi"')
    args = json.dumps({"to": "[EMAIL_1]", "key": "[SECRET_1]", "note": "[QUOTED_1] [CARD_1]"})
    resp = _resp(
        TextPart("Mail [EMAIL_1] about [CARD_1]; [EMAIL_1] again."),
        ToolCallPart("call_1", "send", args),
    )
    out = restore_response(resp, vault)
    assert out.content[0] == TextPart(f"Mail {EMAIL} about {CARD}; {EMAIL} again.")
    call = out.content[1]
    assert isinstance(call, ToolCallPart)
    # Newlines of the key and the quotes of the custom value are JSON-escaped: still valid.
    assert json.loads(call.arguments) == {"to": EMAIL, "key": PEM, "note": f'say "hi" {CARD}'}
    assert resp.content[0] == TextPart("Mail [EMAIL_1] about [CARD_1]; [EMAIL_1] again.")
    assert vault.restore_findings() == [
        Finding("card", 2),
        Finding("custom:quoted", 1),
        Finding("email", 3),
        Finding("secret", 1),
    ]


def test_restore_response_restores_the_further_choices_of_an_n_answer() -> None:
    vault = _vault(EMAIL, CARD)
    args = json.dumps({"to": "[EMAIL_1]"})
    logprobs = {"content": [{"token": "[EMAIL", "logprob": -0.1, "top_logprobs": []}]}
    choices = [
        {
            "index": 1,
            "message": {"role": "assistant", "content": "Card [CARD_1]", "refusal": None},
            "logprobs": logprobs,
            "finish_reason": "stop",
        },
        {
            "index": 2,
            "message": {
                "role": "assistant",
                "content": [{"type": "text", "text": "to [EMAIL_1]"}],
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}
                ],
            },
            "finish_reason": "tool_calls",
        },
    ]
    resp = _resp(TextPart("[EMAIL_1]"))
    resp.extra = {"openai_choices": choices, "openai_logprobs": logprobs}
    out = restore_response(resp, vault)
    second, third = out.extra["openai_choices"]
    assert second["message"] == {"role": "assistant", "content": f"Card {CARD}", "refusal": None}
    assert second["logprobs"] == logprobs and second["index"] == 1
    assert third["message"]["content"] == [{"type": "text", "text": f"to {EMAIL}"}]
    call = third["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"to": EMAIL}
    assert out.extra["openai_logprobs"] == logprobs
    # The response given in is not changed (it may be the cached, redacted answer).
    assert choices[0]["message"]["content"] == "Card [CARD_1]"
    assert resp.extra["openai_choices"] is choices


def test_unknown_placeholders_and_thinking_are_left_alone() -> None:
    vault = _vault(EMAIL)
    resp = _resp(
        ThinkingPart(thinking="about [EMAIL_1]", signature="s"),
        TextPart("[EMAIL_2] [PHONE_1] [EMAIL_1 ] [email_1] [[EMAIL_1]]"),
    )
    out = restore_response(resp, vault)
    assert out.content[0] is resp.content[0]
    assert out.content[1] == TextPart(f"[EMAIL_2] [PHONE_1] [EMAIL_1 ] [email_1] [{EMAIL}]")


def test_empty_vault_restores_nothing_and_returns_the_same_object() -> None:
    resp = _resp(TextPart("[EMAIL_1]"))
    assert restore_response(resp, Vault()) is resp
    assert restore_text("[EMAIL_1]", Vault()) == "[EMAIL_1]"


# -- streaming ------------------------------------------------------------------------------


def test_placeholder_split_across_many_chunks() -> None:
    vault = _vault(EMAIL)
    answer = "Write to [EMAIL_1] today."
    out, max_held = _stream(vault, list(answer))  # one character per chunk
    assert _text_of(out) == f"Write to {EMAIL} today."
    # The client never sees a piece of the placeholder, and "Write to " is not held back.
    assert not any(isinstance(e, TextDelta) and "[" in e.text for e in out)
    assert max_held == len("[EMAIL_1") and max_held <= len("[EMAIL_1]") - 1
    first = next(e for e in out if isinstance(e, TextDelta))
    assert first.text == "W"


def test_text_is_emitted_immediately_when_no_placeholder_can_start() -> None:
    vault = _vault(EMAIL)
    restorer = StreamRestorer(vault)
    ev = TextDelta(0, "Hello there")
    assert restorer.feed(ev) == [ev]
    assert restorer.feed(TextDelta(0, "a [b]")) == [TextDelta(0, "a [b]")]
    # "[X" can no longer become a placeholder of this vault: out at once.
    assert restorer.feed(TextDelta(0, " [X")) == [TextDelta(0, " [X")]
    assert restorer.feed(TextDelta(0, " [EM")) == [TextDelta(0, " ")]
    assert restorer.held_chars == 3
    assert restorer.feed(TextDelta(0, "BER")) == [TextDelta(0, "[EMBER")]


def test_repeated_and_adjacent_placeholders() -> None:
    vault = _vault(EMAIL, CARD)
    answer = "x[EMAIL_1][CARD_1]y [EMAIL_1],[EMAIL_1]!"
    for size in (1, 2, 3, 5, 7, 100):
        chunks = [answer[i : i + size] for i in range(0, len(answer), size)]
        out, _ = _stream(vault, chunks)
        assert _text_of(out) == f"x{EMAIL}{CARD}y {EMAIL},{EMAIL}!"


def test_placeholder_inside_tool_call_argument_deltas() -> None:
    vault = _vault(EMAIL, PEM)
    args = json.dumps({"to": "[EMAIL_1]", "cc": ["[EMAIL_1]"], "key": "[SECRET_1]"})
    chunks = [args[i : i + 3] for i in range(0, len(args), 3)]
    out, _ = _stream(vault, chunks, kind="tool")
    assert all(
        isinstance(e, ToolArgsDelta) for e in out if isinstance(e, TextDelta | ToolArgsDelta)
    )
    assert json.loads(_text_of(out, ToolArgsDelta)) == {"to": EMAIL, "cc": [EMAIL], "key": PEM}


def test_held_text_is_flushed_before_block_stop_in_order() -> None:
    vault = _vault(EMAIL)
    restorer = StreamRestorer(vault)
    assert restorer.feed(TextDelta(0, "abc [EMAIL_")) == [TextDelta(0, "abc ")]
    stop = BlockStop(0)
    assert restorer.feed(stop) == [TextDelta(0, "[EMAIL_"), stop]
    assert restorer.held_chars == 0


def test_held_text_is_flushed_at_stream_end_and_stream_error() -> None:
    vault = _vault(EMAIL)
    for last in (StreamEnd("length", Usage()), StreamError(UpstreamError("boom"))):
        restorer = StreamRestorer(vault)
        restorer.feed(ToolArgsDelta(1, '{"a": "[EM'))
        assert restorer.feed(last) == [ToolArgsDelta(1, "[EM"), last]


def test_other_events_pass_through_in_order() -> None:
    vault = _vault(EMAIL)
    restorer = StreamRestorer(vault)
    events: list[StreamEvent] = [
        StreamStart("id", "m"),
        BlockStart(0, "thinking"),
        ThinkingDelta(0, "I will mail [EMAIL_1]"),
        ThinkingDelta(0, "", signature="sig"),
        BlockStop(0),
        BlockStart(1, "text"),
        TextDelta(1, "Done: [EMAIL_1]"),
        BlockStop(1),
        BlockStart(2, "tool_call", "c", "send"),
        ToolArgsDelta(2, '{"to": "[EMAIL_1]"}'),
        BlockStop(2),
        StreamEnd("tool_calls", Usage(1, 2)),
    ]
    out = [e for ev in events for e in restorer.feed(ev)]
    expected = list(events)
    expected[6] = TextDelta(1, f"Done: {EMAIL}")
    expected[9] = ToolArgsDelta(2, json.dumps({"to": EMAIL}))
    assert out == expected
    assert out[2] is events[2]  # thinking is not restored (Anthropic signs it)
    assert restorer.findings() == [Finding("email", 2)]


def test_empty_vault_is_a_passthrough() -> None:
    restorer = StreamRestorer(Vault())
    events: list[StreamEvent] = [
        StreamStart("id", "m"),
        BlockStart(0, "text"),
        TextDelta(0, "[EMAIL_1] [EM"),
        BlockStop(0),
        StreamEnd("stop", Usage()),
    ]
    for ev in events:
        out = restorer.feed(ev)
        assert len(out) == 1 and out[0] is ev
    assert restorer.max_hold == 0 and restorer.findings() == []


def test_hold_back_never_exceeds_the_longest_placeholder() -> None:
    vault = _vault(*(f"user{i}@example.com" for i in range(12)))  # [EMAIL_1] .. [EMAIL_12]
    longest = max(len(p) for p, _ in vault.items())
    assert longest == len("[EMAIL_12]")
    answer = "[EMAIL_1" + "[EMAIL_12]" + "[EMAIL_1]" + "[EMAIL_" + "[[[EMAIL_12"
    out, max_held = _stream(vault, list(answer))
    assert max_held <= longest - 1
    assert _text_of(out) == restore_text(answer, vault)


def test_interleaved_blocks_are_tracked_separately() -> None:
    vault = _vault(EMAIL)
    restorer = StreamRestorer(vault)
    out = []
    for ev in (TextDelta(0, "a [EMA"), ToolArgsDelta(1, '"[EMAIL'), TextDelta(0, "IL_1]")):
        out += restorer.feed(ev)
    out += restorer.feed(ToolArgsDelta(1, '_1]"'))
    assert out == [
        TextDelta(0, "a "),
        ToolArgsDelta(1, '"'),
        TextDelta(0, EMAIL),
        ToolArgsDelta(1, f'{EMAIL}"'),
    ]


def test_server_tool_input_deltas_hold_back_like_tool_arguments() -> None:
    """Anthropic streams a server tool's input (web search query) as ``input_json_delta`` pieces
    of an opaque block: a placeholder split across them comes back whole, JSON-escaped, and a
    piece held at the block's end goes out as the same kind of event."""
    vault = _vault(EMAIL, PEM)
    restorer = StreamRestorer(vault)
    use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    query = json.dumps({"query": "who is [EMAIL_1]", "key": "[SECRET_1]"})
    pieces = [query[i : i + 4] for i in range(0, len(query), 4)]
    events: list[StreamEvent] = [BlockStart(0, "opaque", opaque=Opaque("anthropic", use))]
    events += [
        OpaqueEvent(0, Opaque("anthropic", {"type": "input_json_delta", "partial_json": p}))
        for p in pieces
    ]
    events.append(BlockStop(0))
    out = [e for ev in events for e in restorer.feed(ev)]
    deltas = [e for e in out if isinstance(e, OpaqueEvent)]
    assert all(e.index == 0 and e.opaque.data["type"] == "input_json_delta" for e in deltas)
    text = "".join(e.opaque.data["partial_json"] for e in deltas)
    assert json.loads(text) == {"query": f"who is {EMAIL}", "key": PEM}
    assert isinstance(out[-1], BlockStop) and restorer.held_chars == 0
    # A piece ending in a placeholder's prefix at the block's end is flushed as it came.
    restorer = StreamRestorer(vault)
    cut = OpaqueEvent(1, Opaque("anthropic", {"type": "input_json_delta", "partial_json": '"[EM'}))
    assert restorer.feed(cut) == [
        OpaqueEvent(1, Opaque("anthropic", {"type": "input_json_delta", "partial_json": '"'}))
    ]
    assert restorer.feed(BlockStop(1)) == [
        OpaqueEvent(1, Opaque("anthropic", {"type": "input_json_delta", "partial_json": "[EM"})),
        BlockStop(1),
    ]


def test_a_citations_delta_is_restored_in_place() -> None:
    vault = _vault(EMAIL)
    restorer = StreamRestorer(vault)
    citation = {
        "type": "char_location",
        "cited_text": "Mail [EMAIL_1] today.",
        "document_index": 0,
        "document_title": "Notes",
    }
    ev = OpaqueEvent(2, Opaque("anthropic", {"type": "citations_delta", "citation": citation}))
    (out,) = restorer.feed(ev)
    assert isinstance(out, OpaqueEvent) and out.index == 2
    assert out.opaque.data["citation"] == {**citation, "cited_text": f"Mail {EMAIL} today."}
