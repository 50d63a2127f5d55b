"""Checks on the project itself: the README's commands, the public API, layering."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

import tasklets

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tasklets"

# The core must import nothing outside the standard library and itself.
CORE_MODULES = [
    "_as_completed",
    "_clock",
    "_combinators",
    "_context",
    "_exceptions",
    "_future",
    "_group",
    "_loop",
    "_poller",
    "_runtime",
    "_sync",
    "_task",
    "_timers",
    "testing",
]


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    test_commands = [c for c in _code_blocks(readme) if "pytest" in c]
    assert len(test_commands) == 1, "the README shows exactly one test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_commands[0] in ci.splitlines()


def test_public_api_is_a_literal_all() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    literal = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            literal = ast.literal_eval(node.value)
    assert literal is not None, "__init__.py defines __all__ as a literal list"
    assert sorted(literal) == sorted(tasklets.__all__)
    for name in literal:
        assert hasattr(tasklets, name), name


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_depends_on_the_standard_library_only() -> None:
    import sys

    for module in CORE_MODULES:
        for name in _imports(PACKAGE / f"{module}.py"):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "__future__", f"{module} imports {name}"


def test_core_does_not_import_upper_layers() -> None:
    for module in CORE_MODULES:
        source = (PACKAGE / f"{module}.py").read_text()
        for layer in ("net", "http", "cli"):
            assert f"from .{layer}" not in source and f"from . import {layer}" not in source, (module, layer)


# The HTTP parser layer is sans-IO: bytes in, events out. It may use the parser
# libraries, the standard library's pure helpers and its own siblings, never
# sockets, the loop or the client above it.
SANS_IO_MODULES = (
    "_protocol", "_policy", "_head", "_chunked", "_events", "_request_side", "_h11_backend", "_httptools_backend"
)
SANS_IO_SIBLINGS = {*SANS_IO_MODULES, "_exceptions"}
IO_MODULES = {"socket", "ssl", "select", "selectors", "asyncio", "threading", "concurrent", "subprocess"}


def test_the_http_parser_layer_does_no_io() -> None:
    for module in SANS_IO_MODULES:
        path = PACKAGE / "http" / f"{module}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = {node.module.split(".")[0]}
            elif isinstance(node, ast.ImportFrom):  # relative: ._events, .._exceptions
                name = (node.module or "").split(".")[0]
                assert name in SANS_IO_SIBLINGS, f"http/{module}.py imports {'.' * node.level}{name}"
                continue
            else:
                continue
            assert not tops & IO_MODULES, f"http/{module}.py imports {tops & IO_MODULES}"
            assert "tasklets" not in tops, f"http/{module}.py imports the package absolutely"


def test_ruff_is_clean() -> None:
    """STYLE: ``ruff`` clean, everywhere the project has Python."""
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "examples"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_is_clean() -> None:
    """STYLE: a typed public API, ``mypy`` clean."""
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "src"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
