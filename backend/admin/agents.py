"""Agent configurations: which model each agent uses at its normal, heavy and max tier.

``import_agent_configs`` reads a ``model_config.yaml``::

    agents:
      - name: Planner
        agent_id: planner
        role: Breaks work into steps
        models:
          normal: openai/gpt-4o-mini
          heavy: anthropic/claude-sonnet-4-5
          max: anthropic/claude-opus-4-1

A top-level list of the same entries is accepted too. ``models.normal`` is required; ``heavy``
and ``max`` are optional (a tier without a model falls back to the normal one). Entries are
matched by ``agent_id``: existing agents are updated, new ones created; with ``replace`` the
agents missing from the file are deleted. The whole file is validated before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from tortoise.transactions import in_transaction

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, require_admin, require_super
from backend.admin.errors import InvalidInput
from backend.admin.lookup import found
from backend.data.models.routing import AgentConfig
from backend.gateway import Gateway

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_YAML_BYTES = 1_000_000
MAX_AGENTS = 1000


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    deleted: int
    agents: list[AgentConfig]


def _agent_id(value: Any, field: str) -> str:
    out = v.text(value, field, max_len=100)
    if not AGENT_ID_RE.match(out):
        raise InvalidInput(
            f"{field} must be letters, digits and . _ : - (starting with a letter or digit)",
            field=field,
        )
    return out


def _fields(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    heavy, top = data.get("heavy_model"), data.get("max_model")
    return {
        "name": v.text(data.get("name"), f"{prefix}name"),
        "role": v.text(data.get("role"), f"{prefix}role", required=False),
        "normal_model": v.model_name(data.get("normal_model"), f"{prefix}normalModel"),
        "heavy_model": None if heavy in (None, "") else v.model_name(heavy, f"{prefix}heavyModel"),
        "max_model": None if top in (None, "") else v.model_name(top, f"{prefix}maxModel"),
    }


async def list_agents(actor: Actor) -> list[AgentConfig]:
    require_admin(actor, "view agent configurations")
    return await AgentConfig.all().order_by("name", "id")


async def create_agent(gw: Gateway, actor: Actor, data: dict[str, Any]) -> AgentConfig:
    require_super(actor, "change agent configurations")
    agent_id = _agent_id(data.get("agent_id"), "agentId")
    fields = _fields(data)
    if await AgentConfig.exists(agent_id=agent_id):
        raise InvalidInput(f"agent {agent_id!r} already exists", field="agentId")
    agent = await AgentConfig.create(agent_id=agent_id, **fields)
    await audit.record(actor, "agent.create", f"agent:{agent_id}", fields=sorted(data))
    await gw.config_changed("routing")
    return agent


async def update_agent(
    gw: Gateway, actor: Actor, agent_pk: int, changes: dict[str, Any]
) -> AgentConfig:
    require_super(actor, "change agent configurations")
    agent = await found(AgentConfig, agent_pk, "agent configuration")
    merged = {
        "name": agent.name,
        "role": agent.role,
        "normal_model": agent.normal_model,
        "heavy_model": agent.heavy_model,
        "max_model": agent.max_model,
        **{k: val for k, val in changes.items() if k != "agent_id"},
    }
    if "agent_id" in changes:
        new_id = _agent_id(changes["agent_id"], "agentId")
        if new_id != agent.agent_id and await AgentConfig.exists(agent_id=new_id):
            raise InvalidInput(f"agent {new_id!r} already exists", field="agentId")
        agent.agent_id = new_id
    for key, val in _fields(merged).items():
        setattr(agent, key, val)
    await agent.save()
    await audit.record(actor, "agent.update", f"agent:{agent.agent_id}", fields=sorted(changes))
    await gw.config_changed("routing")
    return agent


async def delete_agent(gw: Gateway, actor: Actor, agent_pk: int) -> int:
    require_super(actor, "change agent configurations")
    agent = await found(AgentConfig, agent_pk, "agent configuration")
    await agent.delete()
    await audit.record(actor, "agent.delete", f"agent:{agent.agent_id}")
    await gw.config_changed("routing")
    return agent_pk


def parse_agent_yaml(text: str) -> list[dict[str, Any]]:
    """Validate a ``model_config.yaml`` into agent rows (see the module docstring)."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise InvalidInput("the file is larger than 1 MB", field="yaml")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"not valid YAML: {exc}", field="yaml") from None
    entries = doc.get("agents") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("expected a non-empty 'agents' list", field="yaml")
    if len(entries) > MAX_AGENTS:
        raise InvalidInput(f"at most {MAX_AGENTS} agents per file", field="yaml")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"agents[{i}]."
        if not isinstance(entry, dict):
            raise InvalidInput(f"agents[{i}] must be a mapping", field=f"agents[{i}]")
        models = entry.get("models") or {}
        if not isinstance(models, dict):
            raise InvalidInput(f"{where}models must be a mapping", field=f"{where}models")
        agent_id = _agent_id(entry.get("agent_id"), f"{where}agent_id")
        if agent_id in seen:
            raise InvalidInput(f"agent {agent_id!r} is listed twice", field=f"{where}agent_id")
        seen.add(agent_id)
        row = _fields(
            {
                "name": entry.get("name"),
                "role": entry.get("role") or "",
                "normal_model": models.get("normal"),
                "heavy_model": models.get("heavy"),
                "max_model": models.get("max"),
            },
            prefix=where,
        )
        rows.append({"agent_id": agent_id, **row})
    return rows


async def import_agent_configs(
    gw: Gateway, actor: Actor, text: str, *, replace: bool = False
) -> ImportResult:
    require_super(actor, "import agent configurations")
    rows = parse_agent_yaml(text)
    created = updated = deleted = 0
    async with in_transaction():
        existing = {a.agent_id: a for a in await AgentConfig.all()}
        for row in rows:
            agent = existing.get(row["agent_id"])
            if agent is None:
                await AgentConfig.create(**row)
                created += 1
            else:
                for key, val in row.items():
                    setattr(agent, key, val)
                await agent.save()
                updated += 1
        if replace:
            stale = set(existing) - {r["agent_id"] for r in rows}
            if stale:
                deleted = await AgentConfig.filter(agent_id__in=stale).delete()
    await audit.record(
        actor, "agent.import", "agents", created=created, updated=updated, deleted=deleted
    )
    await gw.config_changed("routing")
    agents = await AgentConfig.filter(agent_id__in=[r["agent_id"] for r in rows]).order_by("name")
    return ImportResult(created, updated, deleted, agents)
