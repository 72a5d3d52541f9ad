"""Gateway settings (routing strategy, Ollama, offered features) and users' feature opt-ins."""

from __future__ import annotations

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import settings as svc
from backend.admin.errors import InvalidInput
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin, IsAuthenticated, IsSuperAdmin


@strawberry.type
class OllamaConnection:
    base_url: str | None = strawberry.field(description="null: Ollama is not connected.")
    connected: bool


@strawberry.type(name="GatewaySettings")
class GatewaySettingsType:
    routing_strategy: str = strawberry.field(
        description="ordered | cheapest | fastest | least-busy | round-robin"
    )
    routing_strategies: list[str]
    ollama: OllamaConnection
    offered_features: list[str] = strawberry.field(description="Features users may opt into.")
    known_features: list[str]
    response_cache_ttl_seconds: int


@strawberry.type(name="FeatureOptIn")
class FeatureOptInType:
    name: str
    description: str
    offered: bool = strawberry.field(description="The gateway offers it (users may opt in).")
    enabled: bool = strawberry.field(description="This user opted in (and it is offered).")


def _settings(info: Info) -> GatewaySettingsType:
    s = info.context.gateway.store.settings
    return GatewaySettingsType(
        routing_strategy=s.routing_strategy,
        routing_strategies=list(svc.ROUTING_STRATEGIES),
        ollama=OllamaConnection(base_url=s.ollama_base_url, connected=bool(s.ollama_base_url)),
        offered_features=sorted(s.offered_features),
        known_features=list(svc.KNOWN_FEATURES),
        response_cache_ttl_seconds=s.response_cache_ttl_s,
    )


def _opt_ins(rows: list[svc.FeatureOptIn]) -> list[FeatureOptInType]:
    return [
        FeatureOptInType(
            name=r.name, description=r.description, offered=r.offered, enabled=r.enabled
        )
        for r in rows
    ]


@strawberry.type
class SettingsQuery:
    @strawberry.field(permission_classes=[IsAdmin])
    def gateway_settings(self, info: Info) -> GatewaySettingsType:
        return _settings(info)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Feature opt-ins of a user (default: yourself).",
    )
    async def user_features(self, info: Info, user_id: int | None = None) -> list[FeatureOptInType]:
        me = viewer(info)
        rows = await svc.user_features(info.context.gateway, me, user_id or me.id)
        return _opt_ins(rows)


@strawberry.type
class SettingsMutation:
    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="How fallback models are ordered; applies to the next request.",
    )
    async def set_routing_strategy(self, info: Info, strategy: str) -> GatewaySettingsType:
        await svc.set_routing_strategy(info.context.gateway, viewer(info), strategy)
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description=(
            "Connect an Ollama instance (models are then 'ollama/<name>'); null disconnects."
        ),
    )
    async def set_ollama_connection(
        self, info: Info, base_url: str | None = UNSET
    ) -> GatewaySettingsType:
        # Omitted is not null: disconnecting must be asked for (``baseUrl: null``).
        if base_url is UNSET:
            raise InvalidInput("baseUrl is required (null disconnects Ollama)", field="baseUrl")
        await svc.set_ollama_base_url(info.context.gateway, viewer(info), base_url)
        return _settings(info)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def set_offered_features(self, info: Info, features: list[str]) -> GatewaySettingsType:
        await svc.set_offered_features(info.context.gateway, viewer(info), features)
        return _settings(info)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def set_response_cache_ttl(self, info: Info, seconds: int) -> GatewaySettingsType:
        await svc.set_response_cache_ttl(info.context.gateway, viewer(info), seconds)
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Opt a user (default: yourself) in or out of an offered feature.",
    )
    async def set_feature_opt_in(
        self, info: Info, feature: str, enabled: bool, user_id: int | None = None
    ) -> list[FeatureOptInType]:
        me = viewer(info)
        rows = await svc.set_user_feature(
            info.context.gateway, me, user_id or me.id, feature, enabled
        )
        return _opt_ins(rows)
