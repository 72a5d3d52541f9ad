"""Provider deployments: super_admin only; API keys write-only (last 4 shown); live load/health."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import enum_value as value
from strawberry.types.unset import UNSET

from backend.admin import deployments as svc
from backend.graphql.common import from_row, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes, mutation
from backend.graphql.permissions import IsSuperAdmin

_BASE_URL = "This deployment's base URL; null: the provider's own."
_KEY = "Write-only. null or '' removes this deployment's key (the provider's own is used)."
_ORG = "OpenAI organization header; null: the provider's own."
_PROJECT = "OpenAI project header; null: the provider's own."
_AZURE = "Azure deployment name; null: the provider's own, else the model name."
_VERSION = "Azure API version; null: the provider's own, else the default."
_WEIGHT = (
    "Share of the provider's requests relative to the other deployments' weights (0 to 1000; "
    "0: a standby, used only when the others fail or are full)."
)
_RPM = "Requests per minute this deployment may take (every instance together); null: no limit."
_TPM = "Tokens per minute this deployment may take (every instance together); null: no limit."
_MODELS = "The provider's model ids it serves; empty: every model."
_ENABLED = "false: the gateway does not use this deployment."


@strawberry.enum(
    description="A deployment's health: the worst any gateway instance reporting sees (each "
    "instance decides from its own calls)."
)
class DeploymentHealth(Enum):
    HEALTHY = value("healthy", description="Answering; no failure since its last success.")
    DEGRADED = value("degraded", description="Failed recently; still sent its share.")
    RATE_LIMITED = value(
        "rate_limited", description="Answered 429: skipped until its Retry-After has passed."
    )
    DOWN = value(
        "down", description="Unreachable or failing: tried only when nothing else can serve."
    )
    BROKEN = value("broken", description="Unusable configuration (see `problem`).")
    DISABLED = value("disabled", description="Disabled: by its own switch or its provider's.")


@strawberry.type(description="A deployment's live load and health (no secrets).")
class DeploymentStatusType:
    health: DeploymentHealth = strawberry.field(description="See DeploymentHealth.")
    problem: str | None = strawberry.field(
        description="Why the gateway cannot use it (configuration), if so."
    )
    in_flight: int = strawberry.field(
        description="Requests running on it now (summed over `instances`, as are the counts)."
    )
    requests: int = strawberry.field(
        description="Requests sent to it since each instance started or it was created."
    )
    successes: int = strawberry.field(description="Of those, answered.")
    failures: int = strawberry.field(description="Of those, failed.")
    rate_limited: int = strawberry.field(description="Of the failures, 429s.")
    limit_refusals: int = strawberry.field(
        description="Requests not sent to it because its own rpm/tpm window was full."
    )
    cooldown_seconds: float = strawberry.field(
        description="Seconds until it is tried again first (0: not cooling down)."
    )
    last_error: str | None = strawberry.field(description="Its last failure (scrubbed).")
    last_error_at: dt.datetime | None = strawberry.field(description="When that happened.")
    requests_last_minute: int = strawberry.field(
        description="Requests in its last minute: its shared rpm/tpm window when it has a "
        "limit, else the sum of the instances' own windows."
    )
    tokens_last_minute: int = strawberry.field(
        description="Tokens in its last minute, likewise (estimates until answers settle)."
    )
    instances: int = strawberry.field(
        description="Gateway instances whose status is merged here: every one that reported "
        "in the last 30 s when Redis is configured, else this one alone (0: none serves it)."
    )


@strawberry.type(
    name="ProviderDeployment",
    description="One more account or endpoint of a provider, with its share and limits.",
)
class ProviderDeploymentType:
    id: int = strawberry.field(description="The deployment's id.")
    provider: str = strawberry.field(description="The provider it serves, e.g. 'openai'.")
    name: str = strawberry.field(description="Its name, unique per provider.")
    base_url: str | None = strawberry.field(description=_BASE_URL)
    api_key_set: bool = strawberry.field(description="It has a key of its own (encrypted).")
    api_key_last4: str | None = strawberry.field(description="Never more than the last 4.")
    organization: str | None = strawberry.field(description=_ORG)
    project: str | None = strawberry.field(description=_PROJECT)
    azure_deployment: str | None = strawberry.field(description=_AZURE)
    api_version: str | None = strawberry.field(description=_VERSION)
    weight: int = strawberry.field(description=_WEIGHT)
    rpm_limit: int | None = strawberry.field(description=_RPM)
    tpm_limit: int | None = strawberry.field(description=_TPM)
    models: list[str] = strawberry.field(description=_MODELS)
    enabled: bool = strawberry.field(description=_ENABLED)
    updated_at: dt.datetime = strawberry.field(description="Last change.")
    updated_by: int | None = strawberry.field(description="Who changed it last (a user id).")
    status: DeploymentStatusType = strawberry.field(
        description="Live load and health over every gateway instance reporting it."
    )

    @staticmethod
    def of(view: svc.DeploymentView) -> ProviderDeploymentType:
        row = view.row
        return from_row(
            ProviderDeploymentType,
            row,
            api_key_set=row.api_key_ciphertext is not None,
            models=list(row.models or []),
            status=_status(view),
        )


def _status(view: svc.DeploymentView) -> DeploymentStatusType:
    s = view.status
    if view.problem is not None:
        health = DeploymentHealth.BROKEN
    elif not view.row.enabled or s is None:
        health = DeploymentHealth.DISABLED
    else:
        health = DeploymentHealth(s.health)
    at = s.last_error_at if s is not None else None
    return DeploymentStatusType(
        health=health,
        problem=view.problem,
        in_flight=s.in_flight if s else 0,
        requests=s.requests if s else 0,
        successes=s.successes if s else 0,
        failures=s.failures if s else 0,
        rate_limited=s.rate_limited if s else 0,
        limit_refusals=s.limit_refusals if s else 0,
        cooldown_seconds=s.cooldown_s if s else 0.0,
        last_error=s.last_error if s else None,
        last_error_at=dt.datetime.fromtimestamp(at, dt.UTC) if at is not None else None,
        requests_last_minute=view.window.requests,
        tokens_last_minute=view.window.tokens,
        instances=view.instances,
    )


@strawberry.input(description="A deployment's settings: only the fields sent change.")
class ProviderDeploymentInput:
    base_url: str | None = strawberry.field(default=UNSET, description=_BASE_URL)
    api_key: str | None = strawberry.field(default=UNSET, description=_KEY)
    organization: str | None = strawberry.field(default=UNSET, description=_ORG)
    project: str | None = strawberry.field(default=UNSET, description=_PROJECT)
    azure_deployment: str | None = strawberry.field(default=UNSET, description=_AZURE)
    api_version: str | None = strawberry.field(default=UNSET, description=_VERSION)
    weight: int | None = strawberry.field(default=UNSET, description=_WEIGHT + " Default 1.")
    rpm_limit: int | None = strawberry.field(default=UNSET, description=_RPM)
    tpm_limit: int | None = strawberry.field(default=UNSET, description=_TPM)
    models: list[str] | None = strawberry.field(default=UNSET, description=_MODELS)
    enabled: bool | None = strawberry.field(default=UNSET, description=_ENABLED)


_Provider = Annotated[str, strawberry.argument(description="Provider name, e.g. 'openai'.")]
_Name = Annotated[str, strawberry.argument(description="The deployment's name.")]


async def _view(info: Info, provider: str, name: str) -> ProviderDeploymentType:
    views = await svc.list_deployments(info.context.gateway, viewer(info))
    view = next(v for v in views if v.row.provider == provider and v.row.name == name)
    return ProviderDeploymentType.of(view)


@strawberry.type
class DeploymentsQuery:
    @strawberry.field(
        permission_classes=[IsSuperAdmin],
        description="Provider deployments with their live load and health.",
    )
    async def provider_deployments(
        self,
        info: Info,
        provider: Annotated[
            str | None, strawberry.argument(description="Only this provider's; null: all.")
        ] = None,
    ) -> list[ProviderDeploymentType]:
        views = await svc.list_deployments(info.context.gateway, viewer(info))
        return [ProviderDeploymentType.of(v) for v in views if provider in (None, v.row.provider)]


@strawberry.type
class DeploymentsMutation:
    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="Create or change a provider deployment; applies on every instance at once.",
    )
    async def set_provider_deployment(
        self,
        info: Info,
        provider: _Provider,
        name: _Name,
        input: Changes[ProviderDeploymentInput],
    ) -> ProviderDeploymentType:
        row = await run(info, svc.upsert_deployment, provider, name, input)
        return await _view(info, row.provider, row.name)

    delete_provider_deployment = mutation(
        svc.delete_deployment,
        bool,
        IsSuperAdmin,
        "Remove a deployment (true; an error if there is none).",
        provider=_Provider,
        name=_Name,
    )
