"""Dashboard login/logout and password change."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from backend.admin import auth as svc
from backend.graphql.context import Info, client_address, viewer
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.tenancy import UserType


@strawberry.type(description="A dashboard session.")
class Session:
    token: str = strawberry.field(description="Send as 'Authorization: Bearer <token>'.")
    expires_at: dt.datetime | None = strawberry.field(
        description="When the token stops working; null: never."
    )
    user: UserType = strawberry.field(description="The logged-in user.")


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description=(
            "Open a dashboard session. Failed logins are throttled per account and per client "
            "address: a locked-out login fails with code RATE_LIMITED and extensions.retryAfter "
            "(seconds), even with the right password."
        )
    )
    async def login(
        self,
        info: Info,
        email: Annotated[str, strawberry.argument(description="The user's email.")],
        password: Annotated[str, strawberry.argument(description="The user's password.")],
    ) -> Session:
        ctx = info.context
        token, row, user = await svc.login(
            ctx.gateway, ctx.login_guard, email, password, address=client_address(ctx)
        )
        return Session(token=token, expires_at=row.expires_at, user=UserType.of(user))

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> bool:
        return await svc.logout(info.context.gateway, info.context.token)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Change your own password; true when changed.",
    )
    async def change_password(
        self,
        info: Info,
        current_password: Annotated[str, strawberry.argument(description="Your password now.")],
        new_password: Annotated[
            str, strawberry.argument(description="The new password (8+ characters).")
        ],
    ) -> bool:
        await svc.change_password(
            info.context.gateway,
            info.context.login_guard,
            viewer(info),
            current_password,
            new_password,
        )
        return True
