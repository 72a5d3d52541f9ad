"""Alerts: where they go (channels), when they fire (rules), and every delivery (the record).

A fired alert is one ``AlertDelivery`` row per channel. ``(dedupe_key, channel_id)`` is unique:
the key names the rule, the subject, the period and the threshold, so whichever gateway instance
inserts first fires it and every other insert fails: once per threshold per period, on any
number of instances, and across restarts.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AlertChannel(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=16)  # webhook | slack | email
    #: webhook/slack: the URL posted to.
    url = fields.CharField(max_length=500, null=True)
    #: email: host, port, security (none|starttls|tls), username, sender, recipients.
    config: fields.JSONField[dict[str, object]] = fields.JSONField(default=dict)
    # The HMAC signing secret (webhook, slack) or the SMTP password (email), AES-256-GCM
    # encrypted with associated data "alert-channel:<name>".
    secret_ciphertext = fields.TextField(null=True)
    secret_last4 = fields.CharField(max_length=8, null=True)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)
    updated_by = fields.IntField(null=True)

    class Meta:
        table = "alert_channels"


class AlertRule(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=16)  # cap | circuit | error_rate
    #: Channel names the alert goes to.
    channels: fields.JSONField[list[str]] = fields.JSONField(default=list)
    #: cap: percents of the cap (e.g. [50, 80, 100]).
    thresholds: fields.JSONField[list[int]] = fields.JSONField(default=list)
    #: cap: only caps of this kind (user | org | app | key) / of this id; null: every one.
    scope_kind = fields.CharField(max_length=8, null=True)
    scope_id = fields.IntField(null=True)
    #: circuit, error_rate: only this provider; null: every provider.
    provider = fields.CharField(max_length=64, null=True)
    #: error_rate: fire above this percent of failed requests over ``window_s``, once at
    #: least ``min_requests`` were made.
    error_rate_percent = fields.FloatField(null=True)
    min_requests = fields.IntField(default=20)
    window_s = fields.IntField(default=300)
    #: circuit, error_rate: at most once per subject in each period of this many seconds.
    repeat_s = fields.IntField(default=3600)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)
    updated_by = fields.IntField(null=True)

    class Meta:
        table = "alert_rules"


class AlertDelivery(Model):
    id = fields.BigIntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=255)
    rule_id = fields.IntField(null=True)  # null: a "send test"
    channel_id = fields.IntField()
    kind = fields.CharField(max_length=16)  # cap | circuit | error_rate | test
    severity = fields.CharField(max_length=16, default="warning")
    title = fields.CharField(max_length=300)
    text = fields.TextField()
    payload: fields.JSONField[dict[str, object]] = fields.JSONField(default=dict)
    status = fields.CharField(max_length=16, default="pending")  # pending | sent | failed
    attempts = fields.IntField(default=0)
    #: When the next attempt is due; while one runs, the end of its lease (claimed rows).
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "alert_deliveries"
        unique_together = (("dedupe_key", "channel_id"),)
