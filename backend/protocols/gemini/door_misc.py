"""The Gemini door's other methods: ``embedContent``, ``batchEmbedContents``, ``countTokens``
answers and the ``models`` listing.

Embeddings: each request's ``content`` must be text parts (joined with a newline when there are
several); ``outputDimensionality`` is the IR's ``dimensions``. ``taskType`` and ``title`` change
the vectors Gemini computes, and other providers have no such field: they travel to a Gemini
upstream (``EmbeddingRequest.extra``) and are a 400 elsewhere (``model_rules``), never dropped.
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import InvalidRequest
from backend.protocols.gemini.wire import PROTOCOL, fields, invalid, is_int, missing

#: ``EmbeddingRequest.extra`` key: per input, its Gemini-only fields (``taskType``, ``title``).
REQUESTS_KEY = "gemini_requests"
_EMBED_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})


def decode_embed_request(body: Any, model: str, *, batch: bool) -> EmbeddingRequest:
    top = fields(body, "")
    if batch:
        requests = top.pop("requests", None)
        if top:
            raise invalid(sorted(top)[0], "batchEmbedContents takes requests only")
        if not isinstance(requests, list) or not requests:
            raise missing("requests", "requests")
        entries = [(fields(r, f"requests[{i}]"), f"requests[{i}]") for i, r in enumerate(requests)]
    else:
        entries = [(top, "")]
    texts: list[str] = []
    dims: set[int] = set()
    extras: list[dict[str, Any]] = []
    for entry, path in entries:
        prefix = f"{path}." if path else ""
        other = entry.get("model")
        if other is not None and str(other).removeprefix("models/") != model:
            raise invalid(
                f"{prefix}model",
                f"every request of a batch must name the model of the URL ({model!r})",
            )
        texts.append(_text(entry.get("content"), f"{prefix}content"))
        dim = entry.get("outputDimensionality")
        if dim is not None:
            if not is_int(dim) or dim < 1:
                raise invalid(f"{prefix}outputDimensionality", "expected a positive integer")
            dims.add(dim)
        unknown = sorted(k for k in entry if k not in _EMBED_FIELDS)
        if unknown:
            raise InvalidRequest(
                f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
                f"'{path or 'request'}': Cannot find field.",
                param=f"{prefix}{unknown[0]}",
            )
        extras.append({k: entry[k] for k in ("taskType", "title") if entry.get(k) is not None})
    if len(dims) > 1:
        raise invalid("requests", "every request of a batch must ask the same outputDimensionality")
    req = EmbeddingRequest(
        model=model, input=texts, dimensions=next(iter(dims), None), protocol=PROTOCOL
    )
    if any(extras):
        req.extra = {REQUESTS_KEY: extras}
    return req


def _text(value: Any, path: str) -> str:
    if value is None:
        raise missing(path, "content")
    c = fields(value, path)
    parts = c.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"{path}.parts", "content.parts must not be empty")
    texts = []
    for i, raw in enumerate(parts):
        p = fields(raw, f"{path}.parts[{i}]")
        if not isinstance(p.get("text"), str) or set(p) != {"text"}:
            raise invalid(f"{path}.parts[{i}]", "embeddings take text parts only")
        texts.append(p["text"])
    return "\n".join(texts)


def encode_embed_response(resp: EmbeddingResponse, *, batch: bool) -> dict[str, Any]:
    if batch:
        return {"embeddings": [{"values": v} for v in resp.vectors]}
    return {"embedding": {"values": resp.vectors[0] if resp.vectors else []}}


def encode_count_tokens_response(total: int) -> dict[str, Any]:
    return {"totalTokens": total}


def model_resource(name: str, *, embedding: bool) -> dict[str, Any]:
    """One ``Model`` of ``GET models``: what a Gemini client needs to pick and call it."""
    methods = (
        ["embedContent", "batchEmbedContents"]
        if embedding
        else [
            "generateContent",
            "streamGenerateContent",
            "countTokens",
        ]
    )
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "switchboard",
        "displayName": name,
        "description": f"{name} through Switchboard",
        "supportedGenerationMethods": methods,
    }


def embedding_refusal(
    req: EmbeddingRequest, kind: str, provider: str, model: str
) -> InvalidRequest | None:
    """The 400 an embeddings request with Gemini-only fields earns on another provider."""
    if req.protocol != PROTOCOL or kind == PROTOCOL:
        return None
    for entry in req.extra.get(REQUESTS_KEY) or []:
        for name in sorted(entry):
            return InvalidRequest(
                f"Unsupported parameter: '{name}' cannot be honoured by {provider} model "
                f"{model!r}: it is part of the Gemini API and has no translation there.",
                param=name,
                code="unsupported_parameter",
            )
    return None
