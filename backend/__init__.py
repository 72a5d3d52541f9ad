"""Switchboard: a self-hosted LLM gateway."""
