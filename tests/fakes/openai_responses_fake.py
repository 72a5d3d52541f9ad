"""OpenAI's ``POST /v1/responses`` for the fake OpenAI server: JSON and the full SSE sequence.

Written from OpenAI's API reference and recorded streams, independently of the gateway's codec
(``backend.protocols.openai_responses``): sharing code would hide a codec bug. A ``Reply``
becomes ``output`` items in this order: a ``reasoning`` item (an ``OpenAIReply`` with
``reasoning_content``: its summary, plus ``encrypted_content`` when the request's ``include``
asks for it), a ``message`` with one ``output_text`` part, then one ``function_call`` per tool
call. ``finish="length"`` is an ``incomplete`` response (``max_output_tokens``). Streams send
every event OpenAI sends, with ``sequence_number`` from 0 and an ``event:`` line each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.fakes.base import RecordedRequest, Reply, Turn

CREATED = 1767225600


class ResponsesDrop(Exception):
    """Raised inside the SSE body so the server cuts the connection mid-stream."""


def encrypted_for(reasoning: str) -> str:
    """The fake's "encrypted" reasoning: recognisable in what the fake receives later."""
    return "gAAAAA-fake-" + orjson.dumps(reasoning).hex()[:24]


def usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def output_items(reply: Reply, body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    reasoning = getattr(reply, "reasoning_content", None)
    if reasoning:
        item: dict[str, Any] = {
            "id": f"rs_fake{n}",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": reasoning}],
        }
        if "reasoning.encrypted_content" in (body.get("include") or []):
            item["encrypted_content"] = encrypted_for(reasoning)
        items.append(item)
    if reply.text:
        items.append(
            {
                "id": f"msg_fake{n}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
                ],
            }
        )
    for i, call in enumerate(reply.tool_calls):
        items.append(
            {
                "id": f"fc_fake{n}_{i}",
                "type": "function_call",
                "status": "completed",
                "arguments": orjson.dumps(call.arguments).decode(),
                "call_id": call.id,
                "name": call.name,
            }
        )
    return items


def response_object(
    reply: Reply, body: dict[str, Any], n: int, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    done = status != "in_progress"
    return {
        "id": f"resp_fake{n}",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": reply.model or body.get("model", ""),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage(reply) if done else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def final_status(reply: Reply) -> str:
    return "incomplete" if reply.finish == "length" else "completed"


def stream_events(reply: Reply, body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Every event of a streamed response, in OpenAI's order (without sequence numbers)."""
    items = output_items(reply, body, n)
    events: list[dict[str, Any]] = [
        {
            "type": "response.created",
            "response": response_object(reply, body, n, "in_progress", []),
        },
        {
            "type": "response.in_progress",
            "response": response_object(reply, body, n, "in_progress", []),
        },
    ]
    for index, item in enumerate(items):
        at = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "reasoning":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {"id": item["id"], "type": "reasoning", "summary": []},
                }
            )
            text = item["summary"][0]["text"]
            part = {"type": "summary_text", "text": ""}
            events.append(
                {
                    "type": "response.reasoning_summary_part.added",
                    **at,
                    "summary_index": 0,
                    "part": part,
                }
            )
            for piece in _pieces(text, 3):
                events.append(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        **at,
                        "summary_index": 0,
                        "delta": piece,
                    }
                )
            events.append(
                {
                    "type": "response.reasoning_summary_text.done",
                    **at,
                    "summary_index": 0,
                    "text": text,
                }
            )
            events.append(
                {
                    "type": "response.reasoning_summary_part.done",
                    **at,
                    "summary_index": 0,
                    "part": {"type": "summary_text", "text": text},
                }
            )
        elif kind == "message":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                }
            )
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(
                {"type": "response.content_part.added", **at, "content_index": 0, "part": empty}
            )
            for piece in reply.text_pieces():
                events.append(
                    {
                        "type": "response.output_text.delta",
                        **at,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    }
                )
            text = item["content"][0]["text"]
            events.append(
                {
                    "type": "response.output_text.done",
                    **at,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
            events.append(
                {
                    "type": "response.content_part.done",
                    **at,
                    "content_index": 0,
                    "part": item["content"][0],
                }
            )
        else:
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "arguments": ""},
                }
            )
            for piece in _pieces(item["arguments"], 3):
                events.append(
                    {"type": "response.function_call_arguments.delta", **at, "delta": piece}
                )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **at,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    status = final_status(reply)
    events.append(
        {
            "type": f"response.{status}",
            "response": response_object(reply, body, n, status, items),
        }
    )
    return events


def _pieces(text: str, n: int) -> list[str]:
    if not text:
        return []
    step = -(-len(text) // min(n, len(text)))
    return [text[i : i + step] for i in range(0, len(text), step)]


async def sse(events: list[dict[str, Any]], reply: Reply) -> AsyncIterator[bytes]:
    for seq, event in enumerate(events):
        if reply.drop_after is not None and seq >= reply.drop_after:
            raise ResponsesDrop(f"dropped after {seq} events")
        if reply.pause_after is not None and seq == reply.pause_after:
            await asyncio.sleep(reply.pause_s)
        frame = {"type": event["type"], "sequence_number": seq, **event}
        yield b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(frame) + b"\n\n"
    if reply.drop_after is not None:
        raise ResponsesDrop("dropped before the end")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "")
        for p in content or []
        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
    )


def responses_turn(rec: RecordedRequest) -> Turn | None:
    """The scripted model's view of a Responses request: function tools (namespaced ones by
    their own name), the last user text, and the trailing tool outputs."""
    body = rec.json
    if not isinstance(body, dict):
        return None
    tools: list[str] = []
    for tool in body.get("tools") or []:
        if tool.get("type") == "function":
            tools.append(tool.get("name", ""))
        elif tool.get("type") == "namespace":
            tools.extend(t.get("name", "") for t in tool.get("tools") or [])
    raw = body.get("input")
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    results: list[str] = []
    while items and isinstance(items[-1], dict) and items[-1].get("type") == "function_call_output":
        output = items.pop().get("output")
        results.insert(0, output if isinstance(output, str) else _text(output))
    if results:
        return Turn(tools, "", results)
    users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
    return Turn(tools, _text(users[-1].get("content")) if users else "", [])
