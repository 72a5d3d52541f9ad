"""Limits of organizations, users, apps and keys: requests and tokens per minute, the models or
aliases they may use, and spend caps (``backend/budget``, ``backend/policies/limits.py``).

Who may set them:

- an organization's: super_admins (as its spend cap);
- a user's or an app's: the admins of its organization (org_admins cannot touch super_admins);
- a key's: whoever may manage the key (``backend.admin.keys``), its owner included.

A limit an administrator sets on a key binds the key's owner: the owner may tighten it (a lower
rate or cap, a shorter cap period, fewer models) but not raise or remove it. "Administrator"
means a super_admin, or an org_admin acting on a key that is not their own. Each such limit is
recorded in ``ApiKey.admin_limits`` with who set it, its role, when, and the value (the ceiling
the owner stays under); an administrator removing a limit removes its record. This binds the key
only: an owner may create another key, so limits meant for a person belong on their user (which
members cannot change).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, SystemActor, actor_id, is_super, require_org
from backend.admin.access import require_user_access as _require_user_access
from backend.admin.errors import Forbidden, InvalidInput
from backend.admin.lookup import found
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import App, Organization, User
from backend.gateway import Gateway

MAX_RPM = 1_000_000
MAX_TPM = 1_000_000_000
MAX_MODELS = 100
PERIODS = ("daily", "weekly", "monthly")
_PERIOD_RANK = {p: i for i, p in enumerate(PERIODS)}
TARGETS = ("key", "user", "app", "org")
#: The names of lockable key limits (``admin_limits`` keys) and how they read in messages.
LIMIT_NAMES = {
    "rate_limit_rpm": "requests-per-minute limit",
    "rate_limit_tpm": "tokens-per-minute limit",
    "spend_cap": "spend cap",
    "allowed_models": "model allowlist",
}


@dataclass(frozen=True, slots=True)
class LimitsView:
    """What the API shows of any target's limits."""

    requests_per_minute: int | None
    tokens_per_minute: int | None
    allowed_models: list[str] | None
    spend_cap_usd: Decimal | None
    cap_period: str
    #: ``ApiKey.admin_limits`` (keys only): the entries of known limits (``stored_locks``).
    locks: dict[str, dict[str, Any]]


def view(row: ApiKey | User | App | Organization) -> LimitsView:
    if isinstance(row, User):
        cap, period = row.weekly_cap_usd, "weekly"
    else:
        cap, period = row.spend_cap_usd, row.cap_period
    return LimitsView(
        row.rate_limit_rpm,
        row.rate_limit_tpm,
        None if row.allowed_models is None else list(row.allowed_models),
        cap,
        period,
        stored_locks(row.admin_limits) if isinstance(row, ApiKey) else {},
    )


# A key's locks are JSON written by ``apply_to_key``; a record written otherwise (by hand, by an
# older version) may hold anything, so every reader below goes through these and a bad record
# reads as "unreadable" instead of failing the query or mutation that touches the key.
#: The roles a lock may record (the GraphQL ``Role`` values).
LOCK_ROLES = ("super_admin", "org_admin", "member")


def stored_locks(raw: Any) -> dict[str, dict[str, Any]]:
    """The locks of a key's ``admin_limits``, by limit name: the entries of limits this version
    knows; an entry that is not an object as one with no ceiling and no role (it still binds)."""
    if not isinstance(raw, dict):
        return {}
    return {
        name: dict(lock) if isinstance(lock, dict) else {"role": None}
        for name, lock in raw.items()
        if name in LIMIT_NAMES
    }


def lock_role(lock: dict[str, Any]) -> str | None:
    """The role recorded with a lock: ``super_admin`` when the record has no role entry (as
    before), None when what it holds is not a role."""
    if "role" not in lock:
        return "super_admin"
    role = lock["role"]
    return role if role in LOCK_ROLES else None


def lock_by(lock: dict[str, Any]) -> int | None:
    by = lock.get("by")
    return by if isinstance(by, int) and not isinstance(by, bool) else None


def lock_name(lock: dict[str, Any]) -> str | None:
    name = lock.get("name")
    return name if isinstance(name, str) and name else None


def lock_at(lock: dict[str, Any]) -> dt.datetime | None:
    at = lock.get("at")
    try:
        return dt.datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        return None


