"""Parsing model_config.yaml (pure)."""

from __future__ import annotations

import pytest

from backend.admin.agents import parse_agent_yaml
from backend.admin.errors import InvalidInput


def test_documented_format() -> None:
    rows = parse_agent_yaml(
        """
agents:
  - name: Planner
    agent_id: planner
    role: plans
    models: {normal: openai/gpt-4o-mini, heavy: openai/gpt-4o, max: openai/o3}
"""
    )
    assert rows == [
        {
            "agent_id": "planner",
            "name": "Planner",
            "role": "plans",
            "normal_model": "openai/gpt-4o-mini",
            "heavy_model": "openai/gpt-4o",
            "max_model": "openai/o3",
        }
    ]


def test_top_level_list_and_optional_tiers() -> None:
    rows = parse_agent_yaml("- {name: A, agent_id: a, models: {normal: m}}")
    assert rows[0]["heavy_model"] is None and rows[0]["max_model"] is None and rows[0]["role"] == ""


def test_too_large() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_agent_yaml("#" * 1_000_001)
    assert err.value.field == "yaml"
