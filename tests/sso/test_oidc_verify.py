"""id_token verification, the key cache, the sealed flow and the claim mapping, with keys made
here: what a forged, expired, replayed or misdirected token gets.

Each refusal test changes one thing of a token that verifies (``test_a_valid_token_verifies``),
so it fails for that reason and no other. The key-cache tests serve a discovery document and a
JWKS from a real HTTP server on loopback (uvicorn), whose keys the test rotates.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.sso import flow as flows
from backend.sso.mapping import Rule, claim_value, map_claims
from backend.sso.oidc import (
    Discovery,
    OidcClient,
    SsoError,
    parse_discovery,
    pkce_challenge,
    select_key,
    verify_with_key,
)
from tests.security.authz_world import serve

ISSUER = "https://idp.example.test"
CLIENT = "switchboard"
NONCE = "n-0S6_WzA2Mj"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str, alg: str = "RS256") -> dict[str, Any]:
    algo = (
        jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    )
    jwk: dict[str, Any] = orjson.loads(algo.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "email": "jane@example.test",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, kid: str, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def signer() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa_key()
    return key, public_jwk(key, "k1")


def check(token: str, jwk: dict[str, Any], **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"issuer": ISSUER, "client_id": CLIENT, "nonce": NONCE}
    args.update(over)
    return verify_with_key(token, jwk, **args)


def test_a_valid_token_verifies(signer: Any) -> None:
    key, jwk = signer
    assert check(sign(claims(), key, "k1"), jwk)["email"] == "jane@example.test"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = public_jwk(ec_key, "e1", "ES256")
    assert check(sign(claims(), ec_key, "e1", "ES256"), ec_jwk)["sub"] == "248289761001"


def test_forged_signature_is_refused(signer: Any) -> None:
    _, jwk = signer
    forged = sign(claims(), rsa_key(), "k1")  # another key, the provider's kid
    with pytest.raises(SsoError, match="signature does not verify"):
        check(forged, jwk)


def test_tampered_payload_is_refused(signer: Any) -> None:
    key, jwk = signer
    head, body, sig = sign(claims(), key, "k1").split(".")
    data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["email"] = "admin@example.test"
    tampered = base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()
    with pytest.raises(SsoError, match="signature does not verify"):
        check(f"{head}.{tampered}.{sig}", jwk)


def test_expired_token_is_refused(signer: Any) -> None:
    key, jwk = signer
    now = int(time.time())
    old = sign(claims(iat=now - 900, exp=now - 120), key, "k1")  # past the 60 s leeway
    with pytest.raises(SsoError, match="expired"):
        check(old, jwk)
    # Within the clock leeway it still passes.
    check(sign(claims(iat=now - 900, exp=now - 30), key, "k1"), jwk)


def test_token_issued_in_the_future_is_refused(signer: Any) -> None:
    key, jwk = signer
    future = sign(claims(iat=int(time.time()) + 600, exp=int(time.time()) + 900), key, "k1")
    with pytest.raises(SsoError, match="not valid yet"):
        check(future, jwk)


@pytest.mark.parametrize("nonce", ["another-nonce", None])
def test_wrong_or_missing_nonce_is_refused(signer: Any, nonce: str | None) -> None:
    key, jwk = signer
    with pytest.raises(SsoError, match="nonce does not match"):
        check(
            sign(claims(nonce=nonce), key, "k1")
            if nonce
            else sign({k: v for k, v in claims().items() if k != "nonce"}, key, "k1"),
            jwk,
        )


def test_other_audience_or_issuer_is_refused(signer: Any) -> None:
    key, jwk = signer
    with pytest.raises(SsoError, match="another client"):
        check(sign(claims(aud="someone-else"), key, "k1"), jwk)
    with pytest.raises(SsoError, match="another issuer"):
        check(sign(claims(iss="https://evil.example.test"), key, "k1"), jwk)
    with pytest.raises(SsoError, match="authorized party"):
        check(sign(claims(aud=[CLIENT, "other"]), key, "k1"), jwk)
    check(sign(claims(aud=[CLIENT, "other"], azp=CLIENT), key, "k1"), jwk)


def test_missing_required_claims_are_refused(signer: Any) -> None:
    key, jwk = signer
    for name in ("sub", "exp", "iat"):
        payload = {k: v for k, v in claims().items() if k != name}
        with pytest.raises(SsoError, match=f"no {name}"):
            check(sign(payload, key, "k1"), jwk)


def test_unsigned_and_hmac_tokens_are_refused(signer: Any) -> None:
    key, jwk = signer
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(SsoError, match="'none' is not accepted"):
        check(unsigned, jwk)
    # The classic confusion: HMAC keyed with the provider's public key, which anyone has.
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = jwt.encode(claims(), base64.b64encode(pem), algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(SsoError, match="'HS256' is not accepted"):
        check(confused, jwk)
    with pytest.raises(SsoError, match="not a well-formed JWT"):
        check("not.a-token", jwk)


def test_key_selection() -> None:
    a = {"kid": "a", "kty": "RSA", "use": "sig"}
    b = {"kid": "b", "kty": "RSA", "use": "sig"}
    enc = {"kid": "c", "kty": "RSA", "use": "enc"}
    assert select_key([a, b], {"kid": "b", "alg": "RS256"}) is b
    assert select_key([a, b, enc], {"kid": "c", "alg": "RS256"}) is None  # not a signing key
    assert select_key([a], {"alg": "RS256"}) is a  # no kid, one fitting key
    assert select_key([a, b], {"alg": "RS256"}) is None  # no kid, ambiguous


def test_pkce_challenge_matches_rfc_7636() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_discovery_document_checks() -> None:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/auth",
        "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks",
        "id_token_signing_alg_values_supported": ["RS256", "HS256"],
        "code_challenge_methods_supported": ["S256"],
    }
    found = parse_discovery(doc, ISSUER)
    assert found.signing_algs == {"RS256"} and found.userinfo_endpoint is None
    with pytest.raises(SsoError, match="names issuer"):
        parse_discovery({**doc, "issuer": "https://other.test"}, ISSUER)
    with pytest.raises(SsoError, match="PKCE"):
        parse_discovery({**doc, "code_challenge_methods_supported": ["plain"]}, ISSUER)
    with pytest.raises(SsoError, match="token_endpoint"):
        parse_discovery({k: v for k, v in doc.items() if k != "token_endpoint"}, ISSUER)
    with pytest.raises(SsoError, match="asymmetric"):
        parse_discovery({**doc, "id_token_signing_alg_values_supported": ["HS256"]}, ISSUER)


# -- the key cache, against a real HTTP server --------------------------------------------------


class Idp:
    """Discovery and JWKS on loopback; ``keys`` is what it publishes now."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.jwks_requests = 0
        self.base = ""

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.base,
                    "authorization_endpoint": self.base + "/auth",
                    "token_endpoint": self.base + "/token",
                    "jwks_uri": self.base + "/jwks",
                }
            )

        async def jwks(request: Request) -> JSONResponse:
            self.jwks_requests += 1
            return JSONResponse({"keys": self.keys})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
            ]
        )


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[Idp]:
    server = Idp()
    async with serve(server.app()) as base:
        server.base = base
        yield server


