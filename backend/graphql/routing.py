"""Model router: aliases, agent configurations, fallback chains, catalog and price overrides."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import agents as agent_svc
from backend.admin import routing as svc
from backend.data.models.routing import AgentConfig, FallbackChain, ModelAlias, ModelPrice
from backend.graphql.common import from_row, related, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import create, delete, listing, mutation, update
from backend.graphql.enums import AliasScope, CatalogSource, stored
from backend.graphql.permissions import IsAdmin, IsSuperAdmin
from backend.graphql.tenancy import OrganizationType


@strawberry.type(name="ModelAlias", description="A model name routed to another model.")
class ModelAliasType:
    id: int = strawberry.field(description="The alias's id.")
    requested_model: str = strawberry.field(description="The model name a request asks for.")
    target_model: str = strawberry.field(description="What the request is routed to.")
    organization_id: int | None = strawberry.field(
        description="The organization it applies to; null: global."
    )
    created_at: dt.datetime = strawberry.field(description="When the alias was created.")

    @strawberry.field(description="Where it applies (an organization's alias beats a global one).")
    def scope(self) -> AliasScope:
        return AliasScope.GLOBAL if self.organization_id is None else AliasScope.ORG

    @strawberry.field(description="The organization it applies to; null: global.")
    async def organization(self, info: Info) -> OrganizationType | None:
        return await related(info.context.loaders.org, self.organization_id, OrganizationType.of)

    @staticmethod
    def of(a: ModelAlias) -> ModelAliasType:
        return from_row(ModelAliasType, a)


_AGENT_ID = "Used in model names: 'agent/<agentId>' or 'agent/<agentId>:<tier>'."
_HEAVY = "Model of the heavy tier; null: the normal model."
_MAX = "Model of the max tier; null: the normal model."


@strawberry.type(name="AgentConfig", description="Which model an agent uses at each tier.")
class AgentConfigType:
    id: int = strawberry.field(description="The configuration's id.")
    agent_id: str = strawberry.field(description=_AGENT_ID)
    name: str = strawberry.field(description="Display name.")
    role: str = strawberry.field(description="What the agent does (free text).")
    normal_model: str = strawberry.field(description="Model of the normal tier (the default).")
    heavy_model: str | None = strawberry.field(description=_HEAVY)
    max_model: str | None = strawberry.field(description=_MAX)
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(a: AgentConfig) -> AgentConfigType:
        return from_row(AgentConfigType, a)


@strawberry.type(description="What an agent configuration import changed.")
class AgentImportResult:
    created: int = strawberry.field(description="Agents created.")
    updated: int = strawberry.field(description="Agents updated.")
    deleted: int = strawberry.field(description="Agents deleted (with `replace`).")
    agents: list[AgentConfigType] = strawberry.field(description="Every agent after the import.")


@strawberry.type(name="FallbackChain", description="The models tried when a model fails.")
class FallbackChainType:
    primary_model: str = strawberry.field(description="The model the chain backs up.")
    chain: list[str] = strawberry.field(description="Tried in order when the primary fails.")
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(c: FallbackChain) -> FallbackChainType:
        return from_row(FallbackChainType, c, chain=list(c.chain))


_IN = "USD per million input tokens."
_OUT = "USD per million output tokens."
_CACHED = "USD per million cached input tokens; null: the input price."
_WINDOW = "Context window in tokens; null: unknown."


@strawberry.type(name="PriceOverride", description="A model price set by an operator.")
class PriceOverrideType:
    model: str = strawberry.field(description="'provider/model' or a bare model name.")
    input_per_mtok: Decimal = strawberry.field(description=_IN)
    output_per_mtok: Decimal = strawberry.field(description=_OUT)
    cached_per_mtok: Decimal | None = strawberry.field(description=_CACHED)
    context_window: int | None = strawberry.field(description=_WINDOW)
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(p: ModelPrice) -> PriceOverrideType:
        return from_row(PriceOverrideType, p)


@strawberry.type(name="CatalogModel", description="A model requests may name, with its price.")
class CatalogModelType:
    model: str = strawberry.field(description="'provider/model'.")
    provider: str = strawberry.field(description="The provider serving it.")
    context_window: int | None = strawberry.field(description=_WINDOW)
    input_per_mtok: Decimal | None = strawberry.field(
        description="USD per million input tokens; null: price unknown."
    )
    output_per_mtok: Decimal | None = strawberry.field(
        description="USD per million output tokens; null: price unknown."
    )
    cached_per_mtok: Decimal | None = strawberry.field(
        description="USD per million cached input tokens; null: unknown or not discounted."
    )
    reachable: bool = strawberry.field(
        description="Its provider is configured and no open circuit blocks it."
    )
    source: CatalogSource = strawberry.field(description="Why the model is listed.")
    overridden: bool = strawberry.field(description="A price override applies.")


@strawberry.input(description="A new model alias.")
class CreateModelAliasInput:
    requested_model: str = strawberry.field(description="The model name a request asks for.")
    target_model: str = strawberry.field(description="What the request is routed to.")
    organization_id: int | None = strawberry.field(
        default=UNSET, description="Omit or null for a global alias (super_admin only)."
    )
    confirm_unknown_target: bool = strawberry.field(
        default=False,
        description=(
            "Save a target the model catalog does not know (a typo would break the name for "
            "everyone it applies to: without this, such a target is refused with "
            "BAD_USER_INPUT naming it and extensions.unknownModels)."
        ),
    )


@strawberry.input(description="Changes to a model alias: only the fields sent change.")
class UpdateModelAliasInput:
    requested_model: str | None = strawberry.field(
        default=UNSET, description="The model name a request asks for."
    )
    target_model: str | None = strawberry.field(
        default=UNSET, description="What the request is routed to."
    )
    confirm_unknown_target: bool = strawberry.field(
        default=False,
        description=(
            "Save a target the model catalog does not know (a typo would break the name for "
            "everyone it applies to: without this, such a target is refused with "
            "BAD_USER_INPUT naming it and extensions.unknownModels)."
        ),
    )


@strawberry.input(description="A new agent configuration.")
class AgentConfigInput:
    agent_id: str = strawberry.field(description=_AGENT_ID)
    name: str = strawberry.field(description="Display name.")
    role: str = strawberry.field(default="", description="What the agent does (free text).")
    normal_model: str = strawberry.field(description="Model of the normal tier (the default).")
    heavy_model: str | None = strawberry.field(default=None, description=_HEAVY)
    max_model: str | None = strawberry.field(default=None, description=_MAX)


@strawberry.input(description="Changes to an agent configuration: only the fields sent change.")
class UpdateAgentConfigInput:
    agent_id: str | None = strawberry.field(default=UNSET, description=_AGENT_ID)
    name: str | None = strawberry.field(default=UNSET, description="Display name.")
    role: str | None = strawberry.field(default=UNSET, description="What the agent does.")
    normal_model: str | None = strawberry.field(
        default=UNSET, description="Model of the normal tier (the default)."
    )
    heavy_model: str | None = strawberry.field(default=UNSET, description=_HEAVY)
    max_model: str | None = strawberry.field(default=UNSET, description=_MAX)


@strawberry.input(description="A model's price.")
class PriceOverrideInput:
    input_per_mtok: Decimal = strawberry.field(description=_IN)
    output_per_mtok: Decimal = strawberry.field(description=_OUT)
    cached_per_mtok: Decimal | None = strawberry.field(default=None, description=_CACHED)
    context_window: int | None = strawberry.field(default=None, description=_WINDOW)


_AliasId = Annotated[int, strawberry.argument(description="The alias's id.")]
_AgentPk = Annotated[int, strawberry.argument(description="The configuration's id.")]
_Primary = Annotated[str, strawberry.argument(description="The model the chain backs up.")]
_Model = Annotated[str, strawberry.argument(description="'provider/model' or a bare model name.")]
_NewAlias = Annotated[CreateModelAliasInput, strawberry.argument(description="The alias.")]
_NewAgent = Annotated[AgentConfigInput, strawberry.argument(description="The agent.")]


@strawberry.type
class RoutingQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Aliases (org_admins see global ones and their organization's).",
    )
    async def model_aliases(
        self,
        info: Info,
        scope: Annotated[
            AliasScope | None, strawberry.argument(description="Only this scope.")
        ] = None,
        organization_id: Annotated[
            int | None, strawberry.argument(description="Only this organization's aliases.")
        ] = None,
        search: Annotated[
            str | None, strawberry.argument(description="In the requested model name.")
        ] = None,
    ) -> list[ModelAliasType]:
        rows = await svc.list_aliases(
            viewer(info), scope=stored(scope), organization_id=organization_id, search=search
        )
        return [ModelAliasType.of(a) for a in rows]

    agent_configs = listing(
        agent_svc.list_agents, AgentConfigType, IsAdmin, "Agent configurations."
    )
    fallback_chains = listing(svc.list_chains, FallbackChainType, IsAdmin, "Fallback chains.")
    price_overrides = listing(svc.list_prices, PriceOverrideType, IsAdmin, "Price overrides.")

    @strawberry.field(
        permission_classes=[IsAdmin], description="Available models with their prices."
    )
    def model_catalog(self, info: Info) -> list[CatalogModelType]:
        items = svc.catalog(info.context.gateway, viewer(info))
        return [from_row(CatalogModelType, i, source=CatalogSource(i.source)) for i in items]


@strawberry.type
class RoutingMutation:
    create_model_alias = create(
        svc.create_alias, ModelAliasType, IsAdmin, "Create a model alias.", _NewAlias
    )
    update_model_alias = update(
        svc.update_alias,
        ModelAliasType,
        IsAdmin,
        "Change a model alias.",
        _AliasId,
        UpdateModelAliasInput,
    )
    delete_model_alias = delete(svc.delete_alias, IsAdmin, _AliasId)
    create_agent_config = create(
        agent_svc.create_agent,
        AgentConfigType,
        IsSuperAdmin,
        "Create an agent configuration.",
        _NewAgent,
    )
    update_agent_config = update(
        agent_svc.update_agent,
        AgentConfigType,
        IsSuperAdmin,
        "Change an agent configuration.",
        _AgentPk,
        UpdateAgentConfigInput,
    )
    delete_agent_config = delete(
        agent_svc.delete_agent, IsSuperAdmin, _AgentPk, description="Returns the id."
    )

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
        self,
        info: Info,
        yaml: Annotated[str, strawberry.argument(description="The file's text.")],
        replace: Annotated[
            bool, strawberry.argument(description="Also delete agents missing from the file.")
        ] = False,
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
        self,
        info: Info,
        primary_model: _Primary,
        chain: Annotated[
            list[str], strawberry.argument(description="Models tried in order after the primary.")
        ],
        confirm_unknown_target: Annotated[
            bool,
            strawberry.argument(
                description=(
                    "Save models the catalog does not know; without it they are refused "
                    "(BAD_USER_INPUT naming them, extensions.unknownModels)."
                )
            ),
        ] = False,
    ) -> FallbackChainType:
        return await run(
            info,
            svc.set_chain,
            primary_model,
            chain,
            convert=FallbackChainType.of,
            confirm_unknown=confirm_unknown_target,
        )

    delete_fallback_chain = mutation(
        svc.delete_chain,
        bool,
        IsSuperAdmin,
        "Remove a model's chain (true; an error if it has none).",
        primary_model=_Primary,
    )
    set_price_override = mutation(
        svc.set_price,
        PriceOverrideType,
        IsSuperAdmin,
        "Create or replace a price override.",
        convert=PriceOverrideType.of,
        model=_Model,
        input=Annotated[PriceOverrideInput, strawberry.argument(description="The price.")],
    )
    delete_price_override = mutation(
        svc.delete_price,
        bool,
        IsSuperAdmin,
        "Remove a price override (true; an error if there is none).",
        model=_Model,
    )
