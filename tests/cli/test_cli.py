"""The ``switchboard`` command as a user meets it: help that says what and which default, errors
that are one line with exit code 2 (a traceback only with ``--debug``), ``migrate`` naming the
database without its password, and no ``Tortoise-ORM shutdown`` chatter.

Each case runs the real command in a subprocess (``python -m backend.cli``, what the console
script calls), with its own data directory."""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from backend.cli import build_parser, database_label
from tests.dbutil import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("serve", "migrate", "bootstrap", "rotate-key")


def run_cli(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SWITCHBOARD_NEW_SECRET_KEY")
    }
    full_env |= {"SWITCHBOARD_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    full_env |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=data_dir,
        timeout=timeout,
    )


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_subcommand_has_a_description_and_every_option_a_default_or_required() -> None:
    parser = build_parser()
    subs = _subparsers(parser)
    assert set(subs) == set(COMMANDS)
    for name, sub in subs.items():
        assert sub.description and len(sub.description) > 30, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            assert "default:" in text or "(required)" in text, (name, action.option_strings)


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help_shows_description_and_defaults(command: str, tmp_path: Path) -> None:
    done = run_cli(command, "--help", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    parser = _subparsers(build_parser())[command]
    assert parser.description is not None
    first_words = " ".join(parser.description.split()[:4])
    assert first_words in " ".join(done.stdout.split())
    if command == "serve":
        assert "(default: 8000)" in done.stdout and "(default: 127.0.0.1)" in done.stdout


def test_top_level_help_lists_each_subcommand_with_its_purpose(tmp_path: Path) -> None:
    done = run_cli("--help", data_dir=tmp_path)
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout
    assert "print a new API key" in done.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


BAD_INPUT = {
    "bad email": (["bootstrap", "--email", "bad", "--password", "longenough123"], {}, "--email"),
    "short password": (["bootstrap", "--email", "a@b.co", "--password", "short"], {}, "8"),
    "no command": ([], {}, "COMMAND"),
    "unknown option": (["migrate", "--bogus"], {}, "--bogus"),
    "bad port": (["serve", "--port", "x"], {}, "--port"),
    "bad log level": (["serve", "--log-level", "loud"], {}, "--log-level"),
    "workers without redis": (["serve", "--workers", "2"], {}, "REDIS_URL"),
    "setting out of range": (
        ["migrate"],
        {"SWITCHBOARD_RESERVE_WEB_SEARCHES": "0"},
        "SWITCHBOARD_RESERVE_WEB_SEARCHES='0': Input should be greater than or equal to 1",
    ),
    "rotate without key": (["rotate-key"], {}, "SWITCHBOARD_NEW_SECRET_KEY"),
    "bad setting": (
        ["migrate"],
        {"SWITCHBOARD_MAX_BODY_BYTES": "lots"},
        "SWITCHBOARD_MAX_BODY_BYTES must be a whole number, not 'lots'",
    ),
    "unreachable database": (
        ["migrate"],
        {"DATABASE_URL": "postgres://postgres:hunter2secret@127.0.0.1:1/prod"},
        "postgres://postgres@127.0.0.1:1/prod",
    ),
    "unreachable database on bootstrap": (
        ["bootstrap", "--email", "a@b.co", "--password", "longenough123"],
        {"DATABASE_URL": "postgres://postgres:hunter2secret@127.0.0.1:1/prod"},
        "postgres://postgres@127.0.0.1:1/prod",
    ),
}


def _assert_one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "error:" in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "hunter2secret" not in done.stderr + done.stdout


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    args, env, needle = BAD_INPUT[case]
    _assert_one_line_error(run_cli(*args, data_dir=tmp_path, env=env), needle)


def test_port_in_use_is_one_line_exit_2(busy_port: int, tmp_path: Path) -> None:
    done = run_cli("serve", "--port", str(busy_port), data_dir=tmp_path)
    _assert_one_line_error(done, "address already in use")


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    done = run_cli(
        "--debug", "bootstrap", "--email", "bad", "--password", "longenough123", data_dir=tmp_path
    )
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("switchboard bootstrap: error:")
    after = run_cli(
        "bootstrap", "--email", "bad", "--password", "longenough123", "--debug", data_dir=tmp_path
    )
    assert "Traceback" in after.stderr


async def test_migrate_names_the_database_without_password(tmp_path: Path) -> None:
    url = await create_database(tmp_path)
    try:
        # PostgreSQL here runs with trust auth, so a password in the URL is accepted and ignored.
        shown = url.replace("postgres://postgres@", "postgres://postgres:s3cretpw@", 1)
        done = run_cli("migrate", data_dir=tmp_path, env={"DATABASE_URL": shown})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"migrations applied to {database_label(shown)}"
        assert database_label(shown) == url
        assert "s3cretpw" not in done.stdout + done.stderr
        assert "Tortoise-ORM shutdown" not in done.stdout + done.stderr
    finally:
        await drop_database(url)


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"not an SQLite file, " * 64)


