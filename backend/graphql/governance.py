"""Limits (rates, tokens, allowlists, spend caps) of organizations, users, apps and keys, and
spend by cost-attribution tag (``backend.admin.limits``, ``backend.admin.tags``).

Every ``ApiKey``, ``User``, ``App`` and ``Organization`` has a ``limits`` field; ``setLimits``
changes them; ``spendByTag`` sums the tagged requests.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import limits as svc
from backend.admin import tags as tags_svc
from backend.graphql.common import from_row, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes
from backend.graphql.enums import CapPeriod, Role, stored
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.scalars import TokenCount, tokens


@strawberry.enum(description="What a set of limits belongs to.")
class LimitTarget(Enum):
    KEY = strawberry.enum_value("key", description="A gateway API key (user or app key).")
    USER = strawberry.enum_value("user", description="A user: every key of theirs.")
    APP = strawberry.enum_value("app", description="An app: every key of the app.")
    ORGANIZATION = strawberry.enum_value(
        "org", description="An organization: its users' and apps' keys."
    )


@strawberry.enum(
    description="A limit an administrator set on a key, which its owner may not raise."
)
class LimitName(Enum):
    REQUESTS_PER_MINUTE = strawberry.enum_value("rate_limit_rpm", description="Requests/minute.")
    TOKENS_PER_MINUTE = strawberry.enum_value("rate_limit_tpm", description="Tokens/minute.")
    SPEND_CAP = strawberry.enum_value("spend_cap", description="The spend cap and its period.")
    ALLOWED_MODELS = strawberry.enum_value("allowed_models", description="The model allowlist.")


@strawberry.type(
    name="LimitLock",
    description=(
        "A key limit set by an administrator: the key's owner may tighten it but not raise or "
        "remove it."
    ),
)
class LimitLockType:
    limit: LimitName = strawberry.field(description="Which limit.")
    ceiling: str = strawberry.field(
        description="The value the administrator set (the owner stays at or under it); "
        "'unreadable' when its record holds none (the owner may not change the limit then)."
    )
    set_by_id: int | None = strawberry.field(description="The administrator's user id.")
    set_by_name: str | None = strawberry.field(
        description="The administrator's name when they set it (null: the CLI, or set before "
        "names were recorded)."
    )
    set_by_role: Role | None = strawberry.field(
        description="Their role when they set it (null: the record names no known role)."
    )
    set_at: dt.datetime | None = strawberry.field(description="When.")


@strawberry.type(
    name="Limits",
    description=(
        "What an organization, user, app or key may use; null: no limit. A request must fit "
        "the limits of its key, its user or app, and its organization: the tightest applies."
    ),
)
class LimitsType:
    requests_per_minute: int | None = strawberry.field(
        description="Requests per sliding 60-second window."
    )
    tokens_per_minute: int | None = strawberry.field(
        description=(
            "Input plus output tokens per sliding 60-second window (reserved as estimated "
            "input plus max_tokens, settled to the real count)."
        )
    )
    allowed_models: list[str] | None = strawberry.field(
        description=(
            "Models or aliases it may use (case-insensitive glob patterns such as 'gpt-4o*' or "
            "'openai/*'); null: any model; empty: none."
        )
    )
    spend_cap_usd: Decimal | None = strawberry.field(
        description="Spend cap in USD per capPeriod (a user's is their weekly cap)."
    )
    cap_period: CapPeriod = strawberry.field(description="The period the spend cap covers.")
    locks: list[LimitLockType] = strawberry.field(
        description="Keys: the limits an administrator set, which the owner may not raise."
    )


#: The ``limits`` field of ``User``, ``App`` and ``Organization`` (a key's says more).
LIMITS = "Rate, token and model limits (and the spend cap), tightest level applies."


def limits_type(row: Any) -> LimitsType:
    """The ``Limits`` of an ``ApiKey``, ``User``, ``App`` or ``Organization`` row."""
    view = svc.view(row)
    locks = []
    for name, lock in sorted(view.locks.items()):  # known limits only (svc.stored_locks)
        role = svc.lock_role(lock)
        locks.append(
            LimitLockType(
                limit=LimitName(name),
                ceiling=svc.shown(name, lock),
                set_by_id=svc.lock_by(lock),
                set_by_name=svc.lock_name(lock),
                set_by_role=None if role is None else Role(role),
                set_at=svc.lock_at(lock),
            )
        )
    return LimitsType(
        requests_per_minute=view.requests_per_minute,
        tokens_per_minute=view.tokens_per_minute,
        allowed_models=view.allowed_models,
        spend_cap_usd=view.spend_cap_usd,
        cap_period=CapPeriod(view.cap_period if view.cap_period in svc.PERIODS else "monthly"),
        locks=locks,
    )


@strawberry.input(description="Limits to change: only the fields sent change; null removes one.")
class LimitsInput:
    requests_per_minute: int | None = strawberry.field(
        default=UNSET, description="Requests per minute, 1 to 1,000,000; null: no limit."
    )
    tokens_per_minute: int | None = strawberry.field(
        default=UNSET, description="Tokens per minute, 1 to 1,000,000,000; null: no limit."
    )
    allowed_models: list[str] | None = strawberry.field(
        default=UNSET,
        description="Models or aliases (glob patterns, at most 100); null: any; []: none.",
    )
    spend_cap_usd: Decimal | None = strawberry.field(
        default=UNSET, description="Spend cap in USD; null: no cap (a user's: weekly cap)."
    )
    cap_period: CapPeriod | None = strawberry.field(
        default=UNSET, description="The cap's period (users: WEEKLY only)."
    )


@strawberry.type(name="TagSpend", description="Requests, tokens and cost of one tag in a window.")
class TagSpendType:
    tag: str = strawberry.field(description="The tag.")
    requests: int = strawberry.field(description="Requests made with the tag.")
    errors: int = strawberry.field(description="Of which failed.")
    input_tokens: TokenCount = strawberry.field(description="Input tokens.")
    output_tokens: TokenCount = strawberry.field(description="Output tokens.")
    cost_usd: Decimal = strawberry.field(description="Cost in USD of the requests with a price.")
    unknown_cost_requests: int = strawberry.field(
        description="Requests whose cost is unknown (a model without a price): not in costUsd."
    )


_Target = Annotated[LimitTarget, strawberry.argument(description="What the limits belong to.")]
_Ident = Annotated[int, strawberry.argument(description="Its id.")]


@strawberry.type
class GovernanceQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "The limits of a key (members: their own), a user (members: themselves), an app "
            "(admins) or an organization (members: their own)."
        ),
    )
    async def limits(self, info: Info, target: _Target, id: _Ident) -> LimitsType:
        return limits_type(await svc.target_row(viewer(info), stored(target), id, write=False))

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "Requests, tokens and cost per cost-attribution tag (metadata.tags or the "
            "x-switchboard-tags header) over [since, until) (default: last 30 days), from hourly "
            "rollups, highest cost first. A request with several tags counts under each. "
            "Members: their own requests."
        ),
    )
    async def spend_by_tag(
        self,
        info: Info,
        since: Annotated[
            dt.datetime | None, strawberry.argument(description="Start; null: 30 days ago.")
        ] = None,
        until: Annotated[
            dt.datetime | None, strawberry.argument(description="End; null: now.")
        ] = None,
        tags: Annotated[
            list[str] | None, strawberry.argument(description="Only these tags; null: all.")
        ] = None,
        organization_id: Annotated[
            int | None, strawberry.argument(description="Only requests made under this org.")
        ] = None,
        user_id: Annotated[int | None, strawberry.argument(description="Only this user.")] = None,
        app_id: Annotated[int | None, strawberry.argument(description="Only this app.")] = None,
    ) -> list[TagSpendType]:
        now = info.context.gateway.clock()
        rows = await tags_svc.spend_by_tag(
            viewer(info),
            since=since or now - dt.timedelta(days=30),
            until=until or now + dt.timedelta(hours=1),
            tags=tags,
            organization_id=organization_id,
            user_id=user_id,
            app_id=app_id,
            now=now,
        )
        return [
            from_row(
                TagSpendType,
                r,
                input_tokens=tokens(r.input_tokens),
                output_tokens=tokens(r.output_tokens),
            )
            for r in rows
        ]


@strawberry.type
class GovernanceMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description=(
            "Change the limits of a key (its owner or its admins), a user or an app (their "
            "organization's admins) or an organization (super_admin). A key's owner may tighten "
            "but not raise or remove a limit an administrator set on it."
        ),
    )
    async def set_limits(
        self,
        info: Info,
        target: _Target,
        id: _Ident,
        input: Changes[LimitsInput],
    ) -> LimitsType:
        return await run(info, svc.set_limits, stored(target), id, input, convert=limits_type)
