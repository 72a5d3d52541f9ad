"""The ``switchboard`` command: serve, migrate, bootstrap, rotate-key."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from backend.config import Settings


def _serve(args: argparse.Namespace) -> int:
    import functools

    import uvicorn

    from backend.security.http_limits import BoundedHttpToolsProtocol

    settings = Settings.from_env()
    if args.workers > 1 and not settings.redis_url:
        # Each worker is its own process: without Redis they would not share caps, config
        # changes or live logs.
        print(
            "error: --workers > 1 needs REDIS_URL (shared budget, cache and events)",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_migrate(settings))
    # uvicorn re-raises SIGTERM after its graceful shutdown; a no-op handler makes that a
    # clean exit 0 (in-flight requests finished, logs flushed) instead of death by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    print(
        f"Switchboard gateway on http://{args.host}:{args.port} (workers: {args.workers})",
        flush=True,
    )
    uvicorn.run(
        "backend.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        # httptools, with a bound on each request head's size and read time (http_limits).
        # uvicorn calls whatever it is given with the protocol's arguments; its type hint
        # names only classes, so the partial that carries our limits needs the ignore.
        http=functools.partial(  # type: ignore[arg-type]
            BoundedHttpToolsProtocol,
            max_head_bytes=settings.max_header_bytes,
            head_timeout_s=settings.header_timeout_s,
        ),
        log_level=args.log_level,
        access_log=False,
        # Nothing reads the client address (keys identify callers), so uvicorn's
        # X-Forwarded-For rewriting would be a middleware layer of pure overhead per request.
        proxy_headers=False,
        # The only WebSocket is /graphql: the server itself refuses a larger frame (1009), so
        # an oversized message is never buffered whole.
        ws_max_size=settings.graphql_max_body_bytes,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        lifespan="on",
    )
    return 0


async def _migrate(settings: Settings) -> None:
    from backend.data.db import migrate

    await migrate(settings.database_url)


def _migrate_cmd(_args: argparse.Namespace) -> int:
    asyncio.run(_migrate(Settings.from_env()))
    print("migrations applied")
    return 0


async def _bootstrap(email: str, password: str, name: str | None) -> str:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.db import close_db, init_db

    settings = Settings.from_env()
    await _migrate(settings)
    await init_db(settings.database_url)
    try:
        user, secret = await bootstrap_super_admin(email, password, name)
    finally:
        await close_db()
    print(f"super_admin {user.email} ready (id {user.id}); a new API key follows:")
    return secret


def _bootstrap_cmd(args: argparse.Namespace) -> int:
    if len(args.password) < 8:
        print("error: --password must be at least 8 characters", file=sys.stderr)
        return 2
    secret = asyncio.run(_bootstrap(args.email, args.password, args.name))
    # Running instances pick the new key up on their next config reload; the key is the last line.
    print(secret)
    return 0


async def _rotate(new_secret: str) -> int:
    from backend.data.db import close_db, init_db
    from backend.providers.credentials import rotate_key
    from backend.security.crypto import derive_key, load_or_create_secret_key

    settings = Settings.from_env()
    old_secret = load_or_create_secret_key(
        settings.data_dir, settings.secret_key, logging.getLogger()
    )
    await init_db(settings.database_url)
    try:
        count = await rotate_key(derive_key(old_secret), derive_key(new_secret))
    finally:
        await close_db()
    return count


def _rotate_cmd(args: argparse.Namespace) -> int:
    new_secret = args.new_key or os.environ.get("SWITCHBOARD_NEW_SECRET_KEY")
    if not new_secret:
        print("error: pass --new-key or set SWITCHBOARD_NEW_SECRET_KEY", file=sys.stderr)
        return 2
    count = asyncio.run(_rotate(new_secret))
    print(f"re-encrypted {count} credential(s); now set SWITCHBOARD_SECRET_KEY to the new key")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One INFO line per upstream call would cost time on the hot path and flood the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate_cmd)
    boot = sub.add_parser(
        "bootstrap", help="create or update a super_admin and print a new API key"
    )
    boot.add_argument("--email", required=True)
    boot.add_argument("--password", required=True)
    boot.add_argument("--name", default=None)
    boot.set_defaults(func=_bootstrap_cmd)
    rot = sub.add_parser("rotate-key", help="re-encrypt stored credentials under a new secret key")
    rot.add_argument("--new-key", default=None)
    rot.set_defaults(func=_rotate_cmd)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
