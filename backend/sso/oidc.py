"""The OpenID provider as the gateway sees it: discovery, signing keys, code exchange, id_token.

Verification of an id_token (OpenID Connect Core 3.1.3.7), done by PyJWT with the provider's
published key: the signature (asymmetric algorithms only: never ``none``, never an HMAC keyed by
something a client might know), ``iss`` equal to the configured issuer, ``aud`` containing our
client id (and ``azp`` equal to it when there are several audiences), ``exp`` in the future,
``iat`` not in the future (60 s leeway for clocks), ``sub`` present; then ``nonce`` equal to the
one this sign-in sent (checked here, constant time).

Keys: the JWKS is fetched once and cached; a token whose ``kid`` is not in the cache triggers one
refetch (the provider rotated its keys), at most once per ``jwks_min_refetch_s`` so a stream of
unknown kids cannot turn every sign-in into a fetch. The cache also expires after
``jwks_ttl_s``, so a key the provider withdrew stops being trusted. The discovery document is
cached for ``discovery_ttl_s``.

Every call to the provider goes through ``httpx`` with a timeout. Errors are ``SsoError`` with a
message fit for the person signing in; no token, code or secret is ever part of one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx

ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S = 60
MAX_DOCUMENT_BYTES = 512 * 1024
DISCOVERY_PATH = "/.well-known/openid-configuration"


class SsoError(Exception):
    """A sign-in refused or failed; ``message`` is safe to show and to log."""

    def __init__(self, message: str, *, code: str = "SSO_FAILED") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    signing_algs: frozenset[str]
    token_auth_methods: tuple[str, ...]


def _url(doc: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise SsoError(f"the provider's discovery document has no valid {name}")
    return value


def parse_discovery(doc: Any, issuer: str) -> Discovery:
    """The parts of a discovery document the gateway uses, checked (OpenID Discovery 4.3)."""
    if not isinstance(doc, Mapping):
        raise SsoError("the provider's discovery document is not a JSON object")
    if doc.get("issuer") != issuer:
        raise SsoError(
            f"the discovery document names issuer {str(doc.get('issuer'))[:200]!r}, "
            f"not the configured {issuer!r}"
        )
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SsoError("the provider does not support PKCE with S256")
    algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    usable = frozenset(a for a in algs if a in ASYMMETRIC_ALGS)
    if not usable:
        raise SsoError(
            "the provider signs id_tokens with none of the asymmetric algorithms the gateway "
            f"accepts ({', '.join(sorted(ASYMMETRIC_ALGS))})"
        )
    auth_methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return Discovery(
        issuer=issuer,
        authorization_endpoint=_url(doc, "authorization_endpoint") or "",
        token_endpoint=_url(doc, "token_endpoint") or "",
        jwks_uri=_url(doc, "jwks_uri") or "",
        userinfo_endpoint=_url(doc, "userinfo_endpoint", required=False),
        signing_algs=usable,
        token_auth_methods=tuple(str(m) for m in auth_methods),
    )


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    disc: Discovery,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    nonce: str,
    verifier: str,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    sep = "&" if "?" in disc.authorization_endpoint else "?"
    return disc.authorization_endpoint + sep + urlencode(params)


def select_key(
    keys: Sequence[Mapping[str, Any]], header: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The signing key a token's header names: by ``kid``; without one, the only fitting key."""
    usable = [k for k in keys if k.get("use", "sig") == "sig"]
    kid = header.get("kid")
    if kid is not None:
        return next((k for k in usable if k.get("kid") == kid), None)
    alg = str(header.get("alg", ""))
    kty = {"R": "RSA", "P": "RSA", "E": "EC"}.get(alg[:1], "OKP")
    fitting = [k for k in usable if k.get("kty") == kty and k.get("alg") in (None, alg)]
    return fitting[0] if len(fitting) == 1 else None


