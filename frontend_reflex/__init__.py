"""The Switchboard dashboard (Reflex)."""
