#!/usr/bin/env bash
# Installs what `make run` needs (gateway, dashboard, GraphiQL's files, a Node that Reflex
# accepts), idempotently; WITH_TESTS=1 (`make test`) adds the test tools (pytest, Playwright,
# schemathesis, the SDKs, ruff, mypy) and WITH_BROWSER=1 Debian's chromium.
# Only package registries are used (PyPI, npm, Debian): see ../shared/notes/reflex-offline.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS="${WITH_TESTS:-0}"
WITH_BROWSER="${WITH_BROWSER:-0}"

# Versions fetched from the npm registry. Node: Reflex 0.10 wants >= 22.22 (older Nodes get an
# "out of date" warning on every start). GraphiQL 3 and React 18 are the last with UMD builds,
# which a page can load with plain <script> tags (backend/graphql/ide.py).
NODE_VERSION=22.23.3
NODE_MIN=22.22.0
BUN_VERSION=1.4.4
GRAPHIQL_PACKAGES=(graphiql@3.8.3 react@18.3.1 react-dom@18.3.1 @graphiql/plugin-explorer@1.0.2 graphql@16.11.0)
# Claude Code, run by tests/e2e/test_claude_code.py against the gateway (test installs only).
CLAUDE_CODE_VERSION=2.1.332
# Codex CLI and Gemini CLI, run by tests/e2e/test_codex_cli.py and test_gemini_cli.py (test installs
# only). Codex ships a native binary; Gemini CLI runs on the Node below (it wants >= 20).
CODEX_VERSION=0.171.0
GEMINI_CLI_VERSION=0.61.0
# panva's certified OpenID provider, run by the SSO tests (tests/sso/oidc_provider.mjs; test installs
# only).
OIDC_PROVIDER_VERSION=9.13.3

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11 if it is not python3)" >&2
  exit 2
fi
if ! command -v npm >/dev/null; then
  echo "error: npm is needed (e.g. apt-get install nodejs npm); it installs bun, Node 22 and GraphiQL" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
hash="$(sha1sum pyproject.toml | cut -c1-12)"
if [ "$WITH_TESTS" = "1" ]; then extras="dev,dashboard" stamp=".venv/.installed-test-$hash"
else extras="dashboard" stamp=".venv/.installed-run-$hash"; fi
# A test install holds everything a run install does.
if [ ! -f "$stamp" ] && [ ! -f ".venv/.installed-test-$hash" ]; then
  echo "==> installing Python packages (.[$extras])"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[$extras]"
  touch "$stamp"
fi

# Reflex needs bun; its own installer downloads from outside, so take bun from the npm registry.
# npm's postinstall moves the binary to bun/bin/bun.exe; other layouts keep it under @oven/.
if [ ! -x .tools/node_modules/bun/bin/bun.exe ] && [ ! -x .tools/node_modules/@oven/bun-linux-x64/bin/bun ] && [ ! -x .tools/node_modules/@oven/bun-linux-x64-baseline/bin/bun ]; then
  echo "==> installing bun from the npm registry"
  npm install --prefix .tools --no-audit --no-fund --silent "bun@$BUN_VERSION"
fi

# A Node that Reflex accepts, from the npm registry's `node` package, when the system's is older.
# scripts/env.sh puts it first on PATH.
system_node="$(node --version 2>/dev/null | sed 's/^v//' || true)"
if [ -z "$system_node" ] || [ "$(printf '%s\n%s\n' "$NODE_MIN" "$system_node" | sort -V | head -1)" != "$NODE_MIN" ]; then
  if [ "$(.tools/node/node_modules/.bin/node --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    echo "==> installing Node $NODE_VERSION from the npm registry (system Node: ${system_node:-none})"
    npm install --prefix .tools/node --no-audit --no-fund --silent "node@$NODE_VERSION"
  fi
fi

# GraphiQL's files, served by the gateway itself at /graphql (no CDN).
graphiql_stamp=".tools/graphiql/.installed-$(echo "${GRAPHIQL_PACKAGES[*]}" | sha1sum | cut -c1-12)"
if [ ! -f "$graphiql_stamp" ]; then
  echo "==> installing GraphiQL from the npm registry"
  npm install --prefix .tools/graphiql --no-audit --no-fund --silent --no-save "${GRAPHIQL_PACKAGES[@]}"
  touch "$graphiql_stamp"
fi

# The real Claude Code CLI for the coding-agent e2e tests; its package ships a native binary.
if [ "$WITH_TESTS" = "1" ] && [ "$(.tools/claude-code/node_modules/.bin/claude --version 2>/dev/null | cut -d' ' -f1)" != "$CLAUDE_CODE_VERSION" ]; then
  echo "==> installing Claude Code $CLAUDE_CODE_VERSION from the npm registry (tests)"
  npm install --prefix .tools/claude-code --no-audit --no-fund --silent "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi
if [ "$WITH_TESTS" = "1" ] && [ "$(.tools/codex/node_modules/.bin/codex --version 2>/dev/null | cut -d' ' -f2)" != "$CODEX_VERSION" ]; then
  echo "==> installing Codex CLI $CODEX_VERSION from the npm registry (tests)"
  npm install --prefix .tools/codex --no-audit --no-fund --silent "@openai/codex@$CODEX_VERSION"
fi
if [ "$WITH_TESTS" = "1" ] && [ "$(PATH="$PWD/.tools/node/node_modules/.bin:$PATH" .tools/gemini-cli/node_modules/.bin/gemini --version 2>/dev/null)" != "$GEMINI_CLI_VERSION" ]; then
  echo "==> installing Gemini CLI $GEMINI_CLI_VERSION from the npm registry (tests)"
  npm install --prefix .tools/gemini-cli --no-audit --no-fund --silent "@google/gemini-cli@$GEMINI_CLI_VERSION"
fi

if [ "$WITH_TESTS" = "1" ] && [ "$(node -p "require('./.tools/oidc-provider/node_modules/oidc-provider/package.json').version" 2>/dev/null)" != "$OIDC_PROVIDER_VERSION" ]; then
  echo "==> installing oidc-provider $OIDC_PROVIDER_VERSION from the npm registry (tests)"
  npm install --prefix .tools/oidc-provider --no-audit --no-fund --silent --save-exact "oidc-provider@$OIDC_PROVIDER_VERSION"
fi

if [ "$WITH_BROWSER" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
