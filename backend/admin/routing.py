"""Model aliases (global or per organization), fallback chains and price overrides.

Agent configurations live in ``backend.admin.agents``. Every mutation reloads ``routing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import (
    Actor,
    org_scope,
    require_admin,
    require_org,
    require_super,
)
from backend.admin.errors import InvalidInput, NotFound
from backend.admin.lookup import found, not_found
from backend.data.models.routing import FallbackChain, ModelAlias, ModelPrice
from backend.data.models.tenancy import Organization
from backend.gateway import Gateway
from backend.ir.errors import GatewayError
from backend.routing.refs import parse_model_ref

MAX_CHAIN = 10
#: The flag that saves an alias or chain naming a model the catalog does not know.
CONFIRM_FLAG = "confirmUnknownTarget"


class UnknownTarget(InvalidInput):
    """A target the catalog does not know, sent without the confirmation flag."""

    def __init__(self, names: list[str], field: str) -> None:
        listed = ", ".join(repr(n) for n in names)
        super().__init__(
            f"{listed} {'is' if len(names) == 1 else 'are'} not in the model catalog (no "
            "configured provider lists it, no price override or alias names it): check the "
            f"spelling, or send {CONFIRM_FLAG}: true to save it anyway",
            field=field,
        )
        self.names = names

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "unknownModels": self.names}


def unknown_targets(gw: Gateway, names: Sequence[str]) -> list[str]:
    """The ``names`` the catalog does not know: not listed by a configured provider's price
    table or Ollama, not a price override, not an alias (chains of aliases are fine), not an
    agent. Without a router (nothing to check against) every name passes."""
    router = gw.router
    if router is None or not hasattr(router, "catalog"):
        return []
    configured = gw.providers.configured() if gw.providers is not None else {}
    known = {e.model for e in router.catalog(configured) if e.source != "config"}
    routing = gw.store.routing
    known.update(routing.prices)
    known.update(routing.global_aliases)
    for org_aliases in routing.org_aliases.values():
        known.update(org_aliases)
    out = []
    for name in names:
        if name in known or name.startswith("agent/"):
            continue
        try:
            ref = parse_model_ref(name, providers=router.known_providers())
        except GatewayError:  # no provider would take it: unknown
            out.append(name)
            continue
        if ref.key not in known and ref.model not in known:
            out.append(name)
    return out


def _check_known(gw: Gateway, names: Sequence[str], field: str, confirmed: bool) -> None:
    if confirmed:
        return
    unknown = unknown_targets(gw, names)
    if unknown:
        raise UnknownTarget(unknown, field)


# -- aliases -----------------------------------------------------------------------------------


async def list_aliases(
    actor: Actor,
    *,
    scope: str | None = None,
    organization_id: int | None = None,
    search: str | None = None,
) -> list[ModelAlias]:
    """Global aliases and organizations' aliases; an org_admin sees global ones and their own."""
    own = org_scope(actor, "list model aliases")
    qs: QuerySet[ModelAlias] = ModelAlias.all()
    if scope is not None:
        v.choice(scope, "scope", ("global", "org"))
        qs = qs.filter(organization_id__isnull=scope == "global")
    if own is not None:
        qs = qs.filter(Q(organization_id__isnull=True) | Q(organization_id=own))
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    if search:
        qs = qs.filter(requested_model__icontains=search)
    return await qs.order_by("requested_model", "id")


async def _check_alias_write(actor: Actor, org_id: int | None) -> None:
    if org_id is None:
        require_super(actor, "change global model aliases")
    else:
        require_org(actor, org_id, "change model aliases")
        if not await Organization.exists(id=org_id):
            raise InvalidInput(f"organization {org_id} does not exist", field="organizationId")


async def _unique_alias(requested: str, org_id: int | None, exclude_id: int | None) -> None:
    qs = ModelAlias.filter(requested_model=requested)
    qs = (
        qs.filter(organization_id__isnull=True)
        if org_id is None
        else qs.filter(organization_id=org_id)
    )
    if exclude_id is not None:
        qs = qs.exclude(id=exclude_id)
    if await qs.exists():
        where = "globally" if org_id is None else "for this organization"
        raise InvalidInput(f"{requested!r} already has an alias {where}", field="requestedModel")


