"""The one place the per-domain types are merged into the schema, with its protections.

Protections: document length (``DocumentLimits``), query depth, token and alias limits (stop
expensive or abusive documents before they run), no NUL character in arguments (``RejectNul``)
and error masking: an unexpected exception becomes "Unexpected error." while our own refusals
and validation errors (``AdminError``) and GraphQL's own errors pass through intact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import strawberry
from graphql import BREAK, GraphQLError, StringValueNode, Visitor, visit
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from backend.admin.errors import AdminError
from backend.graphql.alerts import AlertsMutation, AlertsQuery
from backend.graphql.analytics import AnalyticsQuery
from backend.graphql.auth import AuthMutation
from backend.graphql.credentials import CredentialsMutation, CredentialsQuery
from backend.graphql.dashboard import DashboardQuery
from backend.graphql.deployments import DeploymentsMutation, DeploymentsQuery
from backend.graphql.dlp import DlpMutation, DlpQuery
from backend.graphql.errors import ErrorsMutation, ErrorsQuery, ErrorsSubscription
from backend.graphql.governance import GovernanceMutation, GovernanceQuery
from backend.graphql.keys import KeysMutation, KeysQuery
from backend.graphql.limits import DocumentLimits
from backend.graphql.logs import LogsQuery, LogsSubscription
from backend.graphql.memo import DocumentMemo, MemoizedDocuments
from backend.graphql.routing import RoutingMutation, RoutingQuery
from backend.graphql.scalars import TOKEN_COUNT, TokenCount
from backend.graphql.settings import SettingsMutation, SettingsQuery
from backend.graphql.sso import SsoMutation, SsoQuery
from backend.graphql.tenancy import TenancyMutation, TenancyQuery

log = logging.getLogger("switchboard.graphql")

MAX_DEPTH = 10
MAX_TOKENS = 4000
MAX_ALIASES = 30


def _merge(name: str, description: str, types: tuple[type, ...]) -> type:
    """One root type with every field of ``types`` (``strawberry.tools.merge_types``, described)."""
    return strawberry.type(type(name, types, {}), description=description)


Query = _merge(
    "Query",
    "Reads. Each field says who may call it; docs/AUTHZ.md has the full table.",
    (
        TenancyQuery,
        KeysQuery,
        GovernanceQuery,
        RoutingQuery,
        SettingsQuery,
        CredentialsQuery,
        DeploymentsQuery,
        AlertsQuery,
        SsoQuery,
        DlpQuery,
        LogsQuery,
        ErrorsQuery,
        DashboardQuery,
        AnalyticsQuery,
    ),
)
Mutation = _merge(
    "Mutation",
    "Changes; each applies on every gateway instance without restart.",
    (
        AuthMutation,
        TenancyMutation,
        KeysMutation,
        GovernanceMutation,
        RoutingMutation,
        SettingsMutation,
        CredentialsMutation,
        DeploymentsMutation,
        AlertsMutation,
        SsoMutation,
        DlpMutation,
        ErrorsMutation,
    ),
)
Subscription = _merge(
    "Subscription",
    "Live events over WebSocket (graphql-transport-ws), from every gateway instance.",
    (LogsSubscription, ErrorsSubscription),
)


def unexpected(error: GraphQLError) -> bool:
    """An exception nobody raised on purpose: not a refusal, not a GraphQL validation error."""
    original = error.original_error
    if original is None or isinstance(original, (AdminError, GraphQLError)):
        return False
    # A scalar that cannot parse the caller's value (``Decimal``) fails before any resolver
    # runs, so without a path: the caller's mistake, reported by graphql-core as such.
    return not (isinstance(original, (ValueError, TypeError)) and not error.path)


def should_mask(error: GraphQLError) -> bool:
    """Mask only exceptions we did not raise on purpose (and log them, unmasked, here)."""
    if not unexpected(error):
        return False
    log.error("unexpected error in %s", error.path, exc_info=error.original_error)
    return True


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error with a traceback, refusals and typos included, which
        # buries the real faults; those (the ones ``should_mask`` did not already log) remain.
        super().process_errors([e for e in errors if unexpected(e)], execution_context)


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_: object) -> object:
        if "\x00" in node.value:
            self.found = True
            return BREAK
        return None


class RejectNul(SchemaExtension):
    """Refuse a NUL character in any argument as the caller's mistake.

    PostgreSQL text cannot hold NUL: it would fail the statement, and the caller would get
    "Unexpected error." (while SQLite stored it). No admin value needs one.
    """

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        finder = _NulFinder()
        # A NUL in a literal is in the text raw or as a \u escape: most documents have neither,
        # and walking the tree for every operation showed in profiles.
        query = ctx.query or ""
        if ctx.graphql_document is not None and ("\x00" in query or "\\u" in query):
            visit(ctx.graphql_document, finder)
        if finder.found or _has_nul(ctx.variables):
            error = GraphQLError(
                "arguments must not contain NUL characters",
                extensions={"code": "BAD_USER_INPUT"},
            )
            ctx.result = GraphQLExecutionResult(data=None, errors=[error])
        yield


def _parse_decimal(value: object) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not out.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal number")
    return out


# Money travels as a plain decimal string ("0.00000000", never "0E-8" or a float).
DECIMAL = strawberry.scalar(
    name="Decimal",
    description="A decimal number as a string (money: USD, up to 8 decimals).",
    serialize=lambda d: format(d, "f"),
    parse_value=_parse_decimal,
)


def build_schema() -> strawberry.Schema:
    memo = DocumentMemo()
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL, TokenCount: TOKEN_COUNT}),
        extensions=[
            # Factories, not instances: extensions keep per-operation state, so each
            # operation needs its own. The memo goes first: it supplies remembered documents.
            lambda: MemoizedDocuments(memo),
            DocumentLimits,
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            RejectNul,
            lambda: MaskErrors(should_mask_error=should_mask),
        ],
    )


schema = build_schema()
