#!/usr/bin/env bash
# Installs everything the gateway, the dashboard and the tests need, idempotently.
# Only package registries are used (PyPI, npm, Debian): see ../shared/notes/reflex-offline.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_BROWSER="${WITH_BROWSER:-0}"

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev,dashboard]'
  touch "$stamp"
fi

# Reflex needs bun; its own installer downloads from outside, so take bun from the npm registry.
# npm's postinstall moves the binary to bun/bin/bun.exe; other layouts keep it under @oven/.
if [ ! -x .tools/node_modules/bun/bin/bun.exe ] && [ ! -x .tools/node_modules/@oven/bun-linux-x64/bin/bun ] && [ ! -x .tools/node_modules/@oven/bun-linux-x64-baseline/bin/bun ]; then
  echo "==> installing bun from the npm registry"
  npm install --prefix .tools --no-audit --no-fund --silent bun@1.4.4
fi

if [ "$WITH_BROWSER" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
