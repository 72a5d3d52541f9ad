"""Every environment variable the code reads is in the README's settings table (issue 16 item 6).

"Reads" is found in the code itself, not in a list kept by hand:
- Python (backend/, frontend_reflex/, rxconfig.py): the name passed to an environment lookup
  (``os.environ.get/[]``, ``os.getenv``, ``env.get/[]`` on anything called ``*env*``, ``name in
  env``), every ``SWITCHBOARD_*`` name, and every variable-like name in the two modules whose job
  is reading the environment (backend/config.py, backend/providers/credentials.py), which go
  through tables (``numeric``, ``DEFAULTS``) before the lookup;
- the scripts `make` runs (scripts/*.sh): every ``${NAME:-default}``.
The README side: the names in backticks in the first column of its tables.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
ENV_MODULES = {"backend/config.py", "backend/providers/credentials.py"}


def _python_files() -> list[Path]:
    files = [p for p in (ROOT / "backend").rglob("*.py") if "migrations" not in p.parts]
    files += list((ROOT / "frontend_reflex").rglob("*.py"))
    return [*files, ROOT / "rxconfig.py"]


def _is_env(node: ast.expr) -> bool:
    """``os.environ``, or any name/attribute that says it holds the environment."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" or "env" in node.attr.lower()
    return isinstance(node, ast.Name) and "env" in node.id.lower()


def _constant(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def names_read_by_python(path: Path, rel: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        name: str | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
                if _is_env(func.value):
                    name = _constant(node.args[0])
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                name = _constant(node.args[0])
            elif isinstance(func, ast.Name) and "env" in func.id.lower() and len(node.args) > 1:
                name = _constant(node.args[1])  # helpers like _env(env, "NAME")
        elif isinstance(node, ast.Subscript) and _is_env(node.value):
            name = _constant(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_env(c) for c in node.comparators):
            name = _constant(node.left)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("SWITCHBOARD_") or rel in ENV_MODULES:
                name = node.value
        if name and ENV_NAME.match(name):
            found.add(name)
    return found


def names_read_by_scripts() -> set[str]:
    found: set[str] = set()
    for script in (ROOT / "scripts").glob("*.sh"):
        found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):[-=]", script.read_text()))
    return found


def names_in_readme_tables() -> set[str]:
    found: set[str] = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_column = line.split("|")[1]
            found |= {n for n in re.findall(r"`([^`]+)`", first_column) if ENV_NAME.match(n)}
    return found


def names_read_by_code() -> set[str]:
    found = names_read_by_scripts()
    for path in _python_files():
        found |= names_read_by_python(path, path.relative_to(ROOT).as_posix())
    return found


def test_every_environment_variable_read_is_in_the_readme_table() -> None:
    missing = names_read_by_code() - names_in_readme_tables()
    assert not missing, f"read by the code but not in the README settings table: {sorted(missing)}"


def test_the_scan_sees_each_kind_of_read() -> None:
    """The detector itself: each way the code reads a variable is found (else the comparison
    above would pass by finding nothing)."""
    code = names_read_by_code()
    assert {
        "DATABASE_URL",  # config.py: env.get("DATABASE_URL")
        "SWITCHBOARD_MAX_BODY_BYTES",  # config.py: through the `numeric` table
        "OPENAI_API_KEY",  # credentials.py: through DEFAULTS
        "GOOGLE_API_KEY",  # credentials.py: a fallback name
        "SWITCHBOARD_NEW_SECRET_KEY",  # cli.py: os.environ.get
        "SWITCHBOARD_GATEWAY_URL",  # the dashboard
        "GATEWAY_PORT",  # scripts/run.sh
        "HOST",
        "SWITCHBOARD_TEST_PG_URL",  # scripts/test.sh
    } <= code
    # Error codes and sort orders look like variable names but are not read from the environment.
    assert not {"BAD_USER_INPUT", "CREATED_ASC", "MAX_TOKENS"} & code


def test_python_detector_on_each_form(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import os\n"
        "a = os.environ.get('A_ONE')\n"
        "b = os.environ['B_TWO']\n"
        "c = os.getenv('C_THREE', 'x')\n"
        "def f(env):\n"
        "    return env.get('D_FOUR'), 'E_FIVE' in env, _env(env, 'F_SIX')\n"
        "NOT_READ = {'G_SEVEN': 1}\n"
    )
    expected = {"A_ONE", "B_TWO", "C_THREE", "D_FOUR", "E_FIVE", "F_SIX"}
    assert names_read_by_python(source, "sample.py") == expected
