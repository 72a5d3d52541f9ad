"""Daily rollups (the hourly ones summed per UTC day) and narrow rollups (fewer dimensions).

Hourly rollups (``models.logs``) grow with hours x active (user, app, organization, model,
provider): four million rows for a 10-million-request, 90-day log, so a 30- or 90-day dashboard
summed hundreds of thousands of them per answer. Windows longer than two days are read from
these tables instead (``backend.data.windows``), each the smallest that holds what a query
groups and filters by:

- ``model_daily``: organization x model x provider (cost trends, provider load, analytics by
  model, provider or organization, with latency histograms for p50/p95);
- ``user_daily``: organization x user x app (top spenders, usage per user, by user or app);
- ``key_daily``: organization x user x app x key prefix (spend by key, a key's period);
- ``tag_daily``: organization x user x app x tag (spend by tag);
- ``usage_daily``: every dimension of ``usage_rollups`` (the rest: a model breakdown of one
  user's requests, a user breakdown of one model...);
- ``tag_org_daily``: organization x tag (spend by tag without a user or app filter).

Per ISO week (Monday 00:00 UTC), for windows of weeks: ``user_weekly`` and ``key_weekly``
(the tables whose days are big: ~2,000 users and ~3,000 keys a day). And one narrow hourly
table: ``model_hourly`` (organization x model x provider, with latency
histograms), for short windows and the edge hours of long ones: an hour has ~200 such rows where
``usage_rollups`` has ~2,000 (every user's).

The log writer adds to them in the flush that adds to the hourly rows (``backend.data.daily``),
so both always agree. ``bucket`` is the day's midnight, UTC (the hour in ``model_hourly``); 0
means "none" as in the hourly tables.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class _Totals(Model):
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    cached_tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0)
    latency_ms_sum = fields.FloatField(default=0)

    class Meta:
        abstract = True


class UsageDaily(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    org_id = fields.IntField(default=0)
    model = fields.CharField(max_length=200)
    provider = fields.CharField(max_length=64)
    latency_hist: fields.JSONField[dict[str, int]] = fields.JSONField(null=True)

    class Meta:
        table = "usage_daily"
        unique_together = (("bucket", "user_id", "app_id", "org_id", "model", "provider"),)
        # A member's and an org_admin's reads are by user and by organization.
        indexes = (("user_id", "bucket"), ("org_id", "bucket"))


class ModelDaily(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    model = fields.CharField(max_length=200)
    provider = fields.CharField(max_length=64)
    latency_hist: fields.JSONField[dict[str, int]] = fields.JSONField(null=True)

    class Meta:
        table = "model_daily"
        unique_together = (("bucket", "org_id", "model", "provider"),)


class UserDaily(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)

    class Meta:
        table = "user_daily"
        unique_together = (("bucket", "org_id", "user_id", "app_id"),)
        indexes = (("user_id", "bucket"),)


class KeyDaily(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    key_prefix = fields.CharField(max_length=32)

    class Meta:
        table = "key_daily"
        unique_together = (("bucket", "org_id", "user_id", "app_id", "key_prefix"),)
        # A key's spend this period: its rows since the period's start.
        indexes = (("key_prefix", "bucket"),)


class TagDaily(Model):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
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
        table = "tag_daily"
        unique_together = (("bucket", "org_id", "user_id", "app_id", "tag"),)


class ModelHourly(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    model = fields.CharField(max_length=200)
    provider = fields.CharField(max_length=64)
    latency_hist: fields.JSONField[dict[str, int]] = fields.JSONField(null=True)

    class Meta:
        table = "model_hourly"
        unique_together = (("bucket", "org_id", "model", "provider"),)


class TagOrgDaily(Model):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    tag = fields.CharField(max_length=64)
    requests = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    cost_usd = fields.DecimalField(max_digits=18, decimal_places=8, default=0)
    unknown_cost_requests = fields.IntField(default=0)

    class Meta:
        table = "tag_org_daily"
        unique_together = (("bucket", "org_id", "tag"),)


class UserWeekly(_Totals):
    # ISO weeks (``bucket``: Monday 00:00 UTC): a 90-day window reads 12 of these per user
    # instead of 90 daily rows.
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)

    class Meta:
        table = "user_weekly"
        unique_together = (("bucket", "org_id", "user_id", "app_id"),)


class KeyWeekly(_Totals):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.DatetimeField(db_index=True)
    org_id = fields.IntField(default=0)
    user_id = fields.IntField(default=0)
    app_id = fields.IntField(default=0)
    key_prefix = fields.CharField(max_length=32)

    class Meta:
        table = "key_weekly"
        unique_together = (("bucket", "org_id", "user_id", "app_id", "key_prefix"),)