async def test_keys_are_cached_and_refetched_once_for_a_new_kid(idp: Idp) -> None:
    k1, k2, k3 = rsa_key(), rsa_key(), rsa_key()
    idp.keys = [public_jwk(k1, "k1")]
    oidc = OidcClient(jwks_min_refetch_s=60.0)
    disc: Discovery = await oidc.discover(idp.base)
    base = idp.jwks_requests

    def token(key: Any, kid: str) -> str:
        return sign(claims(iss=idp.base), key, kid)

    async def verify(t: str) -> dict[str, Any]:
        return await oidc.verify(disc, t, client_id=CLIENT, nonce=NONCE)

    await verify(token(k1, "k1"))
    await verify(token(k1, "k1"))
    assert idp.jwks_requests == base + 1  # fetched once, then cached
    # The provider rotates: k2 signs from now on. A token with the new kid refetches once.
    idp.keys = [public_jwk(k2, "k2"), public_jwk(k1, "k1")]
    oidc.jwks_min_refetch_s = 0.0
    await verify(token(k2, "k2"))
    assert idp.jwks_requests == base + 2
    await verify(token(k2, "k2"))
    await verify(token(k1, "k1"))
    assert idp.jwks_requests == base + 2
    # Unknown kids refetch at most once per interval, so a stream of them costs one fetch.
    oidc.jwks_min_refetch_s = 60.0
    with pytest.raises(SsoError, match="does not publish"):
        await verify(token(k3, "k3"))
    assert idp.jwks_requests == base + 2  # refetched 0 s ago: not again
    # A key the provider withdrew stops being trusted once the cache expires.
    idp.keys = [public_jwk(k2, "k2")]
    oidc.jwks_ttl_s = 0.0
    with pytest.raises(SsoError, match="does not publish"):
        await verify(token(k1, "k1"))
    assert idp.jwks_requests == base + 3


