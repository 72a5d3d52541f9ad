"""What the store keeps per response, and the pure functions over it (no I/O).

A ``StoredRecord`` is one ``store: true`` answer of ``POST /v1/responses``: the response object
and this turn's input items, both Responses-wire JSON and already DLP-redacted, plus who owns
it and the ids of the earlier responses of its conversation (``ancestors``, oldest first), so a
chain of any length is fetched in one round trip per cache layer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from backend.state.snapshot import Principal

#: What OpenAI's item ids start with, by item type (ids the store makes for items without one).
_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}
#: The ``include`` value that keeps reasoning items' ``encrypted_content`` in what is read back.
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def scope_of(principal: Principal) -> str:
    """Whose responses these are: the key's organization, else its user or app alone."""
    if principal.org_id is not None:
        return f"org:{principal.org_id}"
    if principal.user is not None:
        return f"user:{principal.user.id}"
    if principal.app is not None:
        return f"app:{principal.app.id}"
    return f"key:{principal.key.id}"


@dataclass(slots=True)
class StoredRecord:
    id: str
    scope: str
    #: Unix seconds.
    created_at: float
    expires_at: float
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_response_id: str | None = None
    ancestors: list[str] = field(default_factory=list)
    org_id: int | None = None
    user_id: int | None = None
    app_id: int | None = None
    request_id: str | None = None

    @property
    def model(self) -> str | None:
        model = self.response.get("model")
        return model if isinstance(model, str) else None

    @property
    def status(self) -> str:
        status = self.response.get("status")
        return status if isinstance(status, str) else "completed"

    def output(self) -> list[dict[str, Any]]:
        out = self.response.get("output")
        return [i for i in out if isinstance(i, dict)] if isinstance(out, list) else []

    def alive(self, now: float) -> bool:
        return self.expires_at > now

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "scope": self.scope,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "response": self.response,
                "input_items": self.input_items,
                "previous_response_id": self.previous_response_id,
                "ancestors": self.ancestors,
                "org_id": self.org_id,
                "user_id": self.user_id,
                "app_id": self.app_id,
                "request_id": self.request_id,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> StoredRecord:
        d = orjson.loads(raw)
        return cls(**d)


def conversation_items(chain: list[StoredRecord]) -> list[dict[str, Any]]:
    """The conversation a new turn continues: each response's input items, then its output."""
    items: list[dict[str, Any]] = []
    for rec in chain:
        items.extend(rec.input_items)
        items.extend(rec.output())
    return items


def listed_items(chain: list[StoredRecord]) -> list[dict[str, Any]]:
    """Every item used to generate the last response of ``chain``, each with an ``id``.

    Items the client sent without one get a stable id made from their response's id and
    position, so pages and cursors agree across calls and instances.
    """
    out: list[dict[str, Any]] = []
    last = len(chain) - 1
    for n, rec in enumerate(chain):
        for i, item in enumerate(rec.input_items):
            out.append(_with_id(item, rec.id, f"in{i}"))
        if n != last:
            for i, item in enumerate(rec.output()):
                out.append(_with_id(item, rec.id, f"out{i}"))
    return out


def _with_id(item: dict[str, Any], response_id: str, where: str) -> dict[str, Any]:
    if isinstance(item.get("id"), str) and item["id"]:
        return item
    prefix = _ID_PREFIX.get(str(item.get("type")), "item")
    digest = hashlib.blake2b(f"{response_id}:{where}".encode(), digest_size=20).hexdigest()
    return {"id": f"{prefix}_{digest}", **item}


def without_encrypted_reasoning(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` as read back without ``include=reasoning.encrypted_content`` (OpenAI's rule)."""
    if item.get("type") == "reasoning" and "encrypted_content" in item:
        return {k: v for k, v in item.items() if k != "encrypted_content"}
    return item


def response_view(rec: StoredRecord, include: set[str]) -> dict[str, Any]:
    """The stored response object as ``GET /v1/responses/{id}`` answers it."""
    if ENCRYPTED_REASONING in include:
        return rec.response
    output = [without_encrypted_reasoning(i) for i in rec.output()]
    return {**rec.response, "output": output}


def to_datetime(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
