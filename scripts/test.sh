#!/usr/bin/env bash
# `make test` (and .ci/run): install, then the whole suite on SQLite, then on PostgreSQL + Redis.
set -uo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=1 WITH_BROWSER=1 bash scripts/install.sh || exit 1
source scripts/env.sh
PG_URL="${SWITCHBOARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_TEST_URL="${SWITCHBOARD_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

echo "==> lint (ruff, mypy)"
ruff check backend tests benchmarks frontend_reflex rxconfig.py || exit 1
mypy backend || exit 1

# The suite runs on every core (pytest-xdist; a module stays whole on one worker, see
# tests/conftest.py), then the few timing-sensitive tests (marked `serial`) run alone after it.
JOBS="${SWITCHBOARD_TEST_JOBS:-$(nproc)}"
suite() {
  python -m pytest -q -n "$JOBS" --dist loadscope -m "not serial" "$@"
  local rc=$?
  python -m pytest -q -m serial "$@"
  local rc_serial=$?
  # 5: nothing was selected (e.g. a path given that holds no serial test).
  [ $rc -eq 0 ] || [ $rc -eq 5 ] || return $rc
  [ $rc_serial -eq 0 ] || [ $rc_serial -eq 5 ] || return $rc_serial
  [ $rc -eq 0 ] || [ $rc_serial -eq 0 ] || return 5
}

echo "==> suite 1/2: SQLite, in-process cache and pub/sub"
(unset DATABASE_URL REDIS_URL; suite "$@")
rc1=$?

pg_up() { python - "$PG_URL" "$REDIS_TEST_URL" <<'PY'
import asyncio, sys
async def main():
    import asyncpg, redis.asyncio as r
    c = await asyncpg.connect(sys.argv[1].replace("postgres://", "postgresql://"), timeout=3); await c.close()
    cl = r.from_url(sys.argv[2], socket_connect_timeout=3); await cl.ping(); await cl.aclose()
try:
    asyncio.run(main())
except Exception as e:
    print(f"{type(e).__name__}: {e}"); sys.exit(1)
PY
}
if ! why=$(pg_up); then
  # The machine kind starts these before the session; start them again if they stopped.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -1)" main start >/dev/null 2>&1 || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
  sleep 2
  why=$(pg_up) || { echo "==> suite 2/2 SKIPPED: PostgreSQL/Redis not reachable ($why)"; exit $rc1; }
fi
echo "==> suite 2/2: PostgreSQL + Redis ($PG_URL, $REDIS_TEST_URL)"
(export DATABASE_URL="$PG_URL" REDIS_URL="$REDIS_TEST_URL"; suite "$@")
rc2=$?
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]
