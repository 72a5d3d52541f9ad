"""LLM provider credentials: super_admin only; the API key is write-only (last 4 shown)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import credentials as svc
from backend.data.models.settings import ProviderCredential
from backend.graphql.common import from_row
from backend.graphql.declare import Changes, listing, mutation
from backend.graphql.enums import ProviderKind
from backend.graphql.permissions import IsSuperAdmin

_BASE_URL = "The API's base URL; null: the provider's default."
_ORG = "OpenAI organization header; null: none."
_PROJECT = "OpenAI project header; null: none."
_DEPLOYMENT = "Azure deployment name; null: the model name."
_VERSION = "Azure API version; null: the default."
_ENABLED = "false: the gateway does not use this connection."


@strawberry.type(
    name="ProviderCredential", description="How the gateway reaches a provider (no secrets)."
)
class ProviderCredentialType:
    id: int = strawberry.field(description="The credential's id.")
    provider: str = strawberry.field(description="Provider name, the prefix of 'provider/model'.")
    kind: ProviderKind = strawberry.field(description="The API the provider speaks.")
    base_url: str | None = strawberry.field(description=_BASE_URL)
    api_key_set: bool = strawberry.field(description="An API key is stored (encrypted).")
    api_key_last4: str | None = strawberry.field(description="Never more than the last 4.")
    organization: str | None = strawberry.field(description=_ORG)
    project: str | None = strawberry.field(description=_PROJECT)
    azure_deployment: str | None = strawberry.field(description=_DEPLOYMENT)
    api_version: str | None = strawberry.field(description=_VERSION)
    enabled: bool = strawberry.field(description=_ENABLED)
    updated_at: dt.datetime = strawberry.field(description="Last change.")
    updated_by: int | None = strawberry.field(description="Who changed it last (a user id).")

    @staticmethod
    def of(c: ProviderCredential) -> ProviderCredentialType:
        return from_row(
            ProviderCredentialType,
            c,
            kind=ProviderKind(c.kind),
            api_key_set=c.api_key_ciphertext is not None,
        )


@strawberry.input(description="A provider's connection: only the fields sent change.")
class ProviderCredentialInput:
    kind: ProviderKind | None = strawberry.field(
        default=UNSET, description="The API the provider speaks (required on creation)."
    )
    base_url: str | None = strawberry.field(default=UNSET, description=_BASE_URL)
    api_key: str | None = strawberry.field(
        default=UNSET, description="Write-only. null or '' removes the stored key."
    )
    organization: str | None = strawberry.field(default=UNSET, description=_ORG)
    project: str | None = strawberry.field(default=UNSET, description=_PROJECT)
    azure_deployment: str | None = strawberry.field(default=UNSET, description=_DEPLOYMENT)
    api_version: str | None = strawberry.field(default=UNSET, description=_VERSION)
    enabled: bool | None = strawberry.field(default=UNSET, description=_ENABLED)


_Provider = Annotated[str, strawberry.argument(description="Provider name, e.g. 'openai'.")]


@strawberry.type
class CredentialsQuery:
    provider_credentials = listing(
        svc.list_credentials,
        ProviderCredentialType,
        IsSuperAdmin,
        "Provider connections stored in the gateway.",
    )


@strawberry.type
class CredentialsMutation:
    set_provider_credential = mutation(
        svc.upsert_credential,
        ProviderCredentialType,
        IsSuperAdmin,
        "Create or change a provider's connection; applies without restart.",
        convert=ProviderCredentialType.of,
        provider=_Provider,
        input=Changes[ProviderCredentialInput],
    )
    delete_provider_credential = mutation(
        svc.delete_credential,
        bool,
        IsSuperAdmin,
        "Remove a stored connection (true; an error if there is none).",
        provider=_Provider,
    )
