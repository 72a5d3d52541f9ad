"""The newcomer path (issue 16 must-show 3): a fresh clone, ``make run`` on free ports, the key it
prints used by the official OpenAI SDK against a fake upstream, ``switchboard --help`` and each
command's help, bad CLI input answered with one-line errors and exit code 2, GraphiQL rendering
in Chromium while every request to a non-loopback host is blocked, the dashboard answering, and
a clean work tree once ``make run`` is stopped.

What is reused, to keep this within a few minutes (a cold install downloads ~650 MB):
- Python packages: the clone gets its OWN ``.venv`` (``scripts/install.sh`` would create it the
  same way), plus a ``.pth`` file that puts this checkout's ``.venv`` site-packages on its path.
  ``make run``'s install step then really runs ``pip install -e '.[dashboard]'`` in the clone:
  pip resolves every runtime dependency as already installed and installs the clone itself
  (editable), so the gateway, the CLI and the dashboard run the clone's code. Nothing is written
  to this checkout's ``.venv`` (pip never uninstalls outside the environment it installs into).
- npm tools: ``.tools`` is a symlink to this checkout's ``.tools`` (bun, Node 22, GraphiQL, all
  installed by ``scripts/install.sh`` before the suite); the install step's checks run and find
  them. Everything else (``.web``, ``data/``, migrations, the first super_admin) is the clone's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.browser.stack import CHROMIUM, CHROMIUM_ARGS
from tests.fakes.base import Reply, free_port
from tests.fakes.openai_fake import OpenAIFake

ROOT = Path(__file__).resolve().parents[2]
# make run's first start: installs, migrations, Reflex's production build (measured ~30-60 s
# here; far longer on a loaded machine).
START_DEADLINE_S = 240.0
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class Newcomer:
    clone: Path
    env: dict[str, str]
    gateway_port: int
    dashboard_port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    fake: OpenAIFake
    started_at: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.clone / ".venv" / "bin" / "switchboard"), *args],
            cwd=self.clone,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def _newcomer_env(gateway_port: int, dashboard_port: int, fake: OpenAIFake) -> dict[str, str]:
    """A shell as a newcomer has it: none of this suite's settings, no venv on PATH."""
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SWITCHBOARD_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "OLLAMA_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env |= {
        "GATEWAY_PORT": str(gateway_port),
        "DASHBOARD_PORT": str(dashboard_port),
        "HOST": "127.0.0.1",
        "OPENAI_API_KEY": "sk-newcomer-upstream-0123456789",
        "OPENAI_BASE_URL": fake.sdk_base_url,
    }
    return env


def _clone(tmp: Path) -> Path:
    clone = tmp / "switchboard"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True, timeout=120)
    purelib = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", PURELIB],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_switchboard_shared_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    (clone / ".tools").symlink_to(ROOT / ".tools")
    return clone


def _wait_for(what: str, probe: object, nc: Newcomer) -> float:
    started = time.monotonic()
    deadline = started + START_DEADLINE_S
    while time.monotonic() < deadline:
        if nc.proc.poll() is not None:
            raise AssertionError(f"make run exited ({nc.proc.returncode}):\n{nc.log()[-5000:]}")
        if probe():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"{what} not up within {START_DEADLINE_S} s:\n{nc.log()[-5000:]}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs it (WITH_BROWSER=1)")
    tmp = tmp_path_factory.mktemp("newcomer")
    fake = OpenAIFake().start()
    clone = _clone(tmp)
    gateway_port, dashboard_port = free_port(), free_port()
    env = _newcomer_env(gateway_port, dashboard_port, fake)
    log_path = tmp / "make-run.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as Ctrl-C would
        )
    nc = Newcomer(clone, env, gateway_port, dashboard_port, log_path, proc, fake, t0)
    try:
        ready = _wait_for(
            "gateway and printed key",
            lambda: _answers(f"{nc.gateway}/healthz") and "api key: sb-" in nc.log(),
            nc,
        )
        nc.timings["gateway_s"] = ready - t0
        yield nc
    finally:
        nc.stop()
        fake.stop()
        print(f"\nmake run timings: {nc.timings}")


def test_the_printed_key_works_with_the_openai_sdk(newcomer: Newcomer) -> None:
    log = newcomer.log()
    key = re.search(r"api key: (sb-\S+)", log)
    assert key, log
    assert f"http://127.0.0.1:{newcomer.gateway_port}" in log
    assert ".venv/bin/switchboard" in log  # how to call the CLI, printed by make run
    assert "Traceback" not in log
    assert "Tortoise-ORM shutdown" not in log
    newcomer.fake.replies.append(Reply(text="hello newcomer"))
    client = openai.OpenAI(base_url=f"{newcomer.gateway}/v1", api_key=key.group(1), max_retries=0)
    answer = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "hello newcomer"
    upstream = newcomer.fake.requests[-1].headers["authorization"]
    assert upstream == "Bearer sk-newcomer-upstream-0123456789"


def test_cli_help_for_the_command_and_each_subcommand(newcomer: Newcomer) -> None:
    top = newcomer.cli("--help")
    assert top.returncode == 0, top.stderr
    commands = ("serve", "migrate", "bootstrap", "rotate-key")
    for command in commands:
        assert command in top.stdout
        sub = newcomer.cli(command, "--help")
        assert sub.returncode == 0 and sub.stderr == "", sub.stderr
        options = re.findall(r"^\s+(--[a-z-]+)", sub.stdout, re.M)
        assert options, sub.stdout
        # Every option's help says its default (or that it is required).
        text = " ".join(sub.stdout.split())
        for option in options:
            if option == "--help":
                continue
            after = text.split(option, 2)[-1]
            assert re.match(r"[^-]*?(\(default: [^)]*\)|\(required\))", after), (command, option)


@pytest.mark.parametrize(
    "args",
    [
        ["bootstrap", "--email", "bad", "--password", "longenough123"],
        ["bootstrap", "--email", "a@b.co"],
        ["serve", "--port", "eighty"],
        ["rotate-key"],
        ["frobnicate"],
    ],
)
def test_bad_cli_input_is_one_line_exit_2(newcomer: Newcomer, args: list[str]) -> None:
    done = newcomer.cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_graphiql_renders_in_chromium_without_internet(newcomer: Newcomer) -> None:
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []
    loaded: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            loaded.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            context.route("**/*", only_loopback)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{newcomer.gateway}/graphql", timeout=60_000)
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=60_000)
            assert "Switchboard admin API" in page.inner_text(".graphiql-query-editor")
            # The schema came over /graphql: the documentation explorer can list the root types.
            page.wait_for_function(
                "() => document.querySelectorAll('.graphiql-container').length > 0", timeout=30_000
            )
        finally:
            browser.close()
    assert blocked == []
    assert errors == []
    assert any(url.endswith("/graphql/assets/graphiql.js") for url in loaded), loaded


def test_the_dashboard_answers(newcomer: Newcomer) -> None:
    url = f"http://127.0.0.1:{newcomer.dashboard_port}/"
    ready = _wait_for("dashboard", lambda: _answers(url), newcomer)
    newcomer.timings.setdefault("dashboard_s", ready - newcomer.started_at)


def test_stopping_make_run_leaves_the_work_tree_clean(newcomer: Newcomer) -> None:
    newcomer.stop()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=newcomer.clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == "", status
    # Reflex ran on a Node it accepts (the system's, or Node 22 from the npm registry).
    assert "out of date" not in newcomer.log()
    # It did run everything a start does: migrations, the first login, Reflex's build.
    assert (newcomer.clone / "data" / "first-login.txt").is_file()
    assert (newcomer.clone / ".web").is_dir()
