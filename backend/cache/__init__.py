"""Gateway caches on aiocache: the opt-in exact-match response cache and its storage backends."""

from backend.cache.response_cache import (
    FEATURE,
    CachedAnswer,
    ResponseCache,
    cache_key,
    cache_scope,
    new_answer,
    replay_as_stream,
)

__all__ = [
    "FEATURE",
    "CachedAnswer",
    "ResponseCache",
    "cache_key",
    "cache_scope",
    "new_answer",
    "replay_as_stream",
]
