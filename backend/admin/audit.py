"""The audit trail: who changed what and when. Details hold field names, never values."""

from __future__ import annotations

from typing import Any

from backend.admin.access import Actor, actor_id
from backend.data.models.logs import AuditLog


async def record(actor: Actor, action: str, target: str, **detail: Any) -> None:
    await AuditLog.create(actor_id=actor_id(actor), action=action, target=target, detail=detail)