def ceiling(name: str, lock: dict[str, Any]) -> Any:
    """A lock's ceiling: an int (rates), a list of patterns (allowlist) or (amount, period)
    (spend cap); None when the record does not hold one."""
    value = lock.get("value")
    if name in ("rate_limit_rpm", "rate_limit_tpm"):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if name == "allowed_models":
        if isinstance(value, list) and all(isinstance(m, str) for m in value):
            return list(value)
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:  # InvalidOperation
        return None
    period = lock.get("period")
    if value is None or not amount.is_finite() or period not in PERIODS:
        return None
    return amount, period


def models_list(value: Any, field: str = "allowedModels") -> list[str] | None:
    """Glob patterns of models or aliases: at most 100, each 1-200 characters, no spaces."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_MODELS:
        raise InvalidInput(f"{field} must be a list of at most {MAX_MODELS} names", field=field)
    return list(dict.fromkeys(v.model_name(item, field) for item in value))


def validated(changes: dict[str, Any], target: str) -> dict[str, Any]:
    """The changes in storage terms: ``rate_limit_rpm``, ``rate_limit_tpm``, ``allowed_models``,
    ``spend_cap_usd``, ``cap_period`` (only the ones given)."""
    out: dict[str, Any] = {}
    if "requests_per_minute" in changes:
        out["rate_limit_rpm"] = v.int_range(
            changes["requests_per_minute"], "requestsPerMinute", 1, MAX_RPM
        )
    if "tokens_per_minute" in changes:
        out["rate_limit_tpm"] = v.int_range(
            changes["tokens_per_minute"], "tokensPerMinute", 1, MAX_TPM
        )
    if "allowed_models" in changes:
        out["allowed_models"] = models_list(changes["allowed_models"])
    if "spend_cap_usd" in changes:
        out["spend_cap_usd"] = v.money(changes["spend_cap_usd"], "spendCapUsd")
    if "cap_period" in changes:
        period = v.choice(changes["cap_period"], "capPeriod", PERIODS)
        if target == "user" and period != "weekly":
            raise InvalidInput("a user's spend cap is weekly (ISO week)", field="capPeriod")
        out["cap_period"] = period
    return out


def _is_key_admin(actor: Actor, key: ApiKey) -> bool:
    """Does ``actor`` act on ``key`` as an administrator rather than as its owner?"""
    if is_super(actor):
        return True
    own = not isinstance(actor, SystemActor) and key.user_id == actor.id  # type: ignore[attr-defined]
    return actor.role == "org_admin" and not own


def _tighter_or_equal(name: str, new: dict[str, Any], top: Any) -> bool:
    """Is the limit ``name`` in ``new`` within the lock's readable ceiling ``top``?"""
    if name in ("rate_limit_rpm", "rate_limit_tpm"):
        return new[name] is not None and new[name] <= top
    if name == "allowed_models":
        patterns = [p.lower() for p in top]
        given = new[name]
        return given is not None and all(
            any(fnmatchcase(m.lower(), p) for p in patterns) for m in given
        )
    amount, period = new["spend_cap_usd"], new["cap_period"]
    cap, cap_period = top
    return (
        amount is not None
        and amount <= cap
        and _PERIOD_RANK.get(period, len(PERIODS)) <= _PERIOD_RANK[cap_period]
    )


def shown(name: str, lock: dict[str, Any]) -> str:
    top = ceiling(name, lock)
    if top is None:
        return "unreadable"
    if name == "allowed_models":
        return ", ".join(top) or "no model"
    if name == "spend_cap":
        return f"${top[0]:.2f} {top[1]}"
    return str(top)


def setter(lock: dict[str, Any]) -> str:
    """Who set a lock, in words: ``org_admin Ann Admin, user #3`` (``org_admin, user #3`` for a
    lock recorded before names were; ``super_admin`` for the CLI; ``unknown`` when the record
    holds neither a role nor a name)."""
    who = " ".join(part for part in (lock_role(lock), lock_name(lock)) if part) or "unknown"
    by = lock_by(lock)
    return who if by is None else f"{who}, user #{by}"


def _lock_value(name: str, row: ApiKey) -> dict[str, Any]:
    if name == "spend_cap":
        return {"value": str(row.spend_cap_usd), "period": row.cap_period}
    value = getattr(row, name)
    return {"value": list(value) if name == "allowed_models" else value}


