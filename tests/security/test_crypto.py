"""AES-256-GCM credential encryption and the gateway's secret key file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backend.security.crypto import (
    CredentialDecryptError,
    decrypt_secret,
    derive_key,
    encrypt_secret,
    load_or_create_secret_key,
    provider_aad,
)

PLAINTEXT = "sk-proj-Zq8vJ2mN5xR7tY1wE3uI6oP9aS4dF0gH"
SECRET = "a-long-random-gateway-secret-for-tests-only-0123456789"
KEY = derive_key(SECRET)


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    # RFC 5869 written out, so the test checks the documented parameters independently.
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def _raw(token: str) -> bytes:
    return base64.b64decode(token.split(":", 1)[1])


def _token(raw: bytes) -> str:
    return "v1:" + base64.b64encode(raw).decode()


# -- key derivation ----------------------------------------------------------------------------


def test_derive_key_is_hkdf_sha256_with_the_documented_salt_and_info() -> None:
    expected = _hkdf_sha256(
        SECRET.encode(),
        b"switchboard/provider-credentials/salt/v1",
        b"switchboard/provider-credentials/aes-256-gcm/v1",
        32,
    )
    assert derive_key(SECRET) == expected
    assert len(KEY) == 32
    assert derive_key(SECRET + "x") != KEY


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        derive_key("")


def test_short_keys_are_refused_rather_than_silently_weaker() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_secret(b"\x00" * 16, PLAINTEXT, "provider:openai")
    token = encrypt_secret(KEY, PLAINTEXT, "provider:openai")
    for bad in (b"", KEY[:16]):
        with pytest.raises(CredentialDecryptError, match="no valid secret key"):
            decrypt_secret(bad, token, "provider:openai")


# -- round trip and format ---------------------------------------------------------------------


def test_round_trip() -> None:
    aad = provider_aad("openai")
    token = encrypt_secret(KEY, PLAINTEXT, aad)
    assert decrypt_secret(KEY, token, aad) == PLAINTEXT
    assert decrypt_secret(KEY, encrypt_secret(KEY, "", aad), aad) == ""
    assert decrypt_secret(KEY, encrypt_secret(KEY, "clé ünïcode 🔑", aad), aad) == "clé ünïcode 🔑"


def test_token_format_and_fresh_nonce_per_call() -> None:
    aad = provider_aad("openai")
    a = encrypt_secret(KEY, PLAINTEXT, aad)
    b = encrypt_secret(KEY, PLAINTEXT, aad)
    assert a.startswith("v1:") and b.startswith("v1:")
    assert a != b
    raw_a, raw_b = _raw(a), _raw(b)
    assert len(raw_a) == 12 + len(PLAINTEXT.encode()) + 16
    assert raw_a[:12] != raw_b[:12]
    assert PLAINTEXT not in a
    assert PLAINTEXT.encode() not in raw_a


def test_aad_is_the_provider_row_name() -> None:
    # The GraphQL mutations encrypt with exactly this string.
    assert provider_aad("openai") == "provider:openai"


# -- refusals ----------------------------------------------------------------------------------


def _assert_clean(err: CredentialDecryptError) -> None:
    text = str(err) + repr(err)
    assert PLAINTEXT not in text
    assert SECRET not in text
    assert KEY.hex() not in text
    assert err.__cause__ is None


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_a_flipped_byte_is_refused(where: str) -> None:
    aad = provider_aad("openai")
    raw = bytearray(_raw(encrypt_secret(KEY, PLAINTEXT, aad)))
    pos = {"nonce": 3, "ciphertext": 12 + 5, "tag": len(raw) - 2}[where]
    raw[pos] ^= 0x01
    with pytest.raises(CredentialDecryptError, match="failed authentication") as exc:
        decrypt_secret(KEY, _token(bytes(raw)), aad)
    _assert_clean(exc.value)


def test_a_ciphertext_moved_to_another_providers_row_is_refused() -> None:
    token = encrypt_secret(KEY, PLAINTEXT, provider_aad("openai"))
    with pytest.raises(CredentialDecryptError) as exc:
        decrypt_secret(KEY, token, provider_aad("anthropic"))
    message = str(exc.value)
    assert "provider:anthropic" in message
    assert "another provider's row" in message
    _assert_clean(exc.value)


def test_a_wrong_key_is_refused() -> None:
    aad = provider_aad("openai")
    token = encrypt_secret(KEY, PLAINTEXT, aad)
    with pytest.raises(CredentialDecryptError, match="different SWITCHBOARD_SECRET_KEY") as exc:
        decrypt_secret(derive_key("some other secret"), token, aad)
    _assert_clean(exc.value)


@pytest.mark.parametrize(
    "token",
    [
        "",
        PLAINTEXT,  # a plaintext key pasted where ciphertext belongs
        "v2:" + base64.b64encode(b"\x00" * 40).decode(),
        "v1:not base64!!",
        "v1:" + base64.b64encode(b"\x00" * 20).decode(),
    ],
)
def test_malformed_tokens_are_refused_without_echoing_them(token: str) -> None:
    with pytest.raises(CredentialDecryptError) as exc:
        decrypt_secret(KEY, token, provider_aad("openai"))
    _assert_clean(exc.value)


# -- the secret key file -----------------------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, msg: str, *args: object) -> None:
        self.warnings.append(msg % args)


def test_env_value_wins_and_no_file_is_written(tmp_path: Path) -> None:
    log = _Log()
    (tmp_path / "secret.key").write_text("from-file\n")
    assert load_or_create_secret_key(tmp_path, "from-env", log) == "from-env"
    assert load_or_create_secret_key(tmp_path / "empty", "from-env", log) == "from-env"
    assert not (tmp_path / "empty").exists()
    assert log.warnings == []


def test_generated_once_with_0600_and_reused(tmp_path: Path) -> None:
    log = _Log()
    old_umask = os.umask(0)  # the mode must not depend on a permissive umask
    try:
        first = load_or_create_secret_key(tmp_path / "data", None, log)
    finally:
        os.umask(old_umask)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    assert len(first) >= 64
    assert len(log.warnings) == 1
    assert "generated" in log.warnings[0]
    assert first not in log.warnings[0]

    assert load_or_create_secret_key(tmp_path / "data", None, log) == first
    assert load_or_create_secret_key(tmp_path / "data", "", log) == first  # empty env = unset
    assert len(log.warnings) == 1  # said once, not on every start


def test_the_warning_goes_through_a_std_logger_without_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("switchboard.test.crypto")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        secret = load_or_create_secret_key(tmp_path, None, logger)
    assert len(caplog.records) == 1
    assert secret not in caplog.text
    assert "SWITCHBOARD_SECRET_KEY" in caplog.text


def test_a_too_open_existing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("existing-secret\n")
    path.chmod(0o644)
    log = _Log()
    assert load_or_create_secret_key(tmp_path, None, log) == "existing-secret"
    assert len(log.warnings) == 1 and "chmod 600" in log.warnings[0]
    assert "existing-secret" not in log.warnings[0]


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    log = _Log()

    def start() -> str:
        barrier.wait()
        return load_or_create_secret_key(tmp_path, None, log)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: start(), range(8)))
    assert len(set(results)) == 1
    assert (tmp_path / "secret.key").read_text().strip() == results[0]
    assert len(log.warnings) == 1


@pytest.mark.parametrize("salt", [b"switchboard/provider-credentials/salt/v1", None, b""])
@pytest.mark.parametrize("length", [1, 16, 32, 33, 64, 100])
def test_the_standard_library_hkdf_equals_cryptographys(salt: bytes | None, length: int) -> None:
    """``hkdf_sha256`` replaced cryptography's HKDF (whose native library is ~8 MB of RSS that
    an idle gateway no longer loads): the keys it derives, stored credentials' and the SSO
    flow cookies', must stay byte for byte the same."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from backend.security.crypto import hkdf_sha256
    from backend.sso.flow import flow_key

    ikm, info = SECRET.encode(), b"switchboard/some-use/v1"
    theirs = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
    assert hkdf_sha256(ikm, salt=salt, info=info, length=length) == theirs
    cookie = b"switchboard/sso-flow-cookie/v1"
    assert flow_key(KEY) == HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=cookie
    ).derive(KEY)
