"""OpenAI ``response_format`` -> Anthropic structured output, with a guarantee.

- ``json_schema`` on a model with constrained decoding (``model_rules``: ``structured_output``
  ``"native"``) becomes ``output_config.format: {type: json_schema, schema}``; the answer is
  ordinary text that conforms to the schema.
- ``json_schema`` on an older Claude model, and ``json_object`` everywhere (Anthropic has no
  "any JSON object" format), becomes a **forced tool**: one tool named after the schema with the
  schema as its ``input_schema`` and ``tool_choice`` naming it (``any`` when the client offers
  tools of its own, so the model may still call those). A tool's input always conforms to its
  schema, so the call's input *is* the answer: the decoders turn that ``tool_use`` block back into
  text (JSON) and ``tool_use`` into ``stop``, streamed and not.
- What cannot be forced is refused by ``refusal`` (a 400 naming ``response_format``) instead of
  degrading to a prompt: Anthropic allows no forced tool with extended thinking, and
  ``tool_choice: none`` forbids the tool the answer would come from.
- An Anthropic client's own ``output_config.format`` is forwarded as is and wins.

Pure functions; ``encode_request`` calls ``apply``, the provider adapter passes
``model_rules.structured_tool(req, "anthropic", model)`` to the response decoders and
``model_rules.refusal`` refuses what cannot be forced (so fallback skips such candidates).
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import ChatRequest
from backend.protocols.model_rules import (
    structured_refusal,
    structured_tool,
    thinking_on,
    wanted_schema,
)


def apply(body: dict[str, Any], req: ChatRequest, model: str) -> None:
    """Add the structured-output fields for ``req`` to an Anthropic request ``body``."""
    asked = wanted_schema(req)
    if asked is None:
        return
    schema = asked[1]
    tool = structured_tool(req, "anthropic", model)
    if tool is None:
        config = dict(body.get("output_config") or {})
        config["format"] = {"type": "json_schema", "schema": schema}
        body["output_config"] = config
        return
    # Asked again with the body's thinking: it may come from a translated reasoning effort.
    problem = structured_refusal(
        req, "anthropic", f"anthropic model {model!r}", model, thinking_on(body.get("thinking"))
    )
    if problem is not None:
        raise problem
    spec = (req.response_format or {}).get("json_schema") or {}
    description = spec.get("description") if isinstance(spec, dict) else None
    body["tools"] = [
        *body.get("tools", []),
        {
            "name": tool,
            "description": description or "Give the answer as this tool's input.",
            "input_schema": schema,
        },
    ]
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return  # the client named its own tool: this turn's answer is that call
    forced: dict[str, Any] = {"type": "any"} if req.tools else {"type": "tool", "name": tool}
    if choice.get("disable_parallel_tool_use") or not req.tools:
        forced["disable_parallel_tool_use"] = True
    body["tool_choice"] = forced