def _lock_names(fields: dict[str, Any]) -> set[str]:
    names = {n for n in fields if n in LIMIT_NAMES}
    if "spend_cap_usd" in fields or "cap_period" in fields:
        names.add("spend_cap")
    return names


def apply_to_key(actor: Actor, key: ApiKey, fields: dict[str, Any], now: dt.datetime) -> None:
    """Set validated ``fields`` on ``key`` (not saved), enforcing and recording admin locks."""
    # Entries this version does not know are kept as they are; a record that is not an object
    # binds nothing (no limit can be read from it) and is replaced.
    locks: dict[str, Any] = dict(key.admin_limits) if isinstance(key.admin_limits, dict) else {}
    admin = _is_key_admin(actor, key)
    after = {
        "rate_limit_rpm": fields.get("rate_limit_rpm", key.rate_limit_rpm),
        "rate_limit_tpm": fields.get("rate_limit_tpm", key.rate_limit_tpm),
        "allowed_models": fields.get("allowed_models", key.allowed_models),
        "spend_cap_usd": fields.get("spend_cap_usd", key.spend_cap_usd),
        "cap_period": fields.get("cap_period", key.cap_period),
    }
    names = _lock_names(fields)
    if not admin:
        known = stored_locks(locks)
        for name in sorted(names & set(known)):
            lock = known[name]
            top = ceiling(name, lock)
            if top is None:
                # Fail closed: an unreadable ceiling is still an administrator's lock.
                raise Forbidden(
                    f"the {LIMIT_NAMES[name]} of key {key.prefix} was set by an administrator "
                    f"({setter(lock)}) and its recorded ceiling is unreadable: only an "
                    "administrator may change it"
                )
            if not _tighter_or_equal(name, after, top):
                raise Forbidden(
                    f"the {LIMIT_NAMES[name]} of key {key.prefix} ({shown(name, lock)}) was set "
                    f"by an administrator ({setter(lock)}): you may tighten it but not raise "
                    "or remove it"
                )
    for name, value in after.items():
        setattr(key, name, value)
    if admin:
        for name in names:
            unset = after["spend_cap_usd"] is None if name == "spend_cap" else after[name] is None
            if unset:
                locks.pop(name, None)
            else:
                locks[name] = {
                    **_lock_value(name, key),
                    "by": actor_id(actor),
                    # Kept with the lock so its owner can be told who set it (members cannot
                    # look other users up); the name as it was then.
                    "name": None if isinstance(actor, SystemActor) else actor.name,
                    "role": actor.role,
                    "at": now.isoformat(),
                }
    key.admin_limits = locks


async def target_row(
    actor: Actor, target: str, ident: int, *, write: bool = True
) -> ApiKey | User | App | Organization:
    """The row whose limits ``actor`` sets (or, ``write=False``, reads: users their own,
    members their organization's); NotFound / Forbidden otherwise."""
    from backend.admin import keys as keys_svc  # keys.py applies this module's key rules

    target = v.choice(target, "target", TARGETS)
    if target == "key":
        return await keys_svc.get_key(actor, ident)
    if target == "user":
        user = await found(User, ident, "user")
        _require_user_access(actor, user, "set limits of", self_ok=not write)
        return user
    if target == "app":
        app = await found(App, ident, "app")
        require_org(actor, app.organization_id, "set limits of apps")  # type: ignore[attr-defined]
        return app
    if write and not is_super(actor):
        raise Forbidden("only a super_admin may set an organization's limits")
    from backend.admin.tenancy import get_org  # viewing: super_admins, or its own members

    return await get_org(actor, ident)


async def set_limits(
    gw: Gateway, actor: Actor, target: str, ident: int, changes: dict[str, Any]
) -> ApiKey | User | App | Organization:
    """Change the limits given in ``changes`` (API names); the others stay. Returns the row."""
    row = await target_row(actor, target, ident)
    fields = validated(changes, target)
    if isinstance(row, ApiKey):
        apply_to_key(actor, row, fields, gw.clock())
    else:
        for name, value in fields.items():
            if isinstance(row, User) and name in ("spend_cap_usd", "cap_period"):
                if name == "spend_cap_usd":
                    row.weekly_cap_usd = value
                continue
            setattr(row, name, value)
    await row.save()
    await audit.record(actor, "limits.set", f"{target}:{ident}", fields=sorted(changes))
    await gw.config_changed("keys" if target == "key" else "tenancy")
    return row
