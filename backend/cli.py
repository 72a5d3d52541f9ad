"""The ``switchboard`` command: serve, migrate, bootstrap, rotate-key.

Every failure a user can cause (bad arguments, bad input, an unreachable database, a port in use)
ends as ONE line on stderr, ``switchboard <command>: error: ...``, and exit code 2; ``--debug``
adds the traceback. Database URLs are shown without their password.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
import sys
import traceback
from typing import NoReturn
from urllib.parse import urlsplit

from backend.config import Settings
from backend.observability.logs import (
    LogFormat,
    configure_logging,
    logging_config,
    parse_log_format,
)

EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage block is behind ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def database_label(url: str) -> str:
    """``url`` without password, query or fragment: safe to print, still names the database."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
        authority = f"{userinfo.partition(':')[0]}@{hostport}"
    return f"{scheme}{sep}{authority}{slash}{path}"


def one_line(exc: BaseException, *secrets: str | None) -> str:
    """A one-line description of ``exc`` with every given secret blanked out."""
    message = " ".join(str(exc).split())
    from backend.admin.errors import AdminError

    if not isinstance(exc, (AdminError, CliError)):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except Exception as exc:  # pydantic and conversion errors alike: one line, not a dump
        raise CliError(f"invalid setting in the environment: {one_line(exc)}") from exc


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


async def _migrate(settings: Settings) -> None:
    from backend.data.db import migrate

    try:
        await migrate(settings.database_url)
    except Exception as exc:
        url = settings.database_url
        raise CliError(
            f"cannot migrate {database_label(url)}: {one_line(exc, _password_of(url))}"
        ) from exc


