"""Sphinx configuration for the tasklets documentation.

Build:  python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The package is normally installed (pip install -e .); fall back to the source tree.
sys.path.append(str(ROOT / "src"))

import tasklets  # noqa: E402

project = "tasklets"
author = "the tasklets authors"
copyright = "the tasklets authors"
release = tasklets.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "requirements.txt"]

# -- MyST --------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# -- autodoc / napoleon ------------------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
    # concurrent.futures.Future's own methods are documented by the stdlib.
    "inherited-members": False,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- HTML ----------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"tasklets {release}"
html_static_path: list[str] = []
pygments_style = "friendly"
pygments_dark_style = "monokai"


# -- docstring fix-ups ---------------------------------------------------------------------------------
def _protect_property_summary(app, what, name, obj, options, lines):
    """Keep napoleon from reading a property's prose summary as ``type: description``.

    Napoleon treats a property docstring whose first line is ``X: Y`` as "of
    type X". ``Task.name`` starts "The task's name: the one given, ...", which
    would render as a type. When the part before the colon is prose (it has a
    space and no brackets), the colon becomes a dash before napoleon looks.
    """
    if what in ("property", "attribute") and lines:
        head, sep, tail = lines[0].partition(": ")
        if sep and " " in head.strip() and not any(c in head for c in "[]|"):
            lines[0] = f"{head} — {tail}"


def setup(app):
    app.connect("autodoc-process-docstring", _protect_property_summary, priority=100)
