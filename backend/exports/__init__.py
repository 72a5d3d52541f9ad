"""Exports: a user's API activity as CSV, streamed page by page."""
