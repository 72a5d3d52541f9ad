"""Model router: aliases, agent configurations, fallback chains, catalog and price overrides."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import agents as agent_svc
from backend.admin import routing as svc
from backend.data.models.routing import AgentConfig, FallbackChain, ModelAlias, ModelPrice
from backend.graphql.common import changes
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin, IsSuperAdmin
from backend.graphql.tenancy import OrganizationType


@strawberry.type(name="ModelAlias")
class ModelAliasType:
    id: int
    requested_model: str
    target_model: str = strawberry.field(description="What the request is routed to.")
    organization_id: int | None
    created_at: dt.datetime

    @strawberry.field(description="global | org (an organization's alias beats a global one)")
    def scope(self) -> str:
        return "global" if self.organization_id is None else "org"

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType | None:
        if self.organization_id is None:
            return None
        org = await info.context.loaders.org.load(self.organization_id)
        return OrganizationType.of(org) if org else None

    @staticmethod
    def of(a: ModelAlias) -> ModelAliasType:
        return ModelAliasType(
            id=a.id,
            requested_model=a.requested_model,
            target_model=a.target_model,
            organization_id=a.organization_id,  # type: ignore[attr-defined]
            created_at=a.created_at,
        )


@strawberry.type(name="AgentConfig")
class AgentConfigType:
    id: int
    agent_id: str
    name: str
    role: str
    normal_model: str
    heavy_model: str | None
    max_model: str | None
    updated_at: dt.datetime

    @staticmethod
    def of(a: AgentConfig) -> AgentConfigType:
        return AgentConfigType(
            id=a.id,
            agent_id=a.agent_id,
            name=a.name,
            role=a.role,
            normal_model=a.normal_model,
            heavy_model=a.heavy_model,
            max_model=a.max_model,
            updated_at=a.updated_at,
        )


@strawberry.type
class AgentImportResult:
    created: int
    updated: int
    deleted: int
    agents: list[AgentConfigType]


@strawberry.type(name="FallbackChain")
class FallbackChainType:
    primary_model: str
    chain: list[str] = strawberry.field(description="Tried in order when the primary fails.")
    updated_at: dt.datetime

    @staticmethod
    def of(c: FallbackChain) -> FallbackChainType:
        return FallbackChainType(
            primary_model=c.primary_model, chain=list(c.chain), updated_at=c.updated_at
        )


@strawberry.type(name="PriceOverride")
class PriceOverrideType:
    model: str = strawberry.field(description="'provider/model' or a bare model name.")
    input_per_mtok: Decimal = strawberry.field(description="USD per million input tokens.")
    output_per_mtok: Decimal
    cached_per_mtok: Decimal | None
    context_window: int | None
    updated_at: dt.datetime

    @staticmethod
    def of(p: ModelPrice) -> PriceOverrideType:
        return PriceOverrideType(
            model=p.model,
            input_per_mtok=p.input_per_mtok,
            output_per_mtok=p.output_per_mtok,
            cached_per_mtok=p.cached_per_mtok,
            context_window=p.context_window,
            updated_at=p.updated_at,
        )


@strawberry.type(name="CatalogModel")
class CatalogModelType:
    model: str
    provider: str
    context_window: int | None
    input_per_mtok: Decimal | None = strawberry.field(description="null: price unknown.")
    output_per_mtok: Decimal | None
    cached_per_mtok: Decimal | None
    reachable: bool
    source: str = strawberry.field(description="price-table | ollama | config")
    overridden: bool = strawberry.field(description="A price override applies.")


@strawberry.input
class CreateModelAliasInput:
    requested_model: str
    target_model: str
    organization_id: int | None = strawberry.field(
        default=UNSET, description="Omit or null for a global alias (super_admin only)."
    )


@strawberry.input
class UpdateModelAliasInput:
    requested_model: str | None = UNSET
    target_model: str | None = UNSET


@strawberry.input
class AgentConfigInput:
    agent_id: str
    name: str
    role: str = ""
    normal_model: str
    heavy_model: str | None = None
    max_model: str | None = None


@strawberry.input
class UpdateAgentConfigInput:
    agent_id: str | None = UNSET
    name: str | None = UNSET
    role: str | None = UNSET
    normal_model: str | None = UNSET
    heavy_model: str | None = UNSET
    max_model: str | None = UNSET


@strawberry.input
class PriceOverrideInput:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_per_mtok: Decimal | None = None
    context_window: int | None = None


@strawberry.type
class RoutingQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Aliases (org_admins see global ones and their organization's).",
    )
    async def model_aliases(
        self,
        info: Info,
        scope: str | None = None,
        organization_id: int | None = None,
        search: str | None = None,
    ) -> list[ModelAliasType]:
        rows = await svc.list_aliases(
            viewer(info), scope=scope, organization_id=organization_id, search=search
        )
        return [ModelAliasType.of(a) for a in rows]

    @strawberry.field(permission_classes=[IsAdmin])
    async def agent_configs(self, info: Info) -> list[AgentConfigType]:
        return [AgentConfigType.of(a) for a in await agent_svc.list_agents(viewer(info))]

    @strawberry.field(permission_classes=[IsAdmin])
    async def fallback_chains(self, info: Info) -> list[FallbackChainType]:
        return [FallbackChainType.of(c) for c in await svc.list_chains(viewer(info))]

    @strawberry.field(permission_classes=[IsAdmin])
    async def price_overrides(self, info: Info) -> list[PriceOverrideType]:
        return [PriceOverrideType.of(p) for p in await svc.list_prices(viewer(info))]

    @strawberry.field(
        permission_classes=[IsAdmin], description="Available models with their prices."
    )
    def model_catalog(self, info: Info) -> list[CatalogModelType]:
        items = svc.catalog(info.context.gateway, viewer(info))
        return [
            CatalogModelType(
                model=i.model,
                provider=i.provider,
                context_window=i.context_window,
                input_per_mtok=i.input_per_mtok,
                output_per_mtok=i.output_per_mtok,
                cached_per_mtok=i.cached_per_mtok,
                reachable=i.reachable,
                source=i.source,
                overridden=i.overridden,
            )
            for i in items
        ]


@strawberry.type
class RoutingMutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_model_alias(self, info: Info, input: CreateModelAliasInput) -> ModelAliasType:
        alias = await svc.create_alias(info.context.gateway, viewer(info), changes(input))
        return ModelAliasType.of(alias)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_model_alias(
        self, info: Info, id: int, input: UpdateModelAliasInput
    ) -> ModelAliasType:
        alias = await svc.update_alias(info.context.gateway, viewer(info), id, changes(input))
        return ModelAliasType.of(alias)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Returns the deleted id.")
    async def delete_model_alias(self, info: Info, id: int) -> int:
        return await svc.delete_alias(info.context.gateway, viewer(info), id)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def create_agent_config(self, info: Info, input: AgentConfigInput) -> AgentConfigType:
        agent = await agent_svc.create_agent(info.context.gateway, viewer(info), changes(input))
        return AgentConfigType.of(agent)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def update_agent_config(
        self, info: Info, id: int, input: UpdateAgentConfigInput
    ) -> AgentConfigType:
        agent = await agent_svc.update_agent(info.context.gateway, viewer(info), id, changes(input))
        return AgentConfigType.of(agent)

    @strawberry.mutation(permission_classes=[IsSuperAdmin], description="Returns the id.")
    async def delete_agent_config(self, info: Info, id: int) -> int:
        return await agent_svc.delete_agent(info.context.gateway, viewer(info), id)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description=(
            "Import a model_config.yaml: {agents: [{name, agent_id, role, models: {normal, "
            "heavy, max}}]} (or a top-level list of such entries). Agents are matched by "
            "agent_id (updated or created); `replace` also deletes agents missing from the file. "
            "The file is validated as a whole before anything is written."
        ),
    )
    async def import_agent_configs(
        self, info: Info, yaml: str, replace: bool = False
    ) -> AgentImportResult:
        res = await agent_svc.import_agent_configs(
            info.context.gateway, viewer(info), yaml, replace=replace
        )
        return AgentImportResult(
            created=res.created,
            updated=res.updated,
            deleted=res.deleted,
            agents=[AgentConfigType.of(a) for a in res.agents],
        )

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin], description="Create or replace a model's chain."
    )
    async def set_fallback_chain(
        self, info: Info, primary_model: str, chain: list[str]
    ) -> FallbackChainType:
        row = await svc.set_chain(info.context.gateway, viewer(info), primary_model, chain)
        return FallbackChainType.of(row)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def delete_fallback_chain(self, info: Info, primary_model: str) -> bool:
        return await svc.delete_chain(info.context.gateway, viewer(info), primary_model)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin], description="Create or replace a price override."
    )
    async def set_price_override(
        self, info: Info, model: str, input: PriceOverrideInput
    ) -> PriceOverrideType:
        row = await svc.set_price(info.context.gateway, viewer(info), model, changes(input))
        return PriceOverrideType.of(row)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def delete_price_override(self, info: Info, model: str) -> bool:
        return await svc.delete_price(info.context.gateway, viewer(info), model)
