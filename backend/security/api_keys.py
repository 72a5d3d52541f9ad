"""Gateway API keys: generated once, stored only as a SHA-256 hash, displayed by prefix.

A key looks like ``sb-<8 hex prefix id>-<32 url-safe random>``; the prefix (``sb-xxxxxxxx``) is
unique and safe to show in logs and tables. SHA-256 (not argon2) is right here: keys carry 190+
bits of entropy, and the hash must be computed on every request.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sb-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key(prefix: str = KEY_PREFIX) -> tuple[str, str, str]:
    """Return ``(secret, display_prefix, hash)`` for a new key."""
    ident = secrets.token_hex(4)
    secret = f"{prefix}{ident}-{secrets.token_urlsafe(24)}"
    return secret, f"{prefix}{ident}", hash_key(secret)


def display_prefix(secret: str) -> str:
    """The displayable prefix of a presented key (never more than the id part)."""
    head, sep, _ = secret.rpartition("-")
    return head if sep and head.startswith(KEY_PREFIX) else secret[:11]
