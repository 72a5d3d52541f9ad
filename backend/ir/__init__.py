"""Canonical IR: chat requests/responses (``chat``), stream events (``stream``), errors."""
