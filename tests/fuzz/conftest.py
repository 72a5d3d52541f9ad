"""The fuzz modules run against the same real-gateway stack as the end-to-end tests."""

from __future__ import annotations

from tests.e2e.conftest import gateway_overrides, stack, stack_setup

__all__ = ["gateway_overrides", "stack", "stack_setup"]