async def create_alias(gw: Gateway, actor: Actor, data: dict[str, Any]) -> ModelAlias:
    org_id = data.get("organization_id")
    await _check_alias_write(actor, org_id)
    requested = v.model_name(data.get("requested_model"), "requestedModel")
    target = v.model_name(data.get("target_model"), "targetModel")
    if requested == target:
        raise InvalidInput("an alias must route to a different model", field="targetModel")
    await _unique_alias(requested, org_id, None)
    _check_known(gw, [target], "targetModel", bool(data.pop("confirm_unknown_target", False)))
    alias = await ModelAlias.create(
        requested_model=requested, target_model=target, organization_id=org_id
    )
    await audit.record(actor, "alias.create", f"alias:{alias.id}", fields=sorted(data))
    await gw.config_changed("routing")
    return alias


async def get_alias(actor: Actor, alias_id: int) -> ModelAlias:
    alias = await found(ModelAlias, alias_id, "model alias")
    own = org_scope(actor, "view model aliases")
    if own is not None and alias.organization_id not in (None, own):  # type: ignore[attr-defined]
        raise not_found("model alias", alias_id)
    return alias


async def update_alias(
    gw: Gateway, actor: Actor, alias_id: int, changes: dict[str, Any]
) -> ModelAlias:
    alias = await get_alias(actor, alias_id)
    org_id = alias.organization_id  # type: ignore[attr-defined]
    await _check_alias_write(actor, org_id)
    if "requested_model" in changes:
        alias.requested_model = v.model_name(changes["requested_model"], "requestedModel")
    confirmed = bool(changes.pop("confirm_unknown_target", False))
    if "target_model" in changes:
        alias.target_model = v.model_name(changes["target_model"], "targetModel")
        _check_known(gw, [alias.target_model], "targetModel", confirmed)
    if alias.requested_model == alias.target_model:
        raise InvalidInput("an alias must route to a different model", field="targetModel")
    await _unique_alias(alias.requested_model, org_id, alias.id)
    await alias.save()
    await audit.record(actor, "alias.update", f"alias:{alias.id}", fields=sorted(changes))
    await gw.config_changed("routing")
    return alias


async def delete_alias(gw: Gateway, actor: Actor, alias_id: int) -> int:
    alias = await get_alias(actor, alias_id)
    await _check_alias_write(actor, alias.organization_id)  # type: ignore[attr-defined]
    await alias.delete()
    await audit.record(actor, "alias.delete", f"alias:{alias_id}")
    await gw.config_changed("routing")
    return alias_id


# -- fallback chains ---------------------------------------------------------------------------


def _chain(primary: str, chain: Sequence[Any]) -> list[str]:
    if not isinstance(chain, (list, tuple)) or not chain:
        raise InvalidInput("chain must list at least one fallback model", field="chain")
    if len(chain) > MAX_CHAIN:
        raise InvalidInput(f"chain may hold at most {MAX_CHAIN} models", field="chain")
    out = [v.model_name(m, "chain") for m in chain]
    if primary in out:
        raise InvalidInput("a model cannot be its own fallback", field="chain")
    if len(set(out)) != len(out):
        raise InvalidInput("chain lists a model twice", field="chain")
    return out


async def list_chains(actor: Actor) -> list[FallbackChain]:
    require_admin(actor, "view fallback chains")
    return await FallbackChain.all().order_by("primary_model")


async def set_chain(
    gw: Gateway,
    actor: Actor,
    primary_model: str,
    chain: Sequence[Any],
    *,
    confirm_unknown: bool = False,
) -> FallbackChain:
    require_super(actor, "change fallback chains")
    primary = v.model_name(primary_model, "primaryModel")
    models = _chain(primary, chain)
    _check_known(gw, models, "chain", confirm_unknown)
    row, _ = await FallbackChain.update_or_create(primary_model=primary, defaults={"chain": models})
    await audit.record(actor, "fallback.set", f"fallback:{primary}")
    await gw.config_changed("routing")
    return row