def token_header(token: str) -> dict[str, Any]:
    # PyJWT imports cryptography (~8 MB of RSS): loaded by the first sign-in, not at start-up.
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SsoError("the provider's id_token is not a well-formed JWT") from None
    alg = header.get("alg")
    if alg not in ASYMMETRIC_ALGS:
        raise SsoError(f"the id_token's algorithm {str(alg)[:20]!r} is not accepted")
    return header


def verify_with_key(
    token: str,
    key: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    algs: frozenset[str] = ASYMMETRIC_ALGS,
    leeway_s: float = LEEWAY_S,
) -> dict[str, Any]:
    """The id_token's claims once every check of OpenID Connect Core 3.1.3.7 passed."""
    import jwt  # loaded by token_header

    header = token_header(token)
    alg = header["alg"]
    if alg not in algs:
        raise SsoError(f"the provider does not announce the id_token's algorithm {alg}")
    try:
        jwk = jwt.PyJWK(dict(key), algorithm=alg)
        claims: dict[str, Any] = jwt.decode(
            token,
            key=jwk,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise SsoError("the id_token has expired") from None
    except jwt.ImmatureSignatureError:
        raise SsoError("the id_token is not valid yet (issued in the future)") from None
    except jwt.InvalidSignatureError:
        raise SsoError("the id_token's signature does not verify") from None
    except jwt.InvalidAudienceError:
        raise SsoError("the id_token was issued for another client (aud)") from None
    except jwt.InvalidIssuerError:
        raise SsoError("the id_token was issued by another issuer (iss)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise SsoError(f"the id_token has no {exc.claim} claim") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise SsoError(f"the id_token was refused ({type(exc).__name__})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SsoError("the id_token has several audiences and another authorized party (azp)")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise SsoError("the id_token's nonce does not match this sign-in")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SsoError("the id_token has no subject (sub)")
    return claims


@dataclass
class _Cached:
    value: Any
    fetched_at: float


@dataclass
class OidcClient:
    """Discovery and key caches per issuer, and the calls to the provider.

    One per gateway (``client_for``); ``http`` makes the httpx client of each call (tests pass
    one with their own transport).
    """

    http: Callable[[], httpx.AsyncClient] = field(
        default=lambda: httpx.AsyncClient(timeout=10.0, follow_redirects=False)
    )
    clock: Callable[[], float] = time.monotonic
    discovery_ttl_s: float = 3600.0
    jwks_ttl_s: float = 3600.0
    jwks_min_refetch_s: float = 1.0
    #: JWKS documents fetched so far (the rotation tests read it).
    jwks_fetches: int = 0
    _discovery: dict[str, _Cached] = field(default_factory=dict)
    _jwks: dict[str, _Cached] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _get_json(self, url: str, what: str, headers: dict[str, str] | None = None) -> Any:
        try:
            async with self.http() as client:
                response = await client.get(
                    url, headers={"accept": "application/json", **(headers or {})}
                )
        except httpx.HTTPError as exc:
            raise SsoError(
                f"the provider's {what} could not be fetched ({type(exc).__name__})"
            ) from None
        return _json(response, what)

    async def discover(self, issuer: str, *, fresh: bool = False) -> Discovery:
        async with self._lock("discovery:" + issuer):
            cached = self._discovery.get(issuer)
            if cached and not fresh and self.clock() - cached.fetched_at < self.discovery_ttl_s:
                return cached.value  # type: ignore[no-any-return]
            doc = await self._get_json(issuer.rstrip("/") + DISCOVERY_PATH, "discovery document")
            found = parse_discovery(doc, issuer)
            self._discovery[issuer] = _Cached(found, self.clock())
            return found

    async def _fetch_jwks(self, uri: str) -> list[Mapping[str, Any]]:
        doc = await self._get_json(uri, "signing keys (JWKS)")
        self.jwks_fetches += 1
        keys = doc.get("keys") if isinstance(doc, Mapping) else None
        if not isinstance(keys, list):
            raise SsoError("the provider's JWKS has no keys list")
        found = [k for k in keys if isinstance(k, Mapping)]
        self._jwks[uri] = _Cached(found, self.clock())
        return found

    async def signing_key(self, disc: Discovery, header: Mapping[str, Any]) -> Mapping[str, Any]:
        """The key that signed a token: cached, or refetched once when the kid is new."""
        uri = disc.jwks_uri
        async with self._lock("jwks:" + uri):
            cached = self._jwks.get(uri)
            now = self.clock()
            if cached is None or now - cached.fetched_at >= self.jwks_ttl_s:
                keys = await self._fetch_jwks(uri)
            else:
                keys = cached.value
            key = select_key(keys, header)
            if (
                key is None
                and cached is not None
                and self.clock() - self._jwks[uri].fetched_at >= self.jwks_min_refetch_s
            ):
                key = select_key(await self._fetch_jwks(uri), header)
            if key is None:
                raise SsoError(
                    "the id_token is signed with a key the provider does not publish "
                    f"(kid {str(header.get('kid'))[:64]!r})"
                )
            return key

    async def exchange_code(
        self,
        disc: Discovery,
        *,
        code: str,
        redirect_uri: str,
        verifier: str,
        client_id: str,
        client_secret: str | None,
    ) -> dict[str, Any]:
        """The token response for an authorization code (RFC 6749 4.1.3 with PKCE)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json"}
        if client_secret and "client_secret_basic" in disc.token_auth_methods:
            # RFC 6749 2.3.1: both parts form-encoded before Basic encoding.
            pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif client_secret:
            form |= {"client_id": client_id, "client_secret": client_secret}
        else:
            form["client_id"] = client_id
        try:
            async with self.http() as client:
                response = await client.post(disc.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise SsoError(
                f"the provider's token endpoint did not answer ({type(exc).__name__})"
            ) from None
        body = _json(response, "token response", allow_error=True)
        if response.status_code != 200 or not isinstance(body, Mapping):
            raise SsoError(f"the provider refused the sign-in code: {_oauth_error(body, response)}")
        if not isinstance(body.get("id_token"), str):
            raise SsoError("the provider's token response has no id_token (is 'openid' a scope?)")
        return dict(body)

    async def verify(
        self, disc: Discovery, id_token: str, *, client_id: str, nonce: str
    ) -> dict[str, Any]:
        header = token_header(id_token)
        key = await self.signing_key(disc, header)
        return verify_with_key(
            id_token,
            key,
            issuer=disc.issuer,
            client_id=client_id,
            nonce=nonce,
            algs=disc.signing_algs,
        )

    async def userinfo(self, disc: Discovery, access_token: str, subject: str) -> dict[str, Any]:
        """Claims from the userinfo endpoint; its ``sub`` must be the id_token's (Core 5.3.4)."""
        if not disc.userinfo_endpoint:
            return {}
        body = await self._get_json(
            disc.userinfo_endpoint, "userinfo", headers={"authorization": f"Bearer {access_token}"}
        )
        if not isinstance(body, Mapping):
            raise SsoError("the provider's userinfo answer is not a JSON object")
        if body.get("sub") != subject:
            raise SsoError("the provider's userinfo is about another subject than the id_token")
        return dict(body)


def _json(response: httpx.Response, what: str, *, allow_error: bool = False) -> Any:
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise SsoError(f"the provider's {what} is too large")
    if response.status_code != 200 and not allow_error:
        raise SsoError(f"the provider's {what} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        if allow_error:
            return None
        raise SsoError(f"the provider's {what} is not JSON") from None


def _oauth_error(body: Any, response: httpx.Response) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        text = body["error"]
        description = body.get("error_description")
        if isinstance(description, str) and description:
            text += f" ({description})"
        return text[:300]
    return f"HTTP {response.status_code}"
