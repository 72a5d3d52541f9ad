# Sourced by the run/test scripts: environment for Reflex on a machine that only reaches registries.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for cand in "$ROOT/.tools/node_modules/bun/bin/bun.exe" "$ROOT/.tools/node_modules/@oven/bun-linux-x64/bin/bun" "$ROOT/.tools/node_modules/@oven/bun-linux-x64-baseline/bin/bun"; do
  if [ -x "$cand" ]; then export REFLEX_BUN_PATH="$cand"; break; fi
done
export REFLEX_TELEMETRY_ENABLED=false REFLEX_CHECK_LATEST_VERSION=0
export REFLEX_HTTP_CLIENT_BIND_ADDRESS=0.0.0.0
export NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)}"
export PATH="$ROOT/.venv/bin:$PATH"
# The Node that scripts/install.sh took from the npm registry when the system's is too old.
if [ -x "$ROOT/.tools/node/node_modules/.bin/node" ]; then export PATH="$ROOT/.tools/node/node_modules/.bin:$PATH"; fi
