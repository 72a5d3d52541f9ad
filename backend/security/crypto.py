"""Provider credentials at rest: AES-256-GCM under a key derived from ``SWITCHBOARD_SECRET_KEY``.

Token format (what ``ProviderCredential.api_key_ciphertext`` holds)::

    v1:<base64( nonce[12] || ciphertext || tag[16] )>

- A fresh random 96-bit nonce per encryption (never reuse a nonce under one key: GCM breaks).
- Associated data binds a ciphertext to its row: ``provider_aad("openai") == "provider:openai"``.
  A ciphertext copied into another provider's row fails authentication instead of silently
  sending OpenAI's key to some other host.
- The AES key is HKDF-SHA256 of the secret with the fixed salt/info below. The salt is constant
  on purpose: the secret is already high-entropy (``token_urlsafe(48)`` when generated), and a
  per-install random salt would have to be stored next to the data it protects. Salt and info
  only separate this use of the secret from any other; changing them invalidates every stored
  credential, so they are versioned with the token prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ``cryptography`` is imported where a credential is sealed or opened, not with this module:
# its native library is ~8 MB of RSS, and a gateway whose provider keys come from the
# environment never opens one (issue 19, idle memory). HKDF, needed at every start-up, is the
# standard library's HMAC (RFC 5869; tests compare it with cryptography's).

TOKEN_VERSION = "v1"
HKDF_SALT = b"switchboard/provider-credentials/salt/v1"
HKDF_INFO = b"switchboard/provider-credentials/aes-256-gcm/v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SECRET_KEY_FILE = "secret.key"
SECRET_ENV_VAR = "SWITCHBOARD_SECRET_KEY"


class CredentialDecryptError(Exception):
    """A stored credential cannot be decrypted. The message never contains key or plaintext."""


class _Log(Protocol):
    def warning(self, msg: str, *args: Any) -> None: ...


def provider_aad(provider: str) -> str:
    """Associated data for the credential row of ``provider`` (the row's ``provider`` column)."""
    return f"provider:{provider}"


def hkdf_sha256(key_material: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt`` (``None``: 32 zero bytes), then expand."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 derives 1 to 8160 bytes")
    prk = hmac.digest(salt if salt is not None else bytes(32), key_material, hashlib.sha256)
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        out += block
    return out[:length]


def derive_key(secret: str) -> bytes:
    """The 32-byte AES-256 key for ``secret`` (HKDF-SHA256, fixed documented salt and info)."""
    if not secret:
        raise ValueError(f"{SECRET_ENV_VAR} is empty")
    return hkdf_sha256(secret.encode(), salt=HKDF_SALT, info=HKDF_INFO, length=KEY_BYTES)


def _cipher(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) != KEY_BYTES:
        # AESGCM also accepts 128/192-bit keys; refuse them so nothing silently runs weaker.
        raise ValueError(f"credential key must be {KEY_BYTES} bytes (use derive_key)")
    return AESGCM(key)


def encrypt_secret(key: bytes, plaintext: str, aad: str) -> str:
    """Encrypt ``plaintext`` bound to ``aad``; returns ``v1:<base64(nonce||ciphertext||tag)>``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, plaintext.encode(), aad.encode())
    return f"{TOKEN_VERSION}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt_secret(key: bytes, token: str, aad: str) -> str:
    """Decrypt a token made by ``encrypt_secret`` with the same ``aad``.

    Raises ``CredentialDecryptError`` for a malformed token and for any authentication failure
    (tampered bytes, a ciphertext moved from another row, a different secret key): GCM cannot
    tell these apart, so the message names all three.
    """
    if len(key) != KEY_BYTES:
        # Not a ValueError: a missing key must break the credential, not the whole reload.
        raise CredentialDecryptError(f"credential for {aad!r}: no valid secret key to decrypt it")
    cipher = _cipher(key)
    version, sep, body = token.partition(":")
    if not sep or version != TOKEN_VERSION:
        raise CredentialDecryptError(
            f"credential for {aad!r} is not a {TOKEN_VERSION} ciphertext (unknown format)"
        )
    try:
        raw = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CredentialDecryptError(
            f"credential for {aad!r} is corrupted (ciphertext is not valid base64)"
        ) from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise CredentialDecryptError(f"credential for {aad!r} is corrupted (ciphertext too short)")
    from cryptography.exceptions import InvalidTag  # loaded by _cipher above

    try:
        plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode())
    except InvalidTag:
        # ``from None``: the chained InvalidTag adds nothing and keeps tracebacks short.
        raise CredentialDecryptError(
            f"credential for {aad!r} failed authentication: it was encrypted under a different "
            f"{SECRET_ENV_VAR}, was modified, or belongs to another provider's row; "
            "re-enter it in the dashboard"
        ) from None
    try:
        return plain.decode()
    except UnicodeDecodeError:
        raise CredentialDecryptError(f"credential for {aad!r} is not valid UTF-8") from None


def load_or_create_secret_key(data_dir: Path, env_value: str | None, log: _Log) -> str:
    """The gateway's secret: the env value, else ``data_dir/secret.key``, else a new one.

    A generated secret is written with mode 0600 (created with ``O_EXCL`` so two workers starting
    together agree on one key) and announced once with a warning that never shows the value.
    """
    if env_value and env_value.strip():
        return env_value.strip()
    path = Path(data_dir) / SECRET_KEY_FILE
    existing = _read_secret_file(path, log)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another worker won the race; use its key.
        raced = _read_secret_file(path, log)
        if raced is None:
            raise RuntimeError(
                f"{path} exists but is empty; delete it or set {SECRET_ENV_VAR}"
            ) from None
        return raced
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.warning(
        "%s is not set: generated a new secret key into %s (mode 0600). Back this file up or "
        "set %s; without it the stored provider credentials cannot be decrypted.",
        SECRET_ENV_VAR,
        path,
        SECRET_ENV_VAR,
    )
    return secret


def _read_secret_file(path: Path, log: _Log) -> str | None:
    # A worker that lost the creation race may see the file before its content is written:
    # wait briefly for the content rather than generating a second, different key.
    for _ in range(50):
        try:
            text = path.read_text().strip()
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            return None
        if text:
            if mode & 0o077:
                log.warning("%s is accessible to other users (mode %o); chmod 600 it", path, mode)
            return text
        time.sleep(0.02)
    return None
