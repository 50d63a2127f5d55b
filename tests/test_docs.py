"""The documentation: it builds clean under ``sphinx-build -n -W``, covers the public API, and its programs run.

The build is nitpicky: every cross-reference must resolve, the standard
library's through intersphinx. intersphinx reads Python's inventory from a
local copy (Debian's ``python3.X-doc`` package installs it) so that the build
needs no network; without one the build test fails and says what to
install. The tutorial promises that every step is a complete program: each
``python`` block of it is run as pasted, in a directory of its own.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "tasklets"
PUBLIC_MODULES = ["tasklets", "tasklets.net", "tasklets.http", "tasklets.testing"]

sphinx = pytest.importorskip("sphinx", reason="the docs need the test extra: pip install -e '.[test]'")


def _local_python_inventory() -> pathlib.Path | None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [pathlib.Path(f"/usr/share/doc/python{version}/html/objects.inv")]
    candidates += sorted(pathlib.Path("/usr/share/doc").glob("python3.*/html/objects.inv"), reverse=True)
    return next((path for path in candidates if path.is_file()), None)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The HTML build, fresh (``-E``: every page read, every warning seen), nitpicky, warnings as errors."""
    if _local_python_inventory() is None:
        pytest.fail(
            "no local copy of Python's objects.inv for intersphinx: install Debian's python3-doc "
            "(apt-get install python3.11-doc) so that the nitpicky docs build needs no network"
        )
    out = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert done.stderr == "", done.stderr[-6000:]  # not one warning
    return out


def test_every_public_name_is_in_the_api_reference(built: pathlib.Path) -> None:
    from sphinx.util.inventory import InventoryFile

    with open(built / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for role, entries in _inventory_items(inventory) if role.startswith("py:") for name in entries}
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            aliases = {
                f"{other}.{name}"
                for other in PUBLIC_MODULES
                if getattr(importlib.import_module(other), name, None) is obj
            }
            if not aliases & documented:
                missing.append(f"{module_name}.{name}")
    assert missing == []


def _inventory_items(inventory: object) -> list[tuple[str, dict[str, object]]]:
    data = getattr(inventory, "data", inventory)  # Sphinx 8.2+ wraps the mapping in an Inventory
    return list(data.items())  # type: ignore[attr-defined]


def test_no_private_name_in_the_rendered_api(built: pathlib.Path) -> None:
    offenders = {}
    for page in sorted((built / "api").glob("*.html")):
        text = re.sub(r"<[^>]+>", "", page.read_text())
        names = set(re.findall(r"\btasklets(?:\.\w+)*\._[a-z]\w*", text))
        if names:
            offenders[page.name] = sorted(names)
    assert offenders == {}


def test_start_tls_raises_lists_exceptions_only(built: pathlib.Path) -> None:
    html = (built / "api" / "net.html").read_text()
    section = html[html.index('id="tasklets.Stream.start_tls"') :]
    raises = section[section.index("Raises") : section.index("</dd>", section.index("Raises"))]
    assert re.findall(r"<a [^>]*><strong>(\w+)</strong></a>", raises) == [
        "RuntimeError",
        "TLSHandshakeError",
        "TLSCertificateError",
        "ConnectTimeout",
    ]
    assert raises.count("<li>") == 4  # each an exception, none a sentence of prose


# -- the tutorial ----------------------------------------------------------------------------------------------------

TUTORIAL = (DOCS / "tutorial.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```$", TUTORIAL, flags=re.S | re.M)


def test_the_tutorial_has_programs() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{n + 1}" for n in range(len(BLOCKS))])
def test_every_tutorial_program_runs_as_pasted(index: int, tmp_path: pathlib.Path) -> None:
    program = tmp_path / "step.py"
    program.write_text(BLOCKS[index])
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"block {index + 1}:\n{BLOCKS[index]}\n{done.stderr[-3000:]}"
    assert done.stderr == "", done.stderr[-3000:]
    assert done.stdout.strip(), "a tutorial program shows something"


def test_every_excerpt_in_the_tutorial_names_its_complete_program() -> None:
    """An excerpt (a function of an example) cannot run as pasted: the text names the whole program, which
    tests/test_examples.py runs."""
    included = re.findall(r"^```\{literalinclude\} \.\./(examples/\w+\.py)$", TUTORIAL, flags=re.M)
    assert included
    for path in set(included):
        assert (ROOT / path).is_file()
        assert f"`{path}`" in TUTORIAL, f"the tutorial shows parts of {path} without naming it"


def test_the_tutorial_explains_the_last_empty_chunk_where_read_is_introduced() -> None:
    section = TUTORIAL[TUTORIAL.index("## 5. Fetching a page") : TUTORIAL.index("## 6.")]
    assert 'b""' in section and "end of the body" in section
    assert ".result()" in section  # the body from plain code


def test_one_recommendation_for_awaiting_an_executors_future() -> None:
    # The docs send readers to the examples (from-asyncio.md: examples/async_def.py), and the API pages show
    # the docstrings: neither may teach another way.
    texts = [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "examples").glob("*.py"), *SRC.rglob("*.py")]
    other_way = re.compile(r"wait_first\(\[f\]\)|await (?:tasklets\.)?wait_first\(\[\w+\.submit\(")
    for path in texts:
        found = other_way.search(path.read_text())
        assert found is None, f"{path.relative_to(ROOT)} recommends {found[0]!r}: use wrap_future"
    assert "await tasklets.wrap_future(" in (DOCS / "tutorial.md").read_text()
    assert "wrap_future(" in (ROOT / "README.md").read_text()
