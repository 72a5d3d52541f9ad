"""The GatewayError tree: every failure a client can see, independent of wire format.

Each protocol codec maps these to its own error body (OpenAI ``{"error": {...}}``, Anthropic
``{"type": "error", "error": {...}}``); the ``kind`` names the canonical category and
``status`` the HTTP status to send.

    GatewayError                       500 api_error
    ├── InvalidRequest                 400 the caller's body/params are wrong
    │   └── PayloadTooLarge            413 body over the configured limit
    ├── AuthenticationError            401 missing / invalid / revoked / expired key
    ├── PermissionDenied               403 suspended user, inactive app, model not allowed
    ├── NotFound                       404 unknown model or route
    │   └── ProviderNotConfigured      404 the gateway cannot use that provider (configuration)
    ├── RateLimited                    429 per-key requests-per-minute
    ├── QuotaExceeded                  429 a spend cap (OpenAI ``insufficient_quota``)
    ├── UpstreamError                  502 the provider failed (keeps upstream status)
    │   ├── UpstreamTimeout            504 the provider did not answer in time
    │   └── UpstreamUnavailable        503 connection refused / reset / circuit open
    └── PolicyBlocked                  400 a policy (DLP fail-closed...) refused the request

``retryable`` tells the fallback policy whether another model may be tried: true for upstream
failures of the provider's making (5xx, 429, 401/402/403 from the provider, timeouts,
connection errors), false for anything the caller caused.

``ProviderNotConfigured`` is neither: a provider without credentials, disabled by an administrator
or whose credential cannot be used is the operator's configuration, not an outage. It is a 404
(the model is not served here, as ``/v1/models`` shows) carrying ``x-should-retry: false`` so no
client retries it; fallback skips such a candidate without an attempt, and it never feeds a circuit
breaker.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status: int = 500
    kind: str = "api_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.detail = detail or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    status = 413
    kind = "payload_too_large"


class AuthenticationError(GatewayError):
    status = 401
    kind = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission"


class NotFound(GatewayError):
    status = 404
    kind = "not_found"


class ProviderNotConfigured(NotFound):
    kind = "configuration"

    def __init__(self, message: str, **kwargs: Any) -> None:
        # The official SDKs honour this header before looking at the status.
        headers = {"x-should-retry": "false", **(kwargs.pop("headers", None) or {})}
        super().__init__(message, headers=headers, **kwargs)


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit"


class QuotaExceeded(GatewayError):
    status = 429
    kind = "quota"


class UpstreamError(GatewayError):
    status = 502
    kind = "upstream"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout"


class UpstreamUnavailable(UpstreamError):
    status = 503
    kind = "unavailable"


class PolicyBlocked(GatewayError):
    status = 400
    kind = "policy"


def upstream_status_error(status: int, message: str, *, provider: str) -> GatewayError:
    """Map an upstream HTTP error status to the error the client should see.

    A 400/404/413/422 from the provider is the caller's mistake and goes back as such; every
    other failure is the provider's and may fall back to another model.
    """
    text = f"{provider}: {message}"
    if status in (400, 422):
        return InvalidRequest(text, status=400, retryable=False)
    if status == 404:
        return NotFound(text, retryable=False)
    if status == 413:
        return PayloadTooLarge(text, retryable=False)
    if status == 429:
        return RateLimited(text, retryable=True, code="upstream_rate_limited")
    if status in (401, 402, 403):
        # Our provider credential or billing failed; not the caller's fault.
        return UpstreamError(text, status=502, code=f"upstream_{status}", retryable=True)
    if status == 504:
        return UpstreamTimeout(text)
    if status == 503:
        return UpstreamUnavailable(text)
    return UpstreamError(text, status=502, code=f"upstream_{status}")