def _conflicting_table(path: Path) -> None:
    # A table the first migration creates, with other columns: its CREATE TABLE fails.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE agent_configs (x TEXT)")
        conn.commit()


@pytest.mark.parametrize(
    ("prepare", "needle"),
    [
        (_not_a_database, "file is not a database"),
        (_conflicting_table, 'table "agent_configs" already exists'),
    ],
    ids=["not a database", "conflicting table"],
)
def test_migrate_failure_exits_2_promptly(
    prepare: Callable[[Path], None], needle: str, tmp_path: Path
) -> None:
    # Both hung: the first on a query lock Tortoise never released, the second on the open
    # SQLite connection's thread after the error was printed. SQLite on purpose: PostgreSQL
    # failures exited already (the unreachable-database cases above).
    path = tmp_path / "bad.sqlite3"
    prepare(path)
    done = run_cli(
        "migrate", data_dir=tmp_path, env={"DATABASE_URL": f"sqlite:///{path}"}, timeout=30
    )
    _assert_one_line_error(done, needle)
    assert f"cannot migrate sqlite:///{path}" in done.stderr


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
async def test_migrate_conflict_on_postgres_exits_2_without_password(tmp_path: Path) -> None:
    url = await create_database(tmp_path)
    try:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute("CREATE TABLE agent_configs (x TEXT)")
        finally:
            await conn.close()
        shown = url.replace("postgres://postgres@", "postgres://postgres:hunter2secret@", 1)
        done = run_cli("migrate", data_dir=tmp_path, env={"DATABASE_URL": shown}, timeout=30)
        _assert_one_line_error(done, f"cannot migrate {url}")
        assert "agent_configs" in done.stderr
    finally:
        await drop_database(url)


def test_bootstrap_prints_no_orm_chatter(tmp_path: Path) -> None:
    done = run_cli(
        "bootstrap", "--email", "a@b.co", "--password", "longenough123", data_dir=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("sb-")
    assert "Tortoise-ORM shutdown" not in done.stderr


@pytest.mark.parametrize(
    ("url", "label"),
    [
        (
            "postgres://u:pw@db.example:5432/app?sslmode=require&password=x",
            "postgres://u@db.example:5432/app",
        ),
        ("postgres://u@h/app", "postgres://u@h/app"),
        ("sqlite:////abs/path/sb.sqlite3", "sqlite:////abs/path/sb.sqlite3"),
        ("postgres://u:p@ss@h/app", "postgres://u@h/app"),
    ],
)
def test_database_label(url: str, label: str) -> None:
    assert database_label(url) == label


def test_make_run_bootstraps_with_a_password_that_starts_with_a_dash(tmp_path: Path) -> None:
    """``make run`` generates the first admin's password with ``secrets.token_urlsafe``, which
    starts with ``-`` about one time in 32: passed as a separate word, argparse read it as an
    option and ``make run`` failed ("--password: expected one argument"). scripts/run.sh passes
    it as ``--password=...``, which this call mirrors."""
    run_sh = (ROOT / "scripts" / "run.sh").read_text()
    assert '--password="$password"' in run_sh
    done = run_cli("bootstrap", "--email", "a@b.co", "--password=-dashfirst123", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
