"""Stored Responses-API answers (``store: true``), for ``previous_response_id`` and the
``GET/DELETE /v1/responses/{id}`` endpoints (``backend.responses_store``).

Rows are written in batches off the request path and are DLP-redacted before they are queued:
``response`` and ``input_items`` hold placeholders, never the values DLP replaced. Each row
belongs to one ``scope`` (``org:<id>``, or ``user:<id>`` / ``app:<id>`` for a caller without an
organization); every read filters on it. ``expires_at`` is when the sweeper deletes the row.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class StoredResponse(Model):
    # The response id the client saw (``resp_...``), never an upstream's own id.
    id = fields.CharField(max_length=100, primary_key=True)
    scope = fields.CharField(max_length=40)
    org_id = fields.IntField(null=True, db_index=True)
    user_id = fields.IntField(null=True)
    app_id = fields.IntField(null=True)
    request_id = fields.CharField(max_length=64, null=True)
    model = fields.CharField(max_length=200, null=True)
    status = fields.CharField(max_length=20)
    previous_response_id = fields.CharField(max_length=100, null=True)
    # Ids of the earlier responses of the conversation, oldest first (the replay order).
    ancestors: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    # JSON text: the response object and this turn's input items, both DLP-redacted.
    response = fields.TextField()
    input_items = fields.TextField()

    class Meta:
        table = "stored_responses"
