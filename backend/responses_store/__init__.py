"""Stored responses of the Responses API: ``store``, ``previous_response_id``, GET/DELETE.

``ResponseStore`` (``store.py``) is the gateway's service; ``records.py`` what is kept and the
pure functions over it; ``redact.py`` the DLP of the stored copy; ``layers.py`` the process and
Redis caches; ``database.py`` the batched writer, reads and the expiry sweep; ``pages.py`` the
input-items pagination.
"""

from backend.responses_store.records import StoredRecord, scope_of
from backend.responses_store.store import ResponseStore, not_found

__all__ = ["ResponseStore", "StoredRecord", "not_found", "scope_of"]
