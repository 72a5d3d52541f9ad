"""Helpers for driving the Gemini door with the official ``google-genai`` SDK."""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import types

from tests.e2e.conftest import Stack

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def gemini_client(stack: Stack, *, key: str | None = None, api_version: str = "v1beta") -> Any:
    """A google-genai client pointed at the gateway (no retries: every call is one request)."""
    return genai.Client(
        api_key=key or stack.seeded.user_key,
        http_options=types.HttpOptions(
            base_url=stack.gateway.url, api_version=api_version, timeout=30_000
        ),
    )


def request_id(resp: Any) -> str:
    """The gateway's ``x-request-id`` of an SDK answer (or of one streamed chunk)."""
    headers = resp.sdk_http_response.headers or {}
    return str({k.lower(): v for k, v in headers.items()}["x-request-id"])


def collect(chunks: Any) -> tuple[str, list[Any], list[str], Any, str]:
    """A streamed answer as (text, function calls, thought texts, last usage, request id)."""
    text, calls, thoughts, usage, rid = "", [], [], None, ""
    for chunk in chunks:
        rid = rid or request_id(chunk)
        if chunk.usage_metadata is not None:
            usage = chunk.usage_metadata
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.thought:
                    thoughts.append(part.text or "")
                elif part.function_call is not None:
                    calls.append(part.function_call)
                elif part.text:
                    text += part.text
    return text, calls, thoughts, usage, rid


def answer(resp: Any) -> tuple[str, list[Any], list[str], Any, str]:
    """A non-streamed answer in the same shape as ``collect``."""
    parts = resp.candidates[0].content.parts or []
    text = "".join(p.text or "" for p in parts if not p.thought and p.text)
    calls = [p.function_call for p in parts if p.function_call is not None]
    thoughts = [p.text or "" for p in parts if p.thought]
    return text, calls, thoughts, resp.usage_metadata, request_id(resp)
