"""Gateway settings (routing strategy, Ollama, offered features) and users' feature opt-ins."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import settings as svc
from backend.admin.errors import InvalidInput
from backend.graphql.context import Info, viewer
from backend.graphql.enums import Feature, RoutingStrategy, known, plain
from backend.graphql.permissions import IsAdmin, IsAuthenticated, IsSuperAdmin


@strawberry.type(description="The gateway's Ollama instance.")
class OllamaConnection:
    base_url: str | None = strawberry.field(description="null: Ollama is not connected.")
    connected: bool = strawberry.field(
        description="Ollama is configured (by this setting, OLLAMA_BASE_URL or a credential)."
    )
    configured_by: str | None = strawberry.field(
        description=(
            "'setting' (setOllamaConnection), 'provider' (OLLAMA_BASE_URL or an ollama provider "
            "credential: the setting then shows it without owning it); null: not configured."
        )
    )
    healthy: bool | None = strawberry.field(
        description="Its last model discovery answered; null: not checked yet or not configured."
    )
    last_error: str | None = strawberry.field(description="Why the last discovery failed.")


def _ollama(info: Info) -> OllamaConnection:
    """Configured by the setting, or else by the environment/credential the registry read."""
    gw = info.context.gateway
    url = gw.store.settings.ollama_base_url
    by = "setting" if url else None
    if not url and gw.providers is not None:
        config = gw.providers.configured().get("ollama")
        url, by = (config.base_url, "provider") if config is not None else (None, None)
    status = gw.router.ollama_status() if url and hasattr(gw.router, "ollama_status") else {}
    return OllamaConnection(
        base_url=url,
        connected=bool(url),
        configured_by=by,
        healthy=status.get("healthy"),
        last_error=status.get("error"),
    )


@strawberry.type(name="GatewaySettings", description="Gateway-wide settings (super_admin).")
class GatewaySettingsType:
    routing_strategy: RoutingStrategy = strawberry.field(
        description="How fallback models are ordered now."
    )
    routing_strategies: list[RoutingStrategy] = strawberry.field(
        description="Every strategy the gateway offers."
    )
    ollama: OllamaConnection = strawberry.field(description="The Ollama connection.")
    offered_features: list[Feature] = strawberry.field(description="Features users may opt into.")
    known_features: list[Feature] = strawberry.field(
        description="Every feature the gateway could offer."
    )
    response_cache_ttl_seconds: int = strawberry.field(
        description="How long the response cache keeps an answer, in seconds."
    )


@strawberry.type(name="FeatureOptIn", description="A feature and whether a user opted in.")
class FeatureOptInType:
    name: Feature = strawberry.field(description="The feature.")
    description: str = strawberry.field(description="What the feature does.")
    offered: bool = strawberry.field(description="The gateway offers it (users may opt in).")
    enabled: bool = strawberry.field(description="This user opted in (and it is offered).")


def _settings(info: Info) -> GatewaySettingsType:
    s = info.context.gateway.store.settings
    return GatewaySettingsType(
        routing_strategy=RoutingStrategy(s.routing_strategy),
        routing_strategies=known(RoutingStrategy, svc.ROUTING_STRATEGIES),
        ollama=_ollama(info),
        offered_features=known(Feature, sorted(s.offered_features)),
        known_features=known(Feature, svc.KNOWN_FEATURES),
        response_cache_ttl_seconds=s.response_cache_ttl_s,
    )


def _opt_ins(rows: list[svc.FeatureOptIn]) -> list[FeatureOptInType]:
    return [
        FeatureOptInType(
            name=Feature(r.name), description=r.description, offered=r.offered, enabled=r.enabled
        )
        for r in rows
    ]


_UserId = Annotated[
    int | None, strawberry.argument(description="The user (others: admins); null: yourself.")
]


@strawberry.type
class SettingsQuery:
    @strawberry.field(
        permission_classes=[IsAdmin], description="Gateway-wide settings (changes: super_admin)."
    )
    def gateway_settings(self, info: Info) -> GatewaySettingsType:
        return _settings(info)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Feature opt-ins of a user (default: yourself).",
    )
    async def user_features(self, info: Info, user_id: _UserId = None) -> list[FeatureOptInType]:
        me = viewer(info)
        rows = await svc.user_features(info.context.gateway, me, user_id or me.id)
        return _opt_ins(rows)


@strawberry.type
class SettingsMutation:
    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="How fallback models are ordered; applies to the next request.",
    )
    async def set_routing_strategy(
        self,
        info: Info,
        strategy: Annotated[RoutingStrategy, strawberry.argument(description="The strategy.")],
    ) -> GatewaySettingsType:
        await svc.set_routing_strategy(info.context.gateway, viewer(info), plain(strategy))
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description=(
            "Connect an Ollama instance (models are then 'ollama/<name>'); null disconnects."
        ),
    )
    async def set_ollama_connection(
        self,
        info: Info,
        base_url: Annotated[
            str | None,
            strawberry.argument(description="e.g. http://127.0.0.1:11434; null disconnects."),
        ] = UNSET,
    ) -> GatewaySettingsType:
        # Omitted is not null: disconnecting must be asked for (``baseUrl: null``).
        if base_url is UNSET:
            raise InvalidInput("baseUrl is required (null disconnects Ollama)", field="baseUrl")
        await svc.set_ollama_base_url(info.context.gateway, viewer(info), base_url)
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="The features users may opt into (the others are off for everyone).",
    )
    async def set_offered_features(
        self,
        info: Info,
        features: Annotated[list[Feature], strawberry.argument(description="Offered features.")],
    ) -> GatewaySettingsType:
        await svc.set_offered_features(info.context.gateway, viewer(info), plain(features))
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="How long the response cache keeps an answer.",
    )
    async def set_response_cache_ttl(
        self,
        info: Info,
        seconds: Annotated[
            int, strawberry.argument(description="Seconds, from 1 to 604800 (7 days).")
        ],
    ) -> GatewaySettingsType:
        await svc.set_response_cache_ttl(info.context.gateway, viewer(info), seconds)
        return _settings(info)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Opt a user (default: yourself) in or out of an offered feature.",
    )
    async def set_feature_opt_in(
        self,
        info: Info,
        feature: Annotated[Feature, strawberry.argument(description="An offered feature.")],
        enabled: Annotated[bool, strawberry.argument(description="true: in; false: out.")],
        user_id: _UserId = None,
    ) -> list[FeatureOptInType]:
        me = viewer(info)
        rows = await svc.set_user_feature(
            info.context.gateway, me, user_id or me.id, plain(feature), enabled
        )
        return _opt_ins(rows)
