"""What a sign-in carries between its two legs, kept by the browser in a sealed cookie.

``GET /auth/oidc/login`` makes a random ``state``, ``nonce`` and PKCE ``verifier`` and sets them
in a cookie named after the state, sealed with AES-256-GCM (the gateway's secret key, through
HKDF with its own label): the browser can neither read the verifier nor change anything, and any
gateway instance can open it, so nothing is stored server-side. ``GET /auth/oidc/callback``
opens the cookie named by the ``state`` it receives, checks it is the same state, not older than
``FLOW_TTL_S``, and for the same issuer, and deletes it (one use).

The cookie is ``HttpOnly``, ``SameSite=Lax`` (sent on the provider's top-level redirect back,
not on cross-site subrequests), ``Secure`` when the gateway's URL is https, scoped to
``/auth/oidc``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

import orjson

from backend.security.crypto import (
    CredentialDecryptError,
    decrypt_secret,
    encrypt_secret,
    hkdf_sha256,
)

FLOW_TTL_S = 600
COOKIE_PREFIX = "sb_oidc_"
COOKIE_PATH = "/auth/oidc"
_AAD = "sso:flow"
_STATE_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def flow_key(secret_key: bytes) -> bytes:
    """A key for flow cookies only, derived from the gateway's key (never the key itself)."""
    return hkdf_sha256(secret_key, salt=None, info=b"switchboard/sso-flow-cookie/v1", length=32)


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    issuer: str
    #: When the sign-in started (seconds since the epoch).
    started_at: float

    @staticmethod
    def start(issuer: str, now: float) -> Flow:
        return Flow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # RFC 7636: 43-128 characters from the unreserved set; 64 random bytes -> 86.
            verifier=secrets.token_urlsafe(64),
            issuer=issuer,
            started_at=now,
        )


def cookie_name(state: str) -> str:
    # Named after the state, so sign-ins started in two tabs do not overwrite each other.
    return COOKIE_PREFIX + state[:16]


def seal(key: bytes, flow: Flow) -> str:
    body = orjson.dumps(
        {
            "s": flow.state,
            "n": flow.nonce,
            "v": flow.verifier,
            "i": flow.issuer,
            "t": flow.started_at,
        }
    )
    return encrypt_secret(key, body.decode(), _AAD)


class FlowError(Exception):
    """The callback cannot be matched to a sign-in this browser started (message is safe)."""


def open_flow(key: bytes, cookie: str | None, state: str, now: float) -> Flow:
    """The sign-in ``state`` belongs to, from its cookie, or ``FlowError`` saying why not."""
    if not _STATE_RE.match(state or ""):
        raise FlowError("the provider's answer has no valid state")
    if not cookie:
        raise FlowError(
            "this sign-in was not started in this browser, or it took longer than "
            f"{FLOW_TTL_S // 60} minutes: start again"
        )
    try:
        data = orjson.loads(decrypt_secret(key, cookie, _AAD))
        flow = Flow(
            state=str(data["s"]),
            nonce=str(data["n"]),
            verifier=str(data["v"]),
            issuer=str(data["i"]),
            started_at=float(data["t"]),
        )
    except (CredentialDecryptError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise FlowError("the sign-in cookie is not valid: start again") from None
    if not hmac.compare_digest(flow.state.encode(), state.encode()):
        raise FlowError("the provider's answer is for another sign-in (state mismatch)")
    if not 0 <= now - flow.started_at <= FLOW_TTL_S:
        raise FlowError(f"the sign-in took longer than {FLOW_TTL_S // 60} minutes: start again")
    return flow
