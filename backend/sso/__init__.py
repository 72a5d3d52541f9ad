"""Single sign-on with OpenID Connect (authorization code + PKCE), for the dashboard and GraphQL.

- ``oidc``: the provider's discovery document, its signing keys (JWKS, refetched when a token
  names a key not seen yet), the code exchange and id_token verification.
- ``flow``: what the browser carries between the two legs (state, nonce, PKCE verifier), sealed.
- ``mapping``: claims -> role and organization (pure).
- ``signin``: the signed-in person -> a gateway user (linked, created, updated) and a one-time
  ticket the dashboard redeems for a session.
- ``config``: the provider settings and mapping rules (admin API).
- ``routes``: ``GET /auth/oidc/login`` and ``GET /auth/oidc/callback``.
"""
