"""LLM provider credentials: super_admin only; the API key is write-only (last 4 shown)."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import credentials as svc
from backend.data.models.settings import ProviderCredential
from backend.graphql.common import changes
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsSuperAdmin


@strawberry.type(name="ProviderCredential")
class ProviderCredentialType:
    id: int
    provider: str
    kind: str = strawberry.field(description="openai | azure | anthropic | gemini | ollama")
    base_url: str | None
    api_key_set: bool
    api_key_last4: str | None = strawberry.field(description="Never more than the last 4.")
    organization: str | None
    project: str | None
    azure_deployment: str | None
    api_version: str | None
    enabled: bool
    updated_at: dt.datetime
    updated_by: int | None

    @staticmethod
    def of(c: ProviderCredential) -> ProviderCredentialType:
        return ProviderCredentialType(
            id=c.id,
            provider=c.provider,
            kind=c.kind,
            base_url=c.base_url,
            api_key_set=c.api_key_ciphertext is not None,
            api_key_last4=c.api_key_last4,
            organization=c.organization,
            project=c.project,
            azure_deployment=c.azure_deployment,
            api_version=c.api_version,
            enabled=c.enabled,
            updated_at=c.updated_at,
            updated_by=c.updated_by,
        )


@strawberry.input
class ProviderCredentialInput:
    kind: str | None = UNSET
    base_url: str | None = UNSET
    api_key: str | None = strawberry.field(
        default=UNSET, description="Write-only. null or '' removes the stored key."
    )
    organization: str | None = UNSET
    project: str | None = UNSET
    azure_deployment: str | None = UNSET
    api_version: str | None = UNSET
    enabled: bool | None = UNSET


@strawberry.type
class CredentialsQuery:
    @strawberry.field(permission_classes=[IsSuperAdmin])
    async def provider_credentials(self, info: Info) -> list[ProviderCredentialType]:
        return [ProviderCredentialType.of(c) for c in await svc.list_credentials(viewer(info))]


@strawberry.type
class CredentialsMutation:
    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="Create or change a provider's connection; applies without restart.",
    )
    async def set_provider_credential(
        self, info: Info, provider: str, input: ProviderCredentialInput
    ) -> ProviderCredentialType:
        row = await svc.upsert_credential(
            info.context.gateway, viewer(info), provider, changes(input)
        )
        return ProviderCredentialType.of(row)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def delete_provider_credential(self, info: Info, provider: str) -> bool:
        return await svc.delete_credential(info.context.gateway, viewer(info), provider)
