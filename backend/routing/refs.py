"""Model references: ``provider/model`` strings and how a bare model name finds its provider.

Every candidate the router hands to the pipeline is canonical, ``"<provider>/<model>"``, so
breakers, latency stats and prices all key on the same string. ``model`` is the id sent to the
provider (an Azure deployment name for ``azure/...``).

Addressing, in the order tried by ``parse_model_ref``:

1. ``<provider>/<model>`` where ``<provider>`` is a built-in provider (openai, anthropic, gemini,
   ollama, azure) or a custom provider configured on the gateway (``groq/llama-3.1-8b``).
2. A bare name exactly matching a model discovered on Ollama (``llama3.2``, ``gpt-oss:20b``);
   checked before the prefixes so an Ollama ``gpt-oss:20b`` is not sent to OpenAI.
3. A bare name with a well-known prefix: ``gpt-``, ``chatgpt-``, ``ft:``, ``o1``/``o3``/``o4``,
   ``text-embedding-`` -> openai; ``claude-`` -> anthropic; ``gemini-`` -> gemini.

Ollama names are normalised without a ``:latest`` tag (Ollama treats ``x`` as ``x:latest``), so
``ollama/llama3.2`` and ``ollama/llama3.2:latest`` are the same candidate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass

from backend.ir.errors import NotFound

BUILTIN_PROVIDERS: frozenset[str] = frozenset({"openai", "anthropic", "gemini", "ollama", "azure"})

_PREFIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(gpt-|chatgpt-|ft:|text-embedding-|o[134](?:$|-))"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gemini"),
)

HOW_TO_ADDRESS = (
    "address a model as '<provider>/<model>' (openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, "
    "gemini/gemini-2.5-flash, ollama/llama3.2, azure/<deployment>, or a configured custom "
    "provider such as groq/llama-3.1-8b), by a bare name with a known prefix (gpt-*, o1*/o3*/o4*, "
    "text-embedding-*, claude-*, gemini-*) or of a model discovered on Ollama, by an alias, or "
    "as agent/<agent_id>[:normal|heavy|max]"
)


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    model: str

    @property
    def key(self) -> str:
        """The canonical ``provider/model`` string (candidates, stats and breakers use it)."""
        return f"{self.provider}/{self.model}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> ModelRef:
        """Split a canonical key; no lookup (the caller already resolved it)."""
        provider, sep, model = key.partition("/")
        if not sep or not provider or not model:
            raise ValueError(f"not a canonical provider/model key: {key!r}")
        return cls(provider, normalize_model(provider, model))


@functools.lru_cache(maxsize=4096)
def ref_of_key(key: str) -> ModelRef:
    """``ModelRef.from_key``, remembered: the breaker and stats calls split the same few
    candidate keys on every request (a ``ModelRef`` is frozen, so one can be shared)."""
    return ModelRef.from_key(key)


def normalize_model(provider: str, model: str) -> str:
    if provider == "ollama" and model.endswith(":latest"):
        return model[: -len(":latest")]
    return model


def normalize_ollama_names(names: Collection[str]) -> list[str]:
    """Discovered tags as candidate names: ``x:latest`` -> ``x``, order kept, no duplicates."""
    return list(dict.fromkeys(normalize_model("ollama", n) for n in names if n))


def infer_provider(name: str) -> str | None:
    """The provider a bare model name belongs to by its prefix, or ``None``."""
    for pattern, provider in _PREFIXES:
        if pattern.match(name):
            return provider
    return None


def parse_model_ref(
    text: str,
    *,
    providers: Collection[str] = BUILTIN_PROVIDERS,
    ollama_models: Collection[str] = (),
) -> ModelRef:
    """Resolve a model name to a provider and the provider's model id.

    ``providers`` are the provider names accepted as a ``<provider>/`` prefix (built-ins are
    always accepted); ``ollama_models`` the normalised discovered Ollama names. Raises
    ``NotFound`` with addressing help for anything else.
    """
    name = text.strip()
    if not name:
        raise NotFound(f"no model given; {HOW_TO_ADDRESS}", code="model_not_found", param="model")
    prefix, sep, rest = name.partition("/")
    if sep and (prefix in BUILTIN_PROVIDERS or prefix in providers):
        if not rest:
            raise NotFound(
                f"model {text!r} names no model after '{prefix}/'; {HOW_TO_ADDRESS}",
                code="model_not_found",
                param="model",
            )
        return ModelRef(prefix, normalize_model(prefix, rest))
    bare = normalize_model("ollama", name)
    if bare in ollama_models:
        return ModelRef("ollama", bare)
    provider = infer_provider(name)
    if provider is not None:
        return ModelRef(provider, name)
    if sep:
        known = ", ".join(sorted(set(BUILTIN_PROVIDERS) | set(providers)))
        raise NotFound(
            f"unknown provider {prefix!r} in model {text!r} (providers: {known}); {HOW_TO_ADDRESS}",
            code="model_not_found",
            param="model",
        )
    raise NotFound(
        f"unknown model {text!r}; {HOW_TO_ADDRESS}", code="model_not_found", param="model"
    )
