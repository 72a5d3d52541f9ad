"""Alert channels, rules and the delivery record: super_admin only; secrets write-only.

A channel's secret (the webhook signing secret, or the SMTP password) is stored AES-256-GCM
encrypted, bound to the channel's name, and shown as its last four characters only. Every change
writes an audit row naming the fields that changed (never their values). Rules are read by the
watcher at each evaluation, so a change applies from the next one on every instance.
"""

from __future__ import annotations

from typing import Any

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, actor_id, require_super
from backend.admin.credentials import PROVIDER_RE
from backend.admin.errors import FailedPrecondition, InvalidInput, NotFound
from backend.alerts.deliveries import channel_aad
from backend.data.models.alerts import AlertChannel, AlertDelivery, AlertRule
from backend.gateway import Gateway

CHANNEL_KINDS = ("webhook", "slack", "email")
RULE_KINDS = ("cap", "circuit", "error_rate")
SCOPE_KINDS = ("user", "org", "app", "key")
SECURITIES = ("none", "starttls", "tls")
DELIVERY_STATUSES = ("pending", "sent", "failed")
MIN_SIGNING_SECRET = 16
MAX_RECIPIENTS = 20
MAX_DELIVERIES = 200


def _name(value: Any, field: str = "name") -> str:
    out = v.text(value, field, max_len=64)
    if not PROVIDER_RE.match(out):
        raise InvalidInput(f"{field} must be lowercase letters, digits, '-' or '_'", field=field)
    return out


# -- channels --------------------------------------------------------------------------------


async def list_channels(actor: Actor) -> list[AlertChannel]:
    require_super(actor, "view alert channels")
    return await AlertChannel.all().order_by("name")


def _secret(value: Any, kind: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise InvalidInput("secret must be a string of at most 4096 characters", field="secret")
    if kind != "email" and (len(value) < MIN_SIGNING_SECRET or value != value.strip()):
        raise InvalidInput(
            f"secret (the signing key) must be at least {MIN_SIGNING_SECRET} characters without "
            "surrounding spaces",
            field="secret",
        )
    return value


def _email_config(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    if "smtp_host" in changes:
        out["host"] = v.optional_text(changes["smtp_host"], "smtpHost", max_len=253)
    if "smtp_port" in changes:
        out["port"] = v.int_range(changes["smtp_port"], "smtpPort", 1, 65535)
    if "smtp_security" in changes:
        out["security"] = v.choice(changes["smtp_security"] or "none", "smtpSecurity", SECURITIES)
    if "smtp_username" in changes:
        out["username"] = v.optional_text(changes["smtp_username"], "smtpUsername", max_len=200)
    if "sender" in changes:
        out["sender"] = v.email(changes["sender"], "sender") if changes["sender"] else None
    if "recipients" in changes:
        given = changes["recipients"] or []
        if not isinstance(given, list) or len(given) > MAX_RECIPIENTS:
            raise InvalidInput(
                f"recipients must be a list of at most {MAX_RECIPIENTS} addresses",
                field="recipients",
            )
        out["recipients"] = list(dict.fromkeys(v.email(r, "recipients") for r in given))
    return out


def _check_complete(row: AlertChannel) -> None:
    if row.kind == "email":
        config = row.config or {}
        for key, field in (("host", "smtpHost"), ("sender", "sender")):
            if not config.get(key):
                raise InvalidInput(f"an email channel needs {field}", field=field)
        if not config.get("recipients"):
            raise InvalidInput("an email channel needs recipients", field="recipients")
        return
    if not row.url:
        raise InvalidInput(f"a {row.kind} channel needs url", field="url")
    if not row.secret_ciphertext:
        raise InvalidInput(
            f"a {row.kind} channel needs a secret: every delivery is signed with it",
            field="secret",
        )


async def set_channel(
    gw: Gateway, actor: Actor, name: str, changes: dict[str, Any]
) -> AlertChannel:
    require_super(actor, "change alert channels")
    name = _name(name)
    row = await AlertChannel.get_or_none(name=name)
    created = row is None
    if row is None:
        if "kind" not in changes:
            raise InvalidInput("kind is required for a new channel", field="kind")
        row = AlertChannel(name=name, config={})
    if "kind" in changes:
        kind = v.choice(changes["kind"], "kind", CHANNEL_KINDS)
        if not created and kind != row.kind:
            raise InvalidInput("a channel's kind cannot change: make a new one", field="kind")
        row.kind = kind
    if "url" in changes:
        row.url = v.http_url(changes["url"], "url")
    if row.kind == "email":
        row.config = _email_config(dict(row.config or {}), changes)
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])
    if "secret" in changes:
        secret = _secret(changes["secret"], row.kind)
        row.secret_ciphertext = None if secret is None else _encrypt(gw, name, secret)  # type: ignore[assignment]
        row.secret_last4 = None if secret is None else secret[-4:]
    _check_complete(row)
    row.updated_by = actor_id(actor)
    await row.save()
    action = "alert_channel.create" if created else "alert_channel.update"
    await audit.record(actor, action, f"alert_channel:{name}", fields=sorted(changes))
    return row


def _encrypt(gw: Gateway, name: str, secret: str) -> str:
    from backend.security.crypto import encrypt_secret

    if not gw.secret_key:
        raise FailedPrecondition("the gateway has no secret key to encrypt secrets with")
    return encrypt_secret(gw.secret_key, secret, channel_aad(name))


