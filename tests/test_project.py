"""Checks on the project itself: the README's commands, the public API, layering."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator

import tasklets

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tasklets"


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


# -- layering ------------------------------------------------------------------------------------------
#
# Every module of src/ gets a layer from its path; every import is read from
# the AST and resolved to the module it names. An import may go to the same
# layer or a lower one, never up, and the import graph has no circle. Imports
# under ``if TYPE_CHECKING:`` are left out: they exist for the type checker only.

#: Layers, lowest first. The core is every ``tasklets/_*.py``.
LAYERS = ("core", "net", "http", "tools", "cli", "package")


def _layer_of(module: str) -> str:
    parts = module.split(".")[1:]  # drop "tasklets"
    if not parts or parts == ["__main__"]:
        return "package"
    if parts[0] in ("net", "http", "cli"):
        return parts[0]
    if parts[0] in ("dask", "testing", "asyncio"):  # built on the library, used by the CLI and by tests
        return "tools"
    assert parts[0].startswith("_") and len(parts) == 1, f"{module}: which layer is it?"
    return "core"


def _module_name(path: pathlib.Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _walk_runtime(tree: ast.AST, inside_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node that runs, with whether it sits inside a function (TYPE_CHECKING blocks skipped)."""
    for child in ast.iter_child_nodes(tree):
        if _is_type_checking_block(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:
                yield other, inside_function
                yield from _walk_runtime(other, inside_function)
            continue
        yield child, inside_function
        nested = inside_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk_runtime(child, nested)


def _package_of(module: str) -> str:
    path = SOURCES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports_of(module: str) -> Iterator[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of ``module``.

    Relative imports are resolved to a module of the package; ``from . import
    name`` names the submodule when there is one, else the package.
    """
    tree = ast.parse(SOURCES[module].read_text())
    for node, in_function in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, in_function
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = _package_of(module)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.module:
                    base = f"{base}.{node.module}"
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in SOURCES else base), node.lineno, in_function


def _internal_graph() -> dict[str, set[str]]:
    return {
        module: {name for name, _, _ in _imports_of(module) if name in SOURCES and name != module} for module in SOURCES
    }


# Import circles allowed for now: none (the HTTP split gave the backend
# registry a module of its own). An entry must name a real circle.
ALLOWED_CIRCLE_EDGES: set[tuple[str, str]] = set()


def test_every_import_goes_down_the_layers() -> None:
    """core <- net <- http <- tools (dask, testing) <- cli <- the package: no import goes up."""
    wrong = []
    for module in SOURCES:
        rank = LAYERS.index(_layer_of(module))
        for name, line, _ in _imports_of(module):
            if name in SOURCES and LAYERS.index(_layer_of(name)) > rank:
                where = f"{SOURCES[module].relative_to(ROOT)}:{line}"
                wrong.append(f"{where} ({_layer_of(module)}) imports {name} ({_layer_of(name)})")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_circle() -> None:
    """The modules form a tower: ranked by what they import, none depends on itself."""
    graph = {
        module: names - {b for a, b in ALLOWED_CIRCLE_EDGES if a == module}
        for module, names in _internal_graph().items()
    }
    rank: dict[str, int] = {}
    path: list[str] = []

    def rank_of(module: str) -> int:
        if module in rank:
            return rank[module]
        assert module not in path, "import circle: " + " -> ".join([*path[path.index(module) :], module])
        path.append(module)
        rank[module] = 1 + max((rank_of(name) for name in graph[module]), default=-1)
        path.pop()
        return rank[module]

    for module in graph:
        rank_of(module)
    # The tower the issue asked for: where work runs sits below futures, run() at the top of the core.
    core = {m: r for m, r in rank.items() if _layer_of(m) == "core"}
    assert core["tasklets._where"] < core["tasklets._future"] < core["tasklets._task"] < core["tasklets._runtime"]
    assert not [m for m in core if "tasklets._runtime" in graph[m]], "nothing in the core builds on run()"


def test_the_allowed_circle_is_still_a_circle() -> None:
    """An allow-list entry that no longer names a real import is dropped, not kept by habit."""
    graph = _internal_graph()
    for a, b in ALLOWED_CIRCLE_EDGES:
        assert b in graph[a] and a in graph[b], f"{a} <-> {b} is no circle any more: drop it from the allow-list"


# Imports inside functions are for optional dependencies only (loaded when the
# feature is used): anything else belongs at the top, where the layering test sees it.
OPTIONAL_DEPENDENCIES = {"rich", "distributed", "httptools", "charset_normalizer", "socksio"}
# Our modules that import an optional dependency at their top, so that
# importing them is itself optional.
OPTIONAL_MODULES = {"tasklets.http._httptools_backend"}


def test_imports_inside_functions_are_optional_dependencies() -> None:
    late = []
    for module in SOURCES:
        for name, line, in_function in _imports_of(module):
            if not in_function or name.split(".")[0] in OPTIONAL_DEPENDENCIES or name in OPTIONAL_MODULES:
                continue
            if any(module == a and name == b for a, b in ALLOWED_CIRCLE_EDGES):
                continue
            late.append(f"{SOURCES[module].relative_to(ROOT)}:{line} imports {name} inside a function")
    assert not late, "\n".join(late)


def test_core_depends_on_the_standard_library_only() -> None:
    for module in SOURCES:
        if _layer_of(module) != "core" and module != "tasklets.testing":
            continue
        for name, line, _ in _imports_of(module):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ("__future__", "tasklets"), (
                f"{module}:{line} imports {name}"
            )


# The HTTP parser layer is sans-IO: bytes in, events out. It may use the parser
# libraries, the standard library's pure helpers and its own siblings, never
# sockets, the loop or the client above it.
SANS_IO_MODULES = (
    "_protocol",
    "_policy",
    "_head",
    "_chunked",
    "_events",
    "_request_side",
    "_h11_backend",
    "_httptools_backend",
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
    """STYLE: a typed public API, ``mypy --strict`` clean (pyproject.toml), and value types kept.

    ``tests/typing/value_types.py`` asserts what the combinators return (a
    ``gather`` of ``Future[int]``s is a ``Future[list[int]]``, not ``Any``).
    """
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "src", "tests/typing"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- no reach-through ------------------------------------------------------------------------------------
#
# A module reads and writes its own classes' private attributes (``_name``), and
# those its classes inherit; another module's go through methods. The test
# finds, for every ``obj._name`` in src/ (``self``/``cls`` aside), the modules
# whose classes define ``_name`` (a slot, ``self._name = ...``, a method, a class
# attribute); an access from any other module must be listed here, with why.

#: (module using it, attribute) -> why it is allowed.
ALLOWED_REACH_THROUGH = {
    # The kernel's friends: the task stepper is the hottest code of the library.
    # It inlines Future.add_done_callback and reads a done future's outcome
    # without a call, and appends to the loop's ready queue directly.
    **{
        ("tasklets._task", name): "the stepper inlines Future's wait and outcome"
        for name in ("_state", "_result", "_exception", "_mutex", "_callbacks", "_plain_callbacks")
    },
    **{
        ("tasklets._task", name): "the stepper schedules itself on its loop without a call"
        for name in ("_ready", "_enqueue", "_current_task", "_tasks", "_thread_id")
    },
    # The stdlib future has no remove_done_callback: a task abandoning one
    # takes its callback off the stdlib's own list, under the stdlib's condition.
    ("tasklets._task", "_condition"): "the stdlib future's condition (no remove_done_callback)",
    ("tasklets._task", "_done_callbacks"): "the stdlib future's callback list (no remove_done_callback)",
    # Future's completion steps for code that completes futures of its own
    # making on behalf of others: the matcher answers requests in one locked
    # step that also names the input; streams hand bytes to a reader that may
    # have been cancelled from another thread a moment ago.
    ("tasklets._matcher", "_try_complete"): "Future's completion step",
    ("tasklets._matcher", "_complete_unseen"): "Future's completion step for a future nobody saw yet",
    ("tasklets._matcher", "_complete_unseen_from"): "the same, with a done input's outcome, in one call",
    ("tasklets.net._reading", "_try_set_result"): "Future's completion step that says False when cancelled",
    # The HTTP head checks live on the protocol class, which the HTTP split
    # is taking apart; the client's check_request borrows them until then.
    ("tasklets.http._client", "_check_fields"): "the head checks of http/_protocol (being split)",
    # tasklets.asyncio.EventLoop runs asyncio's own handles, as asyncio's loop does
    # (their _cancelled and _run are asyncio's, not the kernel Handle's).
    ("tasklets._aio_loop", "_cancelled"): "asyncio's Handle, run by the loop as asyncio's own loop does",
    # ``await future`` asks whether a task of this thread's loop is stepping
    # (the hot path of every await in an async def task).
    ("tasklets._future", "_current_task"): "await's driver check, on its hot path",
    # A response's headers are the parser's fresh list of pairs: adopted, not copied.
    ("tasklets.http._client", "_adopt"): "Headers' no-copy constructor",
}


def _private_definitions() -> dict[str, set[str]]:
    """Private attribute name -> the modules whose classes define it."""
    owners: dict[str, set[str]] = {}

    def own(name: str, module: str) -> None:
        if name.startswith("_") and not name.startswith("__"):
            owners.setdefault(name, set()).add(module)

    for module, path in SOURCES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in ast.walk(node):
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    own(item.name, module)
                elif isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store):
                    if isinstance(item.value, ast.Name) and item.value.id in ("self", "cls"):
                        own(item.attr, module)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            own(target.id, module)
                            if target.id == "__slots__" and item.value is not None:
                                for slot in ast.walk(item.value):
                                    if isinstance(slot, ast.Constant) and isinstance(slot.value, str):
                                        own(slot.value, module)
    return owners


def _reach_through() -> dict[tuple[str, str], list[str]]:
    """(module, attribute) -> where it reads or writes a private attribute of another module's class."""
    owners = _private_definitions()
    found: dict[tuple[str, str], list[str]] = {}
    for module, path in SOURCES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute) or node.attr not in owners or module in owners[node.attr]:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue  # an inherited attribute
            found.setdefault((module, node.attr), []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_reaches_into_another_modules_privates() -> None:
    """What a layer needs of another is a method; what remains is listed, with why."""
    found = _reach_through()
    unlisted = {key: where for key, where in found.items() if key not in ALLOWED_REACH_THROUGH}
    assert not unlisted, "private attributes of another module's class:\n" + "\n".join(
        f"  {attr} in {', '.join(where)}" for (_, attr), where in sorted(unlisted.items())
    )
    stale = sorted(set(ALLOWED_REACH_THROUGH) - set(found))
    assert not stale, f"allowed but no longer done (drop them from the list): {stale}"


def test_no_module_imports_another_modules_private_names() -> None:
    """``from .x import _name`` is a private reach too (``_context``, a module, aside)."""
    allowed = {
        # The loop's cheap thread-identity function, for the kernel's friends' hot paths.
        ("tasklets._task", "_get_ident"),
        # The matcher reads outcomes the way tasks do.
        ("tasklets._matcher", "_outcome"),
        ("tasklets._matcher", "_resolved"),
        # The HTTP parser's modules share the policy's framing and state names
        # (the HTTP split moved them from _protocol to _policy).
        *(
            ("tasklets.http._policy", name)
            for name in (
                "_CHUNKED",
                "_LENGTH",
                "_NONE",
                "_REQ_DONE",
                "_REQ_IDLE",
                "_UNTIL_EOF",
                "_tokens",
            )
        ),
        ("tasklets.http._httptools_backend", "_CHUNKED"),
        # _protocol re-exports the token alphabet the client checks methods with.
        ("tasklets.http._protocol", "_TOKEN_CHARS"),
    }
    found = set()
    for module in SOURCES:
        for node in ast.walk(ast.parse(SOURCES[module].read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    name = alias.name
                    if (
                        name.startswith("_")
                        and not name.startswith("__")
                        and f"{_package_of(module)}.{name}" not in SOURCES
                    ):
                        found.add((module, name))
    assert found <= allowed, f"private names imported from another module: {sorted(found - allowed)}"
    assert allowed <= found, f"allowed but no longer imported (drop them): {sorted(allowed - found)}"


#: Modules let past the limit while they are being split, by module name or path (none today).
ALLOWED_LONG_MODULES: set[str] = set()
#: The scripts beside the package, held to the same limit: the benchmarks and their helpers, the examples.
SCRIPTS = {
    path.relative_to(ROOT).as_posix(): path for folder in ("bench", "examples") for path in (ROOT / folder).glob("*.py")
}


def test_no_module_is_over_600_lines() -> None:
    """STYLE: modules of 200-600 lines with one responsibility each, in src/, bench/ and examples/."""
    assert {name.split("/")[0] for name in SCRIPTS} == {"bench", "examples"}, "bench/ and examples/ hold scripts"
    lines = {name: len(path.read_text().splitlines()) for name, path in {**SOURCES, **SCRIPTS}.items()}
    long = {name for name, count in lines.items() if count > 600}
    split = [f"{name} ({lines[name]} lines)" for name in sorted(long - ALLOWED_LONG_MODULES)]
    assert not split, f"split these: {split}"
    assert ALLOWED_LONG_MODULES <= long, f"short now (drop them from the list): {sorted(ALLOWED_LONG_MODULES - long)}"
