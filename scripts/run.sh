#!/usr/bin/env bash
# `make run`: install, migrate, create the first super_admin if none, start gateway + dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/env.sh

GATEWAY_PORT="${GATEWAY_PORT:-8000}"
DASHBOARD_PORT="${DASHBOARD_PORT:-3000}"
HOST="${HOST:-127.0.0.1}"
mkdir -p data
switchboard migrate >/dev/null

creds=data/first-login.txt
if [ ! -f "$creds" ]; then
  password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
  key="$(switchboard bootstrap --email admin@switchboard.local --password="$password" --name Admin | tail -n 1)"
  umask 077
  printf 'email: admin@switchboard.local\npassword: %s\napi key: %s\n' "$password" "$key" > "$creds"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

switchboard serve --host "$HOST" --port "$GATEWAY_PORT" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://$HOST:$GATEWAY_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

export SWITCHBOARD_GATEWAY_URL="http://$HOST:$GATEWAY_PORT"
( python -m reflex run --env prod --frontend-port "$DASHBOARD_PORT" --backend-port "$DASHBOARD_PORT" --backend-host "$HOST" --loglevel warning ) &
pids+=($!)

cat <<MSG

  Switchboard is starting.
    Gateway (OpenAI/Anthropic endpoints, GraphQL at /graphql):  http://$HOST:$GATEWAY_PORT
    Dashboard:                                                   http://$HOST:$DASHBOARD_PORT
  First login (also in $creds, readable only by you):
$(sed 's/^/    /' "$creds")

  The CLI:  .venv/bin/switchboard --help   (or: source .venv/bin/activate; switchboard --help)
  Point an SDK at it:  OPENAI_BASE_URL=http://$HOST:$GATEWAY_PORT/v1  ANTHROPIC_BASE_URL=http://$HOST:$GATEWAY_PORT
  Providers come from OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, OLLAMA_BASE_URL (or the dashboard).
  Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
