"""Reflex states: one per page, all below :class:`AuthState` (the browser session)."""
