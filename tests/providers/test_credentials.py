"""Provider settings: defaults, environment, encrypted database rows on top; key rotation.

Runs on a temp SQLite file, and on a fresh PostgreSQL database when ``DATABASE_URL`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise

from backend.data.models.settings import ProviderCredential
from backend.providers.credentials import env_provider_configs, load_provider_configs, rotate_key
from backend.security.crypto import (
    CredentialDecryptError,
    decrypt_secret,
    derive_key,
    encrypt_secret,
    provider_aad,
)
from tests.dbutil import initialised_database

KEY = derive_key("credentials-test-secret-0123456789abcdef")
OTHER_KEY = derive_key("another-secret-0123456789abcdef-xyz")

DB_OPENAI_KEY = "sk-db-openai-Q1w2E3r4T5y6U7i8O9p0"
DB_ANTHROPIC_KEY = "sk-ant-db-A1s2D3f4G5h6J7k8L9"
DB_GEMINI_KEY = "AIza-db-gemini-Z1x2C3v4B5n6M7"
ENV = {
    "OPENAI_API_KEY": "sk-env-openai-000",
    "OPENAI_ORG_ID": "org-env",
    "ANTHROPIC_API_KEY": "sk-ant-env-000",
    "GEMINI_API_KEY": "gm-env-000",
}


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with initialised_database(tmp_path_factory.mktemp("creds")) as url:
        yield url


@pytest.fixture(autouse=True)
async def empty_table(database: str) -> AsyncIterator[None]:
    await ProviderCredential.all().delete()
    yield
    await ProviderCredential.all().delete()


async def _row(
    provider: str, kind: str, api_key: str | None, key: bytes = KEY, **fields: object
) -> ProviderCredential:
    if api_key:
        fields["api_key_ciphertext"] = encrypt_secret(key, api_key, provider_aad(provider))
        fields["api_key_last4"] = api_key[-4:]
    return await ProviderCredential.create(provider=provider, kind=kind, **fields)  # type: ignore[arg-type]


# -- environment only --------------------------------------------------------------------------


async def test_env_only_providers_and_defaults() -> None:
    env = {
        **ENV,
        "ANTHROPIC_BASE_URL": "https://proxy.example/anthropic/v1/",
        "AZURE_OPENAI_API_KEY": "az-key",
        "AZURE_OPENAI_BASE_URL": "https://res.openai.azure.com",
        "AZURE_OPENAI_API_VERSION": "2025-04-01-preview",
        "AZURE_OPENAI_DEPLOYMENT": "gpt4o-prod",
        "OPENAI_PROJECT_ID": "proj_1",
    }
    configs, errors = await load_provider_configs(env, KEY)
    assert errors == {}
    assert set(configs) == {"openai", "anthropic", "gemini", "azure"}  # no ollama without a URL
    openai = configs["openai"]
    assert (openai.kind, openai.base_url, openai.api_key) == (
        "openai",
        "https://api.openai.com/v1",
        "sk-env-openai-000",
    )
    assert (openai.organization, openai.project) == ("org-env", "proj_1")
    # Anthropic's base is kept without /v1 even when pasted with it.
    assert configs["anthropic"].base_url == "https://proxy.example/anthropic"
    assert configs["gemini"].base_url == "https://generativelanguage.googleapis.com"
    azure = configs["azure"]
    assert (azure.kind, azure.api_version, azure.azure_deployment) == (
        "azure",
        "2025-04-01-preview",
        "gpt4o-prod",
    )


async def test_nothing_configured_without_keys() -> None:
    configs, errors = await load_provider_configs({}, KEY)
    assert configs == {} and errors == {}
    # ...but every built-in is known, with its default URL.
    known = env_provider_configs({})
    assert known["ollama"].base_url == "http://127.0.0.1:11434"
    assert known["anthropic"].base_url == "https://api.anthropic.com"


async def test_ollama_needs_an_explicit_url_and_the_gateway_setting_beats_env() -> None:
    configs, _ = await load_provider_configs({"OLLAMA_BASE_URL": "http://gpu-box:11434/"}, KEY)
    assert configs["ollama"].base_url == "http://gpu-box:11434"
    assert configs["ollama"].api_key is None
    configs, _ = await load_provider_configs(
        {"OLLAMA_BASE_URL": "http://gpu-box:11434"}, KEY, ollama_base_url="http://other:11434"
    )
    assert configs["ollama"].base_url == "http://other:11434"


async def test_custom_openai_compatible_providers_from_env() -> None:
    env = {
        "SWITCHBOARD_PROVIDER_MY_VLLM_BASE_URL": "http://vllm:8000/v1",
        "SWITCHBOARD_PROVIDER_GROQ_BASE_URL": "https://api.groq.com/openai/v1",
        "SWITCHBOARD_PROVIDER_GROQ_API_KEY": "gsk-123",
        "SWITCHBOARD_PROVIDER_NOURL_API_KEY": "k",
    }
    configs, errors = await load_provider_configs(env, KEY)
    assert configs["my_vllm"].kind == "openai"
    assert configs["my_vllm"].base_url == "http://vllm:8000/v1"
    assert configs["my_vllm"].api_key is None  # a local server needs no key
    assert (configs["groq"].base_url, configs["groq"].api_key) == (
        "https://api.groq.com/openai/v1",
        "gsk-123",
    )
    assert "nourl" not in configs
    assert errors == {}


async def test_azure_key_without_endpoint_is_a_reported_error() -> None:
    configs, errors = await load_provider_configs({"AZURE_OPENAI_API_KEY": "az-secret-key"}, KEY)
    assert "azure" not in configs
    assert "no base URL" in errors["azure"]
    assert "az-secret-key" not in errors["azure"]


# -- database over environment -----------------------------------------------------------------


async def test_row_present_db_wins_over_env() -> None:
    await _row("openai", "openai", DB_OPENAI_KEY, base_url="https://gw.example/v1", project="p-db")
    configs, errors = await load_provider_configs(ENV, KEY)
    assert errors == {}
    openai = configs["openai"]
    assert openai.api_key == DB_OPENAI_KEY
    assert openai.base_url == "https://gw.example/v1"
    assert openai.project == "p-db"
    assert openai.organization == "org-env"  # fields the row leaves empty come from env
    assert configs["anthropic"].api_key == "sk-ant-env-000"  # no row: env


async def test_row_absent_env_is_used() -> None:
    await _row("anthropic", "anthropic", DB_ANTHROPIC_KEY)
    configs, _ = await load_provider_configs(ENV, KEY)
    assert configs["openai"].api_key == "sk-env-openai-000"
    assert configs["anthropic"].api_key == DB_ANTHROPIC_KEY


async def test_row_without_key_overrides_settings_but_keeps_env_key() -> None:
    await _row("openai", "openai", None, base_url="https://eu.api.openai.com/v1")
    configs, _ = await load_provider_configs(ENV, KEY)
    assert configs["openai"].api_key == "sk-env-openai-000"
    assert configs["openai"].base_url == "https://eu.api.openai.com/v1"


async def test_db_only_provider_without_env_and_custom_rows() -> None:
    await _row("gemini", "gemini", DB_GEMINI_KEY)
    await _row("together", "openai", "tg-key-1234", base_url="https://api.together.xyz/v1")
    configs, errors = await load_provider_configs({}, KEY)
    assert errors == {}
    assert configs["gemini"].api_key == DB_GEMINI_KEY
    assert configs["together"].kind == "openai"
    assert configs["together"].api_key == "tg-key-1234"


async def test_a_disabled_row_is_returned_disabled() -> None:
    await _row("openai", "openai", DB_OPENAI_KEY, enabled=False)
    await _row("azure", "azure", None, enabled=False)  # disabled before it was ever set up
    configs, errors = await load_provider_configs(ENV, KEY)
    assert configs["openai"].enabled is False
    assert configs["azure"].enabled is False
    assert configs["anthropic"].enabled is True
    assert errors == {}


async def test_an_ollama_row_configures_ollama_even_on_the_default_url() -> None:
    await _row("ollama", "ollama", None)
    configs, _ = await load_provider_configs({}, KEY)
    assert configs["ollama"].base_url == "http://127.0.0.1:11434"
    assert configs["ollama"].enabled


# -- broken rows -------------------------------------------------------------------------------


async def test_a_flipped_byte_breaks_only_that_provider(caplog: pytest.LogCaptureFixture) -> None:
    row = await _row("openai", "openai", DB_OPENAI_KEY)
    await _row("anthropic", "anthropic", DB_ANTHROPIC_KEY)
    token = row.api_key_ciphertext
    assert token is not None
    body = bytearray(token.encode())
    body[10] = ord("A") if body[10] != ord("A") else ord("B")
    row.api_key_ciphertext = body.decode()
    await row.save()

    with caplog.at_level(logging.DEBUG):
        configs, errors = await load_provider_configs(ENV, KEY)
    assert "openai" not in configs  # not silently served with the env key instead
    assert "failed authentication" in errors["openai"]
    assert configs["anthropic"].api_key == DB_ANTHROPIC_KEY
    for text in (errors["openai"], caplog.text):
        assert DB_OPENAI_KEY not in text and DB_ANTHROPIC_KEY not in text


async def test_a_ciphertext_moved_to_another_row_is_refused() -> None:
    openai = await _row("openai", "openai", DB_OPENAI_KEY)
    await _row("anthropic", "anthropic", None, api_key_ciphertext=openai.api_key_ciphertext)
    configs, errors = await load_provider_configs({}, KEY)
    assert configs["openai"].api_key == DB_OPENAI_KEY
    assert "anthropic" not in configs
    assert "another provider's row" in errors["anthropic"]
    assert DB_OPENAI_KEY not in errors["anthropic"]


async def test_a_wrong_key_breaks_rows_but_env_only_providers_keep_working() -> None:
    await _row("openai", "openai", DB_OPENAI_KEY)
    configs, errors = await load_provider_configs(ENV, OTHER_KEY)
    assert set(errors) == {"openai"}
    assert "SWITCHBOARD_SECRET_KEY" in errors["openai"]
    assert {"anthropic", "gemini"} <= set(configs)


async def test_the_raw_key_is_nowhere_in_the_database(database: str) -> None:
    await _row("openai", "openai", DB_OPENAI_KEY)
    await _row("anthropic", "anthropic", DB_ANTHROPIC_KEY)
    conn = Tortoise.get_connection("default")
    _, rows = await conn.execute_query("SELECT * FROM provider_credentials")
    dump = repr([dict(r) for r in rows])
    assert DB_OPENAI_KEY not in dump and DB_ANTHROPIC_KEY not in dump
    assert "Q1w2E3r4" not in dump  # not even a recognisable piece
    if database.startswith("sqlite:"):
        path = Path(database.split("sqlite://", 1)[1])
        for f in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            if f.exists():
                assert DB_OPENAI_KEY.encode() not in f.read_bytes()


# -- rotation ----------------------------------------------------------------------------------


async def test_rotate_key_reencrypts_everything() -> None:
    await _row("openai", "openai", DB_OPENAI_KEY)
    await _row("anthropic", "anthropic", DB_ANTHROPIC_KEY)
    await _row("gemini", "gemini", DB_GEMINI_KEY)
    await _row("ollama", "ollama", None, base_url="http://ollama:11434")
    before = {r.provider: r.api_key_ciphertext for r in await ProviderCredential.all()}

    assert await rotate_key(KEY, OTHER_KEY) == 3

    rows = {r.provider: r for r in await ProviderCredential.all()}
    for name, plain in (
        ("openai", DB_OPENAI_KEY),
        ("anthropic", DB_ANTHROPIC_KEY),
        ("gemini", DB_GEMINI_KEY),
    ):
        token = rows[name].api_key_ciphertext
        assert token is not None and token != before[name]
        assert decrypt_secret(OTHER_KEY, token, provider_aad(name)) == plain
        with pytest.raises(CredentialDecryptError):
            decrypt_secret(KEY, token, provider_aad(name))
    assert rows["ollama"].api_key_ciphertext is None

    configs, errors = await load_provider_configs({}, OTHER_KEY)
    assert errors == {}
    assert configs["anthropic"].api_key == DB_ANTHROPIC_KEY
    _, old_errors = await load_provider_configs({}, KEY)
    assert set(old_errors) == {"openai", "anthropic", "gemini"}

    # Re-running after a completed rotation changes nothing.
    assert await rotate_key(KEY, OTHER_KEY) == 0


async def test_rotate_key_is_all_or_nothing() -> None:
    await _row("openai", "openai", DB_OPENAI_KEY)
    third = derive_key("a third secret nobody has anymore-0000")
    await _row("anthropic", "anthropic", DB_ANTHROPIC_KEY, key=third)
    before = {r.provider: r.api_key_ciphertext for r in await ProviderCredential.all()}

    with pytest.raises(CredentialDecryptError, match="provider:anthropic"):
        await rotate_key(KEY, OTHER_KEY)

    after = {r.provider: r.api_key_ciphertext for r in await ProviderCredential.all()}
    assert after == before  # the openai row was rolled back too
