"""What happened: request logs, usage rollups, spend counters, error reports, audit trail.

Log rows and rollups are written in batches by the log writer (``backend.data.log_writer``), never
on the request path. Rollups let dashboards and usage tables answer without scanning logs.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class RequestLog(Model):
    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64, db_index=True)
    created_at = fields.DatetimeField(db_index=True)
    key_prefix = fields.CharField(max_length=32, null=True)
    user_id = fields.IntField(null=True, db_index=True)
    app_id = fields.IntField(null=True)
    org_id = fields.IntField(null=True)
    endpoint = fields.CharField(max_length=64)
    requested_model = fields.CharField(max_length=200, null=True)
    actual_model = fields.CharField(max_length=200, null=True)
    provider = fields.CharField(max_length=64, null=True)
    # The provider deployment (account or endpoint) that answered, or that failed on an error
    # or attempt row; null: the provider's own connection.
    deployment = fields.CharField(max_length=64, null=True)
    status = fields.IntField()
    error_type = fields.CharField(max_length=64, null=True)
    error_message = fields.TextField(null=True)
    # The error's machine code (insufficient_quota, rate_limit_exceeded, upstream_429...).
    error_code = fields.CharField(max_length=64, null=True)
    # The provider's HTTP status when the provider failed; null: it did not (or no call).
    upstream_status = fields.IntField(null=True)
    # Why the gateway itself refused (which cap, limit, allowlist...; ``policies.refusal``);
    # null: it did not refuse.
    refusal: fields.JSONField[Any] = fields.JSONField(null=True)
    input_tokens = fields.IntField(default=0)
    output_tokens = fields.IntField(default=0)
    cached_tokens = fields.IntField(default=0)
    # Part of output_tokens the model spent reasoning (as the provider reports it).
    # db_default: the column is added to tables that already hold rows.
    reasoning_tokens = fields.IntField(default=0, db_default=0)
    # Null when the model has no known price ("unknown"), never a made-up 0.
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    # The rates the cost was computed with (USD per million tokens and where they came from),
    # so the cost can be explained after prices change; null: no price was used.
    price: fields.JSONField[Any] = fields.JSONField(null=True)
    latency_ms = fields.FloatField(default=0)
    ttft_ms = fields.FloatField(null=True)
    streamed = fields.BooleanField(default=False)
    attempts = fields.IntField(default=1)
    # This row is a failed attempt that a fallback replaced (never billed).
    superseded = fields.BooleanField(default=False)
    cache_hit = fields.BooleanField(default=False)
    agent_id = fields.CharField(max_length=100, null=True)
    tier = fields.CharField(max_length=20, null=True)
    # Cost-attribution tags of the request (metadata.tags / x-switchboard-tags); null: none.
    tags: fields.JSONField[Any] = fields.JSONField(null=True)
    # The conversation as sent upstream (after DLP redaction) and the answer, as JSON text.
    request_body = fields.TextField(null=True)
    response_body = fields.TextField(null=True)

    class Meta:
        table = "request_logs"
        # The log explorer's filters and counts: an org_admin's every read is by org_id.
        indexes = (
            ("user_id", "created_at"),
            ("org_id", "created_at"),
            ("app_id", "created_at"),
            ("key_prefix", "created_at"),
        )


class UsageRollup(Model):
    # Hourly totals per (user, app, org, model, provider).

    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    # 0 means "none": NULLs never collide in a unique index, and upserts need them to.
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    org_id = fields.IntField(default=0)
    model = fields.CharField(max_length=200)
    provider = fields.CharField(max_length=64)
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    cached_tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    # Requests that used tokens of a model without a known price: their cost is "unknown",
    # not part of cost_usd.
    unknown_cost_requests = fields.IntField(default=0, db_default=0)
    latency_ms_sum = fields.FloatField(default=0)
    # {"<upper bound ms>": count} as in MinuteStat: p50/p95 per model and provider over any
    # window without reading request_logs. Null in rows written before it existed (SQLite
    # cannot add a NOT NULL column without a constant default to a table with rows).
    latency_hist: fields.JSONField[dict[str, int] | None] = fields.JSONField(null=True)

    class Meta:
        table = "usage_rollups"
        unique_together = (("bucket", "user_id", "app_id", "org_id", "model", "provider"),)


class MinuteStat(Model):
    # Per-minute gateway totals with a latency histogram for p50/p95 (home dashboard).

    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(unique=True)
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0, db_default=0)
    # {"<upper bound ms>": count} over fixed log-spaced buckets.
    latency_hist: fields.JSONField[dict[str, int]] = fields.JSONField(default=dict)

    class Meta:
        table = "minute_stats"


class OrgMinuteStat(Model):
    # The same per minute and organization the requests were made under (an org_admin's live
    # view); requests under no organization are only in MinuteStat.

    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField()
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0)
    latency_hist: fields.JSONField[dict[str, int]] = fields.JSONField(default=dict)

    class Meta:
        table = "org_minute_stats"
        unique_together = (("bucket", "org_id"),)


class TagRollup(Model):
    # Hourly totals per cost-attribution tag (a request with n tags counts in n rows).

    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    # 0 means "none", as in UsageRollup.
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    tag = fields.CharField(max_length=64)
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0)

    class Meta:
        table = "tag_rollups"
        unique_together = (("bucket", "org_id", "user_id", "app_id", "tag"),)


class KeyRollup(Model):
    # Hourly totals per API key (by its prefix), for spend and requests by key.

    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    # 0 / "" mean "none", as in UsageRollup.
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    key_prefix = fields.CharField(max_length=32)
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    cached_tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0)
    latency_ms_sum = fields.FloatField(default=0)

    class Meta:
        table = "key_rollups"
        unique_together = (("bucket", "org_id", "user_id", "app_id", "key_prefix"),)


class SpendCounter(Model):
    # Persisted spend per cap scope and period, so a restart forgets nothing.

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=10)  # user | org
    scope_id = fields.IntField()
    period_start = fields.DatetimeField()
    spent_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)

    class Meta:
        table = "spend_counters"
        unique_together = (("scope", "scope_id", "period_start"),)


class ErrorReport(Model):
    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(db_index=True)
    source = fields.CharField(max_length=20)  # gateway | client
    type = fields.CharField(max_length=100)
    model = fields.CharField(max_length=200, null=True)
    error = fields.TextField()
    user_id = fields.IntField(null=True)
    # The organization the report was made under (the reporter's principal at the time), not
    # the user's current one: reports stay with the organization whose traffic they describe.
    org_id = fields.IntField(null=True, db_index=True)
    agent = fields.CharField(max_length=100, null=True)
    version = fields.CharField(max_length=50, null=True)
    request_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "error_reports"


class AuditLog(Model):
    # Who changed what, when — never the value of a secret.

    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    actor_id = fields.IntField(null=True)
    action = fields.CharField(max_length=100)
    target = fields.CharField(max_length=200)
    detail: fields.JSONField[Any] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_logs"
