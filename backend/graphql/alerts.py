"""Alerts: channels, rules, the delivery record and "send test" (super_admin only)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import enum_value as value
from strawberry.types.unset import UNSET

from backend.admin import alerts as svc
from backend.data.models.alerts import AlertChannel, AlertDelivery, AlertRule
from backend.graphql.common import changes, from_row, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes, listing, mutation
from backend.graphql.enums import stored
from backend.graphql.permissions import IsSuperAdmin


@strawberry.enum(description="How an alert channel delivers.")
class AlertChannelKind(Enum):
    WEBHOOK = value("webhook", description="POST of a JSON body, signed (HMAC-SHA256).")
    SLACK = value("slack", description="POST of a Slack incoming-webhook body, signed too.")
    EMAIL = value("email", description="An email over SMTP.")


@strawberry.enum(description="What an alert rule watches.")
class AlertRuleKind(Enum):
    CAP = value("cap", description="Spend reaching percents (thresholds) of a spend cap.")
    CIRCUIT = value("circuit", description="A provider's or model's circuit opening.")
    ERROR_RATE = value("error_rate", description="A provider's error rate above a bound.")


@strawberry.enum(description="Which spend caps a cap rule watches.")
class CapScope(Enum):
    USER = value("user", description="Users' weekly caps.")
    ORG = value("org", description="Organizations' caps.")
    APP = value("app", description="Apps' caps.")
    KEY = value("key", description="API keys' caps.")


@strawberry.enum(description="How an SMTP connection is secured.")
class SmtpSecurity(Enum):
    NONE = value("none", description="Plain SMTP.")
    STARTTLS = value("starttls", description="STARTTLS on a plain connection.")
    TLS = value("tls", description="TLS from the start (SMTPS).")


@strawberry.enum(description="Where a delivery stands.")
class AlertDeliveryStatus(Enum):
    PENDING = value("pending", description="Not delivered yet (an attempt is due or running).")
    SENT = value("sent", description="Delivered.")
    FAILED = value("failed", description="Every attempt failed; no more tries.")


_SECRET = (
    "Write-only: the webhook's HMAC-SHA256 signing key (16+ characters) or the SMTP password. "
    "null or '' removes it."
)


@strawberry.type(name="AlertChannel", description="Where alerts go (no secrets).")
class AlertChannelType:
    id: int = strawberry.field(description="The channel's id.")
    name: str = strawberry.field(description="Its unique name; rules refer to it.")
    kind: AlertChannelKind = strawberry.field(description="How it delivers.")
    url: str | None = strawberry.field(description="webhook/slack: the URL posted to.")
    secret_set: bool = strawberry.field(description="A secret is stored (encrypted).")
    secret_last4: str | None = strawberry.field(description="Never more than the last 4.")
    smtp_host: str | None = strawberry.field(description="email: the SMTP server.")
    smtp_port: int | None = strawberry.field(description="email: its port (default 25).")
    smtp_security: SmtpSecurity | None = strawberry.field(description="email: TLS or not.")
    smtp_username: str | None = strawberry.field(description="email: the login, if any.")
    sender: str | None = strawberry.field(description="email: the From address.")
    recipients: list[str] = strawberry.field(description="email: the addresses alerted.")
    enabled: bool = strawberry.field(description="false: rules skip this channel.")
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(c: AlertChannel) -> AlertChannelType:
        config = c.config or {}
        security = config.get("security")
        recipients = config.get("recipients")
        port = config.get("port")
        return AlertChannelType(
            id=c.id,
            name=c.name,
            kind=AlertChannelKind(c.kind),
            url=c.url,
            secret_set=c.secret_ciphertext is not None,
            secret_last4=c.secret_last4,
            smtp_host=str(config["host"]) if config.get("host") else None,
            smtp_port=port if isinstance(port, int) else None,
            smtp_security=SmtpSecurity(security) if isinstance(security, str) else None,
            smtp_username=str(config["username"]) if config.get("username") else None,
            sender=str(config["sender"]) if config.get("sender") else None,
            recipients=[str(r) for r in recipients] if isinstance(recipients, list) else [],
            enabled=c.enabled,
            updated_at=c.updated_at,
        )


@strawberry.input(description="A channel's settings: only the fields sent change.")
class AlertChannelInput:
    kind: AlertChannelKind | None = strawberry.field(
        default=UNSET, description="How it delivers (required on creation; cannot change)."
    )
    url: str | None = strawberry.field(default=UNSET, description="webhook/slack: the URL.")
    secret: str | None = strawberry.field(default=UNSET, description=_SECRET)
    smtp_host: str | None = strawberry.field(default=UNSET, description="email: SMTP server.")
    smtp_port: int | None = strawberry.field(default=UNSET, description="email: its port.")
    smtp_security: SmtpSecurity | None = strawberry.field(
        default=UNSET, description="email: TLS or not (default NONE)."
    )
    smtp_username: str | None = strawberry.field(default=UNSET, description="email: login.")
    sender: str | None = strawberry.field(default=UNSET, description="email: the From address.")
    recipients: list[str] | None = strawberry.field(
        default=UNSET, description="email: up to 20 addresses."
    )
    enabled: bool | None = strawberry.field(default=UNSET, description="false: not used.")


@strawberry.type(name="AlertRule", description="When alerts fire, and where they go.")
class AlertRuleType:
    id: int = strawberry.field(description="The rule's id.")
    name: str = strawberry.field(description="Its unique name.")
    kind: AlertRuleKind = strawberry.field(description="What it watches.")
    channels: list[str] = strawberry.field(description="Names of the channels alerted.")
    thresholds: list[int] = strawberry.field(
        description="cap: percents of the cap; each fires once per cap and period."
    )
    scope_kind: CapScope | None = strawberry.field(description="cap: only these caps; null: all.")
    scope_id: int | None = strawberry.field(description="cap: only the cap of this id.")
    provider: str | None = strawberry.field(
        description="circuit/error_rate: only this provider; null: every one."
    )
    error_rate_percent: float | None = strawberry.field(
        description="error_rate: fire above this percent of failed requests."
    )
    min_requests: int = strawberry.field(
        description="error_rate: only once the window holds this many requests."
    )
    window_seconds: int = strawberry.field(description="error_rate: the window measured.")
    repeat_seconds: int = strawberry.field(
        description="circuit/error_rate: at most one alert per subject per this many seconds."
    )
    enabled: bool = strawberry.field(description="false: not evaluated.")
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(r: AlertRule) -> AlertRuleType:
        return from_row(
            AlertRuleType,
            r,
            kind=AlertRuleKind(r.kind),
            channels=list(r.channels or []),
            thresholds=[int(t) for t in r.thresholds or []],
            scope_kind=CapScope(r.scope_kind) if r.scope_kind else None,
            window_seconds=r.window_s,
            repeat_seconds=r.repeat_s,
        )


@strawberry.input(description="A rule's settings: only the fields sent change.")
class AlertRuleInput:
    kind: AlertRuleKind | None = strawberry.field(
        default=UNSET, description="What it watches (required on creation)."
    )
    channels: list[str] | None = strawberry.field(default=UNSET, description="Channel names.")
    thresholds: list[int] | None = strawberry.field(
        default=UNSET, description="cap: percents, e.g. [50, 80, 100]."
    )
    scope_kind: CapScope | None = strawberry.field(default=UNSET, description="cap: which caps.")
    scope_id: int | None = strawberry.field(default=UNSET, description="cap: one cap's id.")
    provider: str | None = strawberry.field(default=UNSET, description="Only this provider.")
    error_rate_percent: float | None = strawberry.field(
        default=UNSET, description="error_rate: the bound in percent."
    )
    min_requests: int | None = strawberry.field(
        default=UNSET, description="error_rate: requests needed first (default 20)."
    )
    window_seconds: int | None = strawberry.field(
        default=UNSET, description="error_rate: the window (default 300)."
    )
    repeat_seconds: int | None = strawberry.field(
        default=UNSET, description="circuit/error_rate: the repeat period (default 3600)."
    )
    enabled: bool | None = strawberry.field(default=UNSET, description="false: not evaluated.")


@strawberry.type(name="AlertDelivery", description="One alert sent (or being sent) to a channel.")
class AlertDeliveryType:
    id: int = strawberry.field(description="The delivery's id (the webhook body's `id`).")
    created_at: dt.datetime = strawberry.field(description="When the alert fired.")
    kind: str = strawberry.field(description="cap, circuit, error_rate or test.")
    severity: str = strawberry.field(description="info, warning or critical.")
    title: str = strawberry.field(description="What happened, in one line.")
    text: str = strawberry.field(description="The details, in words.")
    channel: str | None = strawberry.field(description="The channel's name (null: deleted).")
    rule_id: int | None = strawberry.field(description="The rule that fired (null: a test).")
    status: AlertDeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    next_attempt_at: dt.datetime | None = strawberry.field(description="The next try, if any.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    sent_at: dt.datetime | None = strawberry.field(description="When it was delivered.")

    @staticmethod
    def of(d: AlertDelivery, names: dict[int, str]) -> AlertDeliveryType:
        return from_row(
            AlertDeliveryType,
            d,
            channel=names.get(d.channel_id),
            status=AlertDeliveryStatus(d.status),
        )


_Name = Annotated[str, strawberry.argument(description="The channel's or rule's name.")]


@strawberry.type
class AlertsQuery:
    alert_channels = listing(svc.list_channels, AlertChannelType, IsSuperAdmin, "Alert channels.")
    alert_rules = listing(svc.list_rules, AlertRuleType, IsSuperAdmin, "Alert rules.")

    @strawberry.field(
        permission_classes=[IsSuperAdmin], description="Recent alert deliveries, newest first."
    )
    async def alert_deliveries(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="How many, 1 to 200; null: 50.")
        ] = None,
        status: Annotated[
            AlertDeliveryStatus | None, strawberry.argument(description="Only these; null: all.")
        ] = None,
    ) -> list[AlertDeliveryType]:
        rows, names = await svc.list_deliveries(viewer(info), first=first, status=stored(status))
        return [AlertDeliveryType.of(d, names) for d in rows]


@strawberry.type
class AlertsMutation:
    set_alert_channel = mutation(
        svc.set_channel,
        AlertChannelType,
        IsSuperAdmin,
        "Create or change an alert channel.",
        convert=AlertChannelType.of,
        name=_Name,
        input=Changes[AlertChannelInput],
    )

    delete_alert_channel = mutation(
        svc.delete_channel,
        bool,
        IsSuperAdmin,
        "Remove an alert channel (true; an error if there is none).",
        gateway=False,
        name=_Name,
    )

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="Send a test alert to a channel now; the answer is its first attempt "
        "(retried like any alert if it failed).",
    )
    async def send_test_alert(self, info: Info, name: _Name) -> AlertDeliveryType:
        row = await svc.send_test(info.context.gateway, viewer(info), name)
        return AlertDeliveryType.of(row, {row.channel_id: name})

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin], description="Create or change an alert rule."
    )
    async def set_alert_rule(
        self,
        info: Info,
        name: _Name,
        input: Changes[AlertRuleInput],
    ) -> AlertRuleType:
        fields = changes(input)
        for api, column in (("window_seconds", "window_s"), ("repeat_seconds", "repeat_s")):
            if api in fields:
                fields[column] = fields.pop(api)
        return await run(info, svc.set_rule, name, fields, convert=AlertRuleType.of, gateway=False)

    delete_alert_rule = mutation(
        svc.delete_rule,
        bool,
        IsSuperAdmin,
        "Remove an alert rule (true; an error if there is none).",
        gateway=False,
        name=_Name,
    )