async def delete_chain(gw: Gateway, actor: Actor, primary_model: str) -> bool:
    require_super(actor, "change fallback chains")
    deleted = await FallbackChain.filter(primary_model=primary_model).delete()
    if not deleted:
        raise NotFound(f"no fallback chain for {primary_model!r}")
    await audit.record(actor, "fallback.delete", f"fallback:{primary_model}")
    await gw.config_changed("routing")
    return True


# -- prices ------------------------------------------------------------------------------------


async def list_prices(actor: Actor) -> list[ModelPrice]:
    require_admin(actor, "view price overrides")
    return await ModelPrice.all().order_by("model")


async def set_price(gw: Gateway, actor: Actor, model: str, data: dict[str, Any]) -> ModelPrice:
    require_super(actor, "change model prices")
    name = v.model_name(model, "model")
    inp = v.money(data.get("input_per_mtok"), "inputPerMtok")
    out = v.money(data.get("output_per_mtok"), "outputPerMtok")
    if inp is None:
        raise InvalidInput("inputPerMtok is required", field="inputPerMtok")
    if out is None:
        raise InvalidInput("outputPerMtok is required", field="outputPerMtok")
    defaults: dict[str, Any] = {
        "input_per_mtok": inp,
        "output_per_mtok": out,
        "cached_per_mtok": v.money(data.get("cached_per_mtok"), "cachedPerMtok"),
        "context_window": v.int_range(data.get("context_window"), "contextWindow", 1, 100_000_000),
    }
    row, _ = await ModelPrice.update_or_create(model=name, defaults=defaults)
    await audit.record(actor, "price.set", f"price:{name}", fields=sorted(data))
    await gw.config_changed("routing")
    return row


async def delete_price(gw: Gateway, actor: Actor, model: str) -> bool:
    require_super(actor, "change model prices")
    if not await ModelPrice.filter(model=model).delete():
        raise NotFound(f"no price override for {model!r}")
    await audit.record(actor, "price.delete", f"price:{model}")
    await gw.config_changed("routing")
    return True


# -- catalog -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogItem:
    model: str
    provider: str
    context_window: int | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_per_mtok: Decimal | None
    reachable: bool
    source: str
    overridden: bool


def _foreign_targets(routing: Any, own: int) -> set[str]:
    """Models that only other organizations' aliases name (what they route to is theirs)."""
    mine = set(routing.global_aliases.values()) | set(routing.org_aliases.get(own, {}).values())
    for primary, chain in routing.chains.items():
        mine.update((primary, *chain))
    for agent in routing.agents.values():
        mine.update(m for m in (agent.normal_model, agent.heavy_model, agent.max_model) if m)
    theirs = {
        target
        for org_id, aliases in routing.org_aliases.items()
        if org_id != own
        for target in aliases.values()
    }
    return theirs - mine


def catalog(gw: Gateway, actor: Actor) -> list[CatalogItem]:
    """The router's model catalog ("Available Models"), or [] before a router is wired in."""
    own = org_scope(actor, "view the model catalog")
    router = gw.router
    if router is None or not hasattr(router, "catalog"):
        return []
    configured = gw.providers.configured() if gw.providers is not None else {}
    overrides = gw.store.routing.prices
    foreign = set() if own is None else _foreign_targets(gw.store.routing, own)
    out = []
    for e in router.catalog(configured):
        name = getattr(e, "model", "")
        if getattr(e, "source", "") == "config" and (
            name in foreign or name.split("/", 1)[-1] in foreign
        ):
            continue  # listed only because another organization's alias names it
        out.append(
            CatalogItem(
                model=name,
                provider=getattr(e, "provider", ""),
                context_window=getattr(e, "context_window", None),
                input_per_mtok=getattr(e, "input_per_mtok", None),
                output_per_mtok=getattr(e, "output_per_mtok", None),
                cached_per_mtok=getattr(e, "cached_per_mtok", None),
                reachable=bool(getattr(e, "reachable", True)),
                source=str(getattr(e, "source", "")),
                overridden=name in overrides or name.split("/", 1)[-1] in overrides,
            )
        )
    return out
