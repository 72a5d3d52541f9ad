"""Dashboard login/logout and password change."""

from __future__ import annotations

import datetime as dt

import strawberry

from backend.admin import auth as svc
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.tenancy import UserType


@strawberry.type
class Session:
    token: str = strawberry.field(description="Send as 'Authorization: Bearer <token>'.")
    expires_at: dt.datetime | None
    user: UserType


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Open a dashboard session.")
    async def login(self, info: Info, email: str, password: str) -> Session:
        token, row, user = await svc.login(info.context.gateway, email, password)
        return Session(token=token, expires_at=row.expires_at, user=UserType.of(user))

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> bool:
        return await svc.logout(info.context.gateway, info.context.token)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def change_password(self, info: Info, current_password: str, new_password: str) -> bool:
        await svc.change_password(
            info.context.gateway, viewer(info), current_password, new_password
        )
        return True