async def delete_channel(actor: Actor, name: str) -> bool:
    require_super(actor, "change alert channels")
    if not await AlertChannel.filter(name=name).delete():
        raise NotFound(f"no alert channel {name!r}")
    await audit.record(actor, "alert_channel.delete", f"alert_channel:{name}")
    return True


async def send_test(gw: Gateway, actor: Actor, name: str) -> AlertDelivery:
    require_super(actor, "send test alerts")
    channel = await AlertChannel.get_or_none(name=name)
    if channel is None:
        raise NotFound(f"no alert channel {name!r}")
    await audit.record(actor, "alert_channel.test", f"alert_channel:{name}")
    return await gw.extras["alerts"].send_test(channel)  # type: ignore[no-any-return]


# -- rules -----------------------------------------------------------------------------------


async def list_rules(actor: Actor) -> list[AlertRule]:
    require_super(actor, "view alert rules")
    return await AlertRule.all().order_by("name")


async def _channels(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 20:
        raise InvalidInput("channels must name 1 to 20 alert channels", field="channels")
    names = list(dict.fromkeys(_name(n, "channels") for n in value))
    known = {c.name for c in await AlertChannel.filter(name__in=names)}
    missing = [n for n in names if n not in known]
    if missing:
        raise InvalidInput(f"unknown alert channel(s): {', '.join(missing)}", field="channels")
    return names


def _thresholds(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > 10:
        raise InvalidInput("thresholds must be a list of at most 10 percents", field="thresholds")
    return sorted({v.int_range(t, "thresholds", 1, 1000, optional=False) or 0 for t in value})


def _apply_rule(row: AlertRule, changes: dict[str, Any]) -> None:
    if "thresholds" in changes:
        row.thresholds = _thresholds(changes["thresholds"])
    if "scope_kind" in changes:
        given = changes["scope_kind"]
        row.scope_kind = None if given is None else v.choice(given, "scopeKind", SCOPE_KINDS)
    if "scope_id" in changes:
        row.scope_id = v.int_range(changes["scope_id"], "scopeId", 1, 2**31 - 1)
    if "provider" in changes:
        given = changes["provider"]
        row.provider = None if not given else _name(given, "provider")
    if "error_rate_percent" in changes:
        rate = changes["error_rate_percent"]
        if rate is not None and (not isinstance(rate, (int, float)) or not 0 < rate <= 100):
            raise InvalidInput(
                "errorRatePercent must be above 0 and at most 100", field="errorRatePercent"
            )
        row.error_rate_percent = None if rate is None else float(rate)
    limits = {
        "min_requests": ("minRequests", 1, 1_000_000),
        "window_s": ("windowSeconds", 60, 86_400),
        "repeat_s": ("repeatSeconds", 60, 30 * 86_400),
    }
    for key, (field, lo, hi) in limits.items():
        if key in changes:
            setattr(row, key, v.int_range(changes[key], field, lo, hi, optional=False))
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])


async def set_rule(actor: Actor, name: str, changes: dict[str, Any]) -> AlertRule:
    require_super(actor, "change alert rules")
    name = _name(name)
    row = await AlertRule.get_or_none(name=name)
    created = row is None
    if row is None:
        if "kind" not in changes:
            raise InvalidInput("kind is required for a new rule", field="kind")
        row = AlertRule(name=name, channels=[], thresholds=[])
    if "kind" in changes:
        row.kind = v.choice(changes["kind"], "kind", RULE_KINDS)
    if "channels" in changes:
        row.channels = await _channels(changes["channels"])
    _apply_rule(row, changes)
    if not row.channels:
        raise InvalidInput("a rule needs channels to alert", field="channels")
    if row.kind == "cap" and not row.thresholds:
        raise InvalidInput("a cap rule needs thresholds (e.g. [50, 80, 100])", field="thresholds")
    if row.kind == "error_rate" and row.error_rate_percent is None:
        raise InvalidInput("an error_rate rule needs errorRatePercent", field="errorRatePercent")
    row.updated_by = actor_id(actor)
    await row.save()
    action = "alert_rule.create" if created else "alert_rule.update"
    await audit.record(actor, action, f"alert_rule:{name}", fields=sorted(changes))
    return row


async def delete_rule(actor: Actor, name: str) -> bool:
    require_super(actor, "change alert rules")
    if not await AlertRule.filter(name=name).delete():
        raise NotFound(f"no alert rule {name!r}")
    await audit.record(actor, "alert_rule.delete", f"alert_rule:{name}")
    return True


# -- the record ------------------------------------------------------------------------------


async def list_deliveries(
    actor: Actor, *, first: int | None = None, status: str | None = None
) -> tuple[list[AlertDelivery], dict[int, str]]:
    """The latest deliveries (newest first) and the names of their channels by id."""
    require_super(actor, "view alerts")
    limit = v.int_range(first, "first", 1, MAX_DELIVERIES) or 50
    query = AlertDelivery.all()
    if status is not None:
        query = query.filter(status=v.choice(status, "status", DELIVERY_STATUSES))
    rows = await query.order_by("-id").limit(limit)
    names = {c.id: c.name for c in await AlertChannel.all()}
    return rows, names
