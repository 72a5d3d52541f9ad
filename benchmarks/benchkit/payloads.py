"""Request bodies the load generators send and static answers the fake provider returns."""

from __future__ import annotations

import orjson

MODEL = "gpt-4o-mini"
#: Streaming requests go to a second fake location, reached through a custom provider.
SSE_PROVIDER = "ssefake"
STREAM_CHUNKS = 20

PROMPT = (
    "You are a helpful assistant. Summarise the following note in one sentence: the quarterly "
    "report is due on Friday, the numbers from the sales team are in the shared folder, and "
    "the review meeting moved to Thursday at ten."
)
#: The full-pipeline prompt carries a value DLP replaces (so redaction really runs).
DLP_PROMPT = PROMPT + " Questions go to jane.doe@example.com."


def chat_completion() -> bytes:
    """A realistic non-streaming OpenAI chat completion (what nginx returns)."""
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": 1767225600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "The report is due Friday, sales numbers are in the shared "
                        "folder, and the review meeting is now Thursday at ten.",
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 52,
                "completion_tokens": 26,
                "total_tokens": 78,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def sse_stream(chunks: int = STREAM_CHUNKS) -> bytes:
    """``chunks`` content deltas, a finish chunk, a usage chunk and ``[DONE]``."""
    base = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }
    frames = []
    for i in range(chunks):
        delta: dict[str, object] = {"content": f" word{i}"}
        if i == 0:
            delta = {"role": "assistant", "content": "Hello", "refusal": None}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        frames.append({**base, "choices": [choice], "usage": None})
    frames.append(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "usage": None,
        }
    )
    frames.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 52,
                "completion_tokens": chunks,
                "total_tokens": 52 + chunks,
            },
        }
    )
    body = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    return body + b"data: [DONE]\n\n"


def openai_request(model: str, *, stream: bool = False, prompt: str = PROMPT) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 256,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def anthropic_request(model: str, *, stream: bool = False, prompt: str = PROMPT) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


#: What counts as the first token in a streamed answer, per wire format (a regex on raw bytes).
FIRST_TOKEN = {
    "openai": rb'"content": ?"[^"]',
    "anthropic": rb'"text_delta"',
}
#: What a complete stream ends with.
STREAM_END = {"openai": b"[DONE]", "anthropic": b"message_stop"}