def _check_listen(host: str, port: int) -> None:
    """Refuse a port that cannot be bound now, before migrating and starting the workers."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise CliError(f"cannot listen on {host}:{port}: {reason}") from exc


def _serve(args: argparse.Namespace) -> int:
    import functools

    import uvicorn

    from backend.observability.multiproc import prepare_multiprocess_dir
    from backend.security.http_limits import BoundedHttpToolsProtocol

    settings = _settings()
    if args.workers > 1 and not settings.redis_url:
        # Each worker is its own process: without Redis they would not share caps, config
        # changes or live logs.
        raise CliError("--workers > 1 needs REDIS_URL (shared budget, cache and events)")
    _check_listen(args.host, args.port)
    asyncio.run(_migrate(settings))
    # Before any worker imports prometheus-client: the workers' metrics meet in this directory.
    prepare_multiprocess_dir(args.workers, os.environ)
    # uvicorn re-raises SIGTERM after its graceful shutdown; a no-op handler makes that a
    # clean exit 0 (in-flight requests finished, logs flushed) instead of death by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    print(
        f"Switchboard gateway on http://{args.host}:{args.port} (workers: {args.workers}, "
        f"database: {database_label(settings.database_url)})",
        flush=True,
    )
    log_level = "DEBUG" if args.log_level == "trace" else args.log_level
    if args.server == "granian":
        from backend import serve_granian

        serve_granian.serve(
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=logging_config(settings.log_format, log_level),
            max_head_bytes=settings.max_header_bytes,
            head_timeout_s=settings.header_timeout_s,
            shutdown_grace_s=settings.shutdown_grace_s,
        )
        return 0
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
        # The process's logging (format, SWITCHBOARD_LOG_FORMAT) for uvicorn's lines too, and
        # applied again in each worker process, which does not run main().
        log_config=logging_config(
            settings.log_format, "DEBUG" if args.log_level == "trace" else args.log_level
        ),
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


def _migrate_cmd(_args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(_migrate(settings))
    print(f"migrations applied to {database_label(settings.database_url)}")
    return 0


async def _bootstrap(settings: Settings, email: str, password: str, name: str | None) -> str:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.db import close_db, init_db

    await _migrate(settings)
    await init_db(settings.database_url)
    try:
        user, secret = await bootstrap_super_admin(email, password, name)
    finally:
        await close_db()
    print(f"super_admin {user.email} ready (id {user.id}); a new API key follows:")
    return secret


def _bootstrap_cmd(args: argparse.Namespace) -> int:
    from backend.admin import validate
    from backend.security.passwords import password_problem

    # Checked before the database is touched: a typo must not cost a migration.
    validate.email(args.email, "--email")
    if problem := password_problem(args.password):
        raise CliError(f"--password {problem}")
    secret = asyncio.run(_bootstrap(_settings(), args.email, args.password, args.name))
    # Running instances pick the new key up on their next config reload; the key is the last line.
    print(secret)
    return 0


async def _rotate(settings: Settings, new_secret: str) -> int:
    from backend.data.db import close_db, init_db
    from backend.providers.credentials import rotate_key
    from backend.security.crypto import derive_key, load_or_create_secret_key

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
        raise CliError("pass --new-key or set SWITCHBOARD_NEW_SECRET_KEY")
    count = asyncio.run(_rotate(_settings(), new_secret))
    print(f"re-encrypted {count} credential(s); now set SWITCHBOARD_SECRET_KEY to the new key")
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


_port.__name__ = "port"  # argparse names the type in "invalid port value: 'x'"
_positive.__name__ = "count"


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before and after the command; SUPPRESS keeps a subcommand's absent
    # flag from overwriting the one given before it.
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on error, print the traceback too (default: off)",
    )
    parser = _Parser(
        prog="switchboard",
        description="Switchboard LLM gateway. Settings come from the environment (README, "
        "Configuration): DATABASE_URL, REDIS_URL, SWITCHBOARD_*.",
        parents=[debug],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        parents=[debug],
        help="run the gateway (migrates the database first)",
        description="Apply pending migrations, then serve the OpenAI/Anthropic endpoints, "
        "/graphql and /healthz until SIGTERM (in-flight requests finish first).",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes; more than 1 needs REDIS_URL (default: %(default)s)",
    )
    serve.add_argument(
        "--server",
        default="uvicorn",
        choices=["uvicorn", "granian"],
        help="ASGI server: uvicorn (httptools, our head limits) or granian (Rust); "
        "benchmarks/README.md compares them (default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="server log level (default: %(default)s)",
    )
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser(
        "migrate",
        parents=[debug],
        help="apply database migrations (idempotent)",
        description="Apply pending migrations to DATABASE_URL (default: SQLite in "
        "SWITCHBOARD_DATA_DIR) and name the database migrated, without its password.",
    )
    migrate.set_defaults(func=_migrate_cmd)

    boot = sub.add_parser(
        "bootstrap",
        parents=[debug],
        help="create or update a super_admin and print a new API key",
        description="Create the super_admin EMAIL (or make an existing user one, with this "
        "password) and print a new API key for it as the last line. Idempotent for the user; "
        "every run adds a key.",
    )
    boot.add_argument("--email", required=True, help="the super_admin's login (required)")
    boot.add_argument(
        "--password", required=True, help="the super_admin's password, 8+ characters (required)"
    )
    boot.add_argument(
        "--name", default=None, help="display name (default: the part of the email before @)"
    )
    boot.set_defaults(func=_bootstrap_cmd)

    rot = sub.add_parser(
        "rotate-key",
        parents=[debug],
        help="re-encrypt stored credentials under a new secret key",
        description="Re-encrypt every stored provider credential from the current secret key "
        "(SWITCHBOARD_SECRET_KEY, else data/secret.key) to a new one; then restart with "
        "SWITCHBOARD_SECRET_KEY set to it.",
    )
    rot.add_argument(
        "--new-key",
        default=None,
        help="the new secret key (default: $SWITCHBOARD_NEW_SECRET_KEY, which keeps it out of "
        "the process list)",
    )
    rot.set_defaults(func=_rotate_cmd)
    return parser


def _log_format() -> LogFormat:
    try:
        return parse_log_format(os.environ.get("SWITCHBOARD_LOG_FORMAT"))
    except ValueError:
        return "text"  # reading the settings reports it, as a one-line error


def _configure_logging() -> None:
    # Quiet loggers (httpx, tortoise) and the format are in observability/logs.py.
    configure_logging(_log_format())


def _secrets(args: argparse.Namespace) -> list[str | None]:
    """Everything secret this run was given, so no error message can echo it."""
    env = os.environ
    return [
        getattr(args, "password", None),
        getattr(args, "new_key", None),
        env.get("SWITCHBOARD_NEW_SECRET_KEY"),
        env.get("SWITCHBOARD_SECRET_KEY"),
        _password_of(env.get("DATABASE_URL", "")),
        _password_of(env.get("REDIS_URL", "")),
    ]


def main(argv: list[str] | None = None) -> int:
    _configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        message = one_line(exc, *_secrets(args))
        print(f"switchboard {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
