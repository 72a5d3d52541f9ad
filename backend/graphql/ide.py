"""GraphiQL from the gateway's own files: ``GET /graphql`` works on a machine without internet.

The JavaScript and CSS come from the npm registry at install time (``scripts/install.sh`` puts
the packages below ``.tools/graphiql/node_modules``, git-ignored) and are served under
``/graphql/assets/<name>``; the page names nothing outside the gateway, and its
Content-Security-Policy tells the browser to load nothing from elsewhere either. Without the
files the page says how to install them (the GraphQL API itself needs none of this).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

#: npm packages scripts/install.sh installs (the versions live there), and the file each
#: served name maps to. React 18 is the last with UMD builds, GraphiQL 3 the last with one.
ASSETS: Mapping[str, str] = MappingProxyType(
    {
        "react.js": "react/umd/react.production.min.js",
        "react-dom.js": "react-dom/umd/react-dom.production.min.js",
        "graphiql.js": "graphiql/graphiql.min.js",
        "graphiql.css": "graphiql/graphiql.min.css",
        "explorer.js": "@graphiql/plugin-explorer/dist/index.umd.js",
        "explorer.css": "@graphiql/plugin-explorer/dist/style.css",
    }
)

_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# Only the gateway itself: scripts, styles, the GraphQL endpoint (HTTP and WebSocket).
# GraphiQL sets inline styles and uses data: URIs for icons.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# A Python string rather than a data file, so no packaging step can leave it behind.
_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Switchboard GraphQL</title>
    <!-- Every file below is served by the gateway itself (backend/graphql/ide.py): no CDN. -->
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="graphql/assets/graphiql.css" />
    <link rel="stylesheet" href="graphql/assets/explorer.css" />
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; display: flex; }
    </style>
    <script src="graphql/assets/react.js"></script>
    <script src="graphql/assets/react-dom.js"></script>
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading…</div>
    <script src="graphql/assets/graphiql.js"></script>
    <script src="graphql/assets/explorer.js"></script>
    <script>
      // Sign in with the login mutation, then put {"Authorization": "Bearer <token>"} in Headers.
      const EXAMPLE_QUERY = `# Switchboard admin API.
#
# 1. Run the login mutation below (Ctrl-Enter) with your email and password.
# 2. Open "Headers" and set: {"Authorization": "Bearer <the token>"}
# 3. Query away, e.g. { me { email role } }. The Docs panel lists every type and field.
mutation {
  login(email: "admin@switchboard.local", password: "...") { token expiresAt }
}
`;
      const url = window.location.href.split("?")[0].split("#")[0];
      const wsUrl = new URL(url);
      wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
      const fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: wsUrl.toString() });
      const explorer = GraphiQLPluginExplorer.explorerPlugin();
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {
          fetcher: fetcher,
          defaultQuery: EXAMPLE_QUERY,
          plugins: [explorer],
          defaultEditorToolsVisibility: true,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: true,
          inputValueDeprecation: true,
        }),
      );
    </script>
  </body>
</html>
"""


def default_assets_dir() -> Path:
    """``.tools/graphiql/node_modules`` of the checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / ".tools" / "graphiql" / "node_modules"


class GraphiQLAssets:
    """The explorer page and its files, read from ``root`` (an npm ``node_modules``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_assets_dir()

    def missing(self) -> list[str]:
        return [rel for rel in ASSETS.values() if not (self.root / rel).is_file()]

    def page(self) -> Response:
        missing = self.missing()
        if missing:
            return HTMLResponse(_not_installed(missing), status_code=503)
        return HTMLResponse(
            _PAGE,
            headers={"content-security-policy": CONTENT_SECURITY_POLICY},
        )

    async def serve(self, request: Request) -> Response:
        """``GET /graphql/assets/{name}``: one of ``ASSETS``, nothing else of the folder."""
        rel = ASSETS.get(request.path_params.get("name", ""))
        if rel is None or not (self.root / rel).is_file():
            return PlainTextResponse("Not Found", status_code=404)
        path = self.root / rel
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES[path.suffix],
            # The files change only with an install; a day of caching spares the reloads.
            headers={"cache-control": "public, max-age=86400"},
        )


def _not_installed(missing: list[str]) -> str:
    files = "".join(f"<li><code>{name}</code></li>" for name in missing)
    return (
        "<!doctype html><html><head><title>Switchboard GraphQL</title></head><body>"
        "<h1>GraphiQL is not installed</h1>"
        "<p>The GraphQL API works (<code>POST /graphql</code>); only the in-browser explorer "
        "is missing. It is installed from the npm registry by <code>bash scripts/install.sh"
        "</code> (part of <code>make run</code>) into <code>.tools/graphiql</code>. Missing:</p>"
        f"<ul>{files}</ul></body></html>"
    )
