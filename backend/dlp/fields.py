"""Which strings of a request's free-form JSON are text a person wrote, and which are byte-exact.

Everything that leaves for the provider is redacted, not a list of known fields: tool schemas,
``response_format``, the Anthropic ``thinking`` config and the protocol extras the IR carries
without modelling them (OpenAI ``safety_identifier``, ``prompt_cache_key``, ``prediction``,
``web_search_options``...; Anthropic ``output_config``, ``mcp_servers``, ``context_management``...)
are walked recursively and every string in them is scanned, so a field added to the wire
tomorrow is covered the day it is forwarded.

What must stay byte-exact is decided by the *key* a value sits under, anywhere in the tree:

- identifiers and references: ``id``, ``*_id``/``*_ids``, ``name``, ``*_name``, ``model``,
  ``type``, ``version``, ``container``, ``url``/``uri``/``*_url``, ``signature``,
  ``cache_control``, ``service_tier`` (a corrupted
  id or name breaks the request, and the provider would never echo it back to be restored);
- credentials the app means to send: ``authorization_token`` and ``*_token``, ``*_key`` other
  than ``prompt_cache_key`` (an MCP server's token must reach that server intact);
- binary and token data: ``data`` and ``file_data`` (base64; but a plain-text document source's
  ``data`` is text), ``media_type``/``mime_type``, ``logit_bias`` (token ids), provider-encrypted
  ``encrypted_content``/``encrypted_index``;
- JSON-schema structure: ``required`` (property names), ``pattern``, a string ``format``
  (``"email"``; an object ``format``, as in Anthropic's ``output_config``, is walked), ``$ref`` and
  other ``$`` keywords, and the *names* under ``properties``/``$defs``/``definitions`` (their
  schemas are walked: ``description``, ``title``, ``enum``, ``const``, ``default``,
  ``examples`` are text and are redacted);
- tool names in lists (``allowed_tools``, ``exclude_tools``...: keys ending in ``_tools``);
- keys starting with ``_``: the codecs' own flags, never sent as such.

Dict keys are never redacted here (they are field names); numbers and booleans are left alone
(a ``seed`` is not a phone number). ``metadata`` is not walked here: it is the caller's own data,
keys and large integers included (see ``backend.dlp.redact``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_EXACT_KEYS = frozenset(
    {
        "id",
        "name",
        "model",
        "type",
        "version",
        "url",
        "uri",
        "signature",
        "cache_control",
        "authorization_token",
        "data",
        # A Responses input_file's base64 (a data URL), as the stored-responses copy walks it.
        "file_data",
        "media_type",
        "mime_type",
        "logit_bias",
        "required",
        "pattern",
        "service_tier",
        "container",
        # Provider-encrypted payloads echoed back (web search results, citations, reasoning).
        "encrypted_content",
        "encrypted_index",
    }
)
_EXACT_SUFFIXES = ("_id", "_ids", "_name", "_url", "_token", "_tools")
#: Text even though the suffix says key: a cache-routing key the app builds from user data.
_TEXT_KEYS = frozenset({"prompt_cache_key"})
#: JSON-schema maps of name -> schema: names stay, schemas are walked.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)


def is_exact(key: str, value: Any = None) -> bool:
    """Whether ``value``, found under ``key``, must reach the provider byte for byte."""
    if key == "format":
        return isinstance(value, str)
    if key in _TEXT_KEYS or key in _SCHEMA_MAPS:
        return False
    return (
        key in _EXACT_KEYS
        or key.startswith(("_", "$"))
        or key.endswith(_EXACT_SUFFIXES)
        or key.endswith("_key")
    )


def map_text(value: Any, fn: Callable[[str], str], key: str | None = None) -> Any:
    """``value`` with ``fn`` applied to each text string in it; the same object if none changed.

    ``key`` is the key ``value`` sits under (None at the top or in a list of a text field).
    """
    if key is not None and is_exact(key, value):
        return value
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        items = [map_text(v, fn, key) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        names = key in _SCHEMA_MAPS
        # A plain-text source (Anthropic ``{"type": "text", "media_type": "text/plain",
        # "data": ...}`` in a document block) holds text under ``data``, not base64.
        text_source = value.get("type") == "text" and value.get("media_type") == "text/plain"
        out: dict[Any, Any] = {}
        changed = False
        for k, v in value.items():
            # Under a schema map the key is a property name: its schema is walked as a schema.
            if names or not isinstance(k, str) or (text_source and k == "data"):
                new = map_text(v, fn, None)
            else:
                new = map_text(v, fn, k)
            out[k] = new
            changed = changed or new is not v
        return out if changed else value
    return value


def texts(value: Any, key: str | None = None) -> list[str]:
    """The strings ``map_text`` would hand to its function, in order."""
    found: list[str] = []

    def collect(s: str) -> str:
        found.append(s)
        return s

    map_text(value, collect, key)
    return found


def text_size(value: Any, key: str | None = None) -> int:
    """Characters ``map_text`` would scan in ``value``."""
    return sum(len(s) for s in texts(value, key))
