"""The browser's two stops at the gateway during a sign-in.

``GET /auth/oidc/login``: a 302 to the provider's authorization endpoint (code flow, PKCE S256,
state and nonce), the flow sealed in a cookie (``backend.sso.flow``).

``GET /auth/oidc/callback?code&state``: the flow opened and checked, the code exchanged (with the
PKCE verifier and the client secret), the id_token verified (``backend.sso.oidc``), the userinfo
claims added, the person signed in (``backend.sso.signin``), then a 302 to the dashboard's
``/sso?ticket=...`` page, which redeems the one-time ticket for a session. A refusal goes to
``/sso?error=<why>`` instead, in words; without a configured dashboard, a small page says it.

Nothing secret is logged: refusals are logged by their message, sign-ins by user id.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from backend.admin.errors import AdminError
from backend.gateway import Gateway
from backend.sso import flow as flows
from backend.sso.config import (
    CALLBACK_PATH,
    LOGIN_PATH,
    ProviderConfig,
    client_for,
    load_config,
    load_rules,
)
from backend.sso.oidc import SsoError, authorization_url
from backend.sso.signin import issue_ticket, sign_in

log = logging.getLogger("switchboard.auth")

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _page(status: int, message: str) -> Response:
    body = (
        "<!doctype html><meta charset=utf-8><title>Sign-in · Switchboard</title>"
        f"<p>{html.escape(message)}</p>"
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


def _to_dashboard(cfg: ProviderConfig, query: str) -> RedirectResponse:
    return RedirectResponse(f"{cfg.dashboard_url}/sso?{query}", status_code=302, headers=NO_STORE)


def _refused(cfg: ProviderConfig, message: str) -> RedirectResponse:
    return _to_dashboard(cfg, "error=" + quote(message[:300], safe=""))


def _flow_key(gateway: Gateway) -> bytes:
    if not gateway.secret_key:
        raise SsoError("the gateway has no secret key: single sign-on cannot run")
    return flows.flow_key(gateway.secret_key)


def sso_routes(gateway: Gateway) -> list[BaseRoute]:
    # ``gateway`` is only read inside the handlers: the authorization audit builds the routes
    # without one.

    async def configured() -> ProviderConfig | Response:
        try:
            cfg = await load_config(gateway)
        except SsoError as exc:
            return _page(503, exc.message)
        if cfg is None or not cfg.enabled:
            return _page(404, "Single sign-on is not set up on this gateway.")
        return cfg

    async def login(request: Request) -> Response:
        cfg = await configured()
        if isinstance(cfg, Response):
            return cfg
        try:
            disc = await client_for(gateway).discover(cfg.issuer)
            key = _flow_key(gateway)
        except SsoError as exc:
            log.warning("SSO sign-in could not start: %s", exc.message)
            return _refused(cfg, exc.message)
        flow = flows.Flow.start(cfg.issuer, gateway.clock().timestamp())
        target = authorization_url(
            disc,
            client_id=cfg.client_id,
            redirect_uri=cfg.callback_url,
            scopes=cfg.scopes,
            state=flow.state,
            nonce=flow.nonce,
            verifier=flow.verifier,
        )
        response = RedirectResponse(target, status_code=302, headers=NO_STORE)
        response.set_cookie(
            flows.cookie_name(flow.state),
            flows.seal(key, flow),
            max_age=flows.FLOW_TTL_S,
            path=flows.COOKIE_PATH,
            secure=cfg.gateway_url.startswith("https://"),
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(request: Request) -> Response:
        cfg = await configured()
        if isinstance(cfg, Response):
            return cfg
        params = request.query_params
        state = params.get("state") or ""
        cookie = flows.cookie_name(state)
        try:
            response = await _finish(cfg, request, state, cookie)
        except (SsoError, flows.FlowError, AdminError) as exc:
            message = exc.message if isinstance(exc, (SsoError, AdminError)) else str(exc)
            log.warning("SSO sign-in refused: %s", message)
            response = _refused(cfg, "Single sign-on failed: " + message)
        if state:
            response.delete_cookie(cookie, path=flows.COOKIE_PATH)
        return response

    async def _finish(cfg: ProviderConfig, request: Request, state: str, cookie: str) -> Response:
        params = request.query_params
        if params.get("error"):
            reason = params["error"][:100]
            detail = (params.get("error_description") or "")[:200]
            raise SsoError(f"the provider refused: {reason}" + (f" ({detail})" if detail else ""))
        flow = flows.open_flow(
            _flow_key(gateway), request.cookies.get(cookie), state, gateway.clock().timestamp()
        )
        if flow.issuer != cfg.issuer:
            raise SsoError("the SSO settings changed during this sign-in: start again")
        answered_by = params.get("iss")
        if answered_by is not None and answered_by != cfg.issuer:
            # RFC 9207: the answer came from another provider (a mix-up attack).
            raise SsoError("the answer came from another issuer than the configured provider")
        code = params.get("code")
        if not code or len(code) > 2000:
            raise SsoError("the provider's answer has no authorization code")
        oidc = client_for(gateway)
        disc = await oidc.discover(cfg.issuer)
        tokens = await oidc.exchange_code(
            disc,
            code=code,
            redirect_uri=cfg.callback_url,
            verifier=flow.verifier,
            client_id=cfg.client_id,
            client_secret=cfg.client_secret,
        )
        claims = await oidc.verify(
            disc, tokens["id_token"], client_id=cfg.client_id, nonce=flow.nonce
        )
        access = tokens.get("access_token")
        if isinstance(access, str) and access:
            # Many providers put email and groups only in userinfo; the id_token's claims win.
            claims = await oidc.userinfo(disc, access, claims["sub"]) | claims
        now = gateway.clock()
        user = await sign_in(gateway, cfg, await load_rules(), claims, now=now)
        ticket = await issue_ticket(user, now=now)
        log.info("SSO sign-in of user %s", user.id)
        return _to_dashboard(cfg, "ticket=" + quote(ticket, safe=""))

    return [
        Route(LOGIN_PATH, login, methods=["GET"]),
        Route(CALLBACK_PATH, callback, methods=["GET"]),
    ]