# -- the sealed flow cookie ---------------------------------------------------------------------


def test_flow_cookie_round_trip_and_refusals() -> None:
    key = flows.flow_key(b"k" * 32)
    flow = flows.Flow.start(ISSUER, now=1000.0)
    sealed = flows.seal(key, flow)
    assert flow.verifier not in sealed and flow.nonce not in sealed  # sealed, not signed only
    assert flows.open_flow(key, sealed, flow.state, now=1010.0) == flow
    other = flows.Flow.start(ISSUER, now=1000.0)
    with pytest.raises(flows.FlowError, match="state mismatch"):
        flows.open_flow(key, sealed, other.state, now=1010.0)
    with pytest.raises(flows.FlowError, match="longer than 10 minutes"):
        flows.open_flow(key, sealed, flow.state, now=1000.0 + flows.FLOW_TTL_S + 1)
    with pytest.raises(flows.FlowError, match="not valid"):
        flows.open_flow(flows.flow_key(b"x" * 32), sealed, flow.state, now=1010.0)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(flows.FlowError, match="not valid"):
        flows.open_flow(key, tampered, flow.state, now=1010.0)
    with pytest.raises(flows.FlowError, match="not started in this browser"):
        flows.open_flow(key, None, flow.state, now=1010.0)
    with pytest.raises(flows.FlowError, match="no valid state"):
        flows.open_flow(key, sealed, "short", now=1010.0)


# -- mapping ------------------------------------------------------------------------------------


def test_rules_match_lists_nested_claims_and_any() -> None:
    rules = [
        Rule("realm_access.roles", "gw-admin", "org_admin", 1),
        Rule("groups", "engineering", "member", 2),
        Rule("hd", "acme.test", "member", 3),
        Rule("sub", "*", "member", 4),
    ]
    nested = {"realm_access": {"roles": ["x", "gw-admin"]}, "groups": ["engineering"]}
    assert claim_value(nested, "realm_access.roles") == ["x", "gw-admin"]
    got = map_claims(nested, rules)
    assert got is not None and (got.role, got.organization_id) == ("org_admin", 1)
    got = map_claims({"groups": ["sales", "engineering"]}, rules)
    assert got is not None and got.organization_id == 2
    got = map_claims({"hd": "acme.test"}, rules)
    assert got is not None and got.organization_id == 3
    got = map_claims({"sub": "u1", "groups": []}, rules)
    assert got is not None and got.organization_id == 4
    assert map_claims({"groups": ["sales"]}, rules[:3]) is None
    # Booleans and numbers compare as their JSON text; a flat key with a dot wins over a path.
    assert map_claims({"admin": True}, [Rule("admin", "true", "member", None)]) is not None
    assert claim_value({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
