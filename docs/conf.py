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
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "requirements.txt"]

# -- intersphinx -------------------------------------------------------------------------------------
# The standard library's inventory is read from a local copy when there is one (Debian's python3.X-doc
# package installs it), so the nitpicky build needs no network; links still point at docs.python.org.
_PYTHON_DOCS = f"https://docs.python.org/{sys.version_info.major}.{sys.version_info.minor}"
_LOCAL_INVENTORIES = [
    pathlib.Path(f"/usr/share/doc/python{sys.version_info.major}.{sys.version_info.minor}/html/objects.inv"),
    *sorted(pathlib.Path("/usr/share/doc").glob("python3.*/html/objects.inv"), reverse=True),
]
_local = next((str(path) for path in _LOCAL_INVENTORIES if path.is_file()), None)
intersphinx_mapping = {"python": (_PYTHON_DOCS, _local)}
intersphinx_timeout = 5

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


#: The public namespaces, where a name used in a docstring or an annotation is looked up.
_PUBLIC_MODULES = ["tasklets", "tasklets.net", "tasklets.http", "tasklets.testing"]


def _public_names(obj):
    """Every name ``obj`` is exported under (``tasklets.HTTPError``, ``tasklets.http.Client``...)."""
    import importlib

    names = []
    for module_name in _PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if getattr(module, name, None) is obj:
                names.append(f"{module_name}.{name}")
    return names


def _lookup(target):
    """The object a dotted ``target`` names (``tasklets._task.T``), or None."""
    import importlib

    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_private(app, env, node, contnode):
    """Resolve what autodoc writes from annotations and bases into public names.

    * a type variable (``tasklets._task.T``, ``P``): plain text, no link;
    * a class of a private module that is exported publicly
      (``tasklets._exceptions.HTTPError``), or a bare name a docstring uses
      (``HTTPError``): linked to its public name;
    * a private class of the standard library (``concurrent.futures._base.Future``):
      linked to its public name through intersphinx;
    * a private helper class that is not part of the API (the iterator
      ``as_completed`` returns, the stream's read side): plain text.
    """
    import typing

    from sphinx.ext import intersphinx

    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if target in ("T", "P", "R", "Self") or isinstance(_lookup(target), (typing.TypeVar, typing.ParamSpec)):
        return contnode
    if target.startswith(("concurrent.futures._base.", "functools.")):
        public = target.replace("concurrent.futures._base.", "concurrent.futures.")
        for role in ("class", "func", "data"):
            copy = node.deepcopy()
            copy["reftarget"], copy["reftype"] = public, role
            resolved = intersphinx.missing_reference(app, env, copy, contnode)
            if resolved is not None:
                return resolved
        return contnode  # undocumented by Python itself (DoneAndNotDoneFutures): its name, unlinked
    obj = _lookup(target) if "." in target else None
    if obj is None and "." not in target:
        import tasklets

        obj = getattr(tasklets, target, None)
    domain = env.get_domain("py")
    for public in _public_names(obj) if obj is not None else ():
        if public == target:
            continue
        for role in (node["reftype"], "class", "exc", "func", "meth"):
            resolved = domain.resolve_xref(env, node["refdoc"], app.builder, role, public, node, contnode)
            if resolved is not None:
                return resolved
    if not target.startswith("tasklets"):  # "Client.urlopen" in a docstring of tasklets.http: try the public homes
        for module_name in ("tasklets.http", *_PUBLIC_MODULES):
            for role in (node["reftype"], "meth", "class", "exc", "func"):
                resolved = domain.resolve_xref(
                    env, node["refdoc"], app.builder, role, f"{module_name}.{target}", node, contnode
                )
                if resolved is not None:
                    return resolved
        import tasklets._exceptions

        if "." not in target and hasattr(tasklets._exceptions, target):
            return contnode  # an exception tasklets raises but does not export (yet): its name, unlinked
    if target.startswith("tasklets.") and any(part.startswith("_") for part in target.split(".")):
        return contnode  # a private helper: its name, unlinked
    return None


def _public_bases(app, name, obj, options, bases):
    """Show a class's public bases: a private one (``_ClientError``) gives way to its own bases."""
    index = 0
    while index < len(bases):
        base = bases[index]
        if getattr(base, "__name__", "").startswith("_") and getattr(base, "__module__", "").startswith("tasklets"):
            bases[index : index + 1] = [b for b in base.__bases__ if b not in bases]
            continue
        index += 1


def _public_types(app, what, name, obj, options, lines):
    """Write the types napoleon took from annotations (``tasklets.http._response.Response``) by their public names."""
    import re

    def public(match):
        names = _public_names(_lookup(match.group()))
        return names[0] if names else match.group()

    for index, line in enumerate(lines):
        if line.lstrip().startswith(":type"):
            lines[index] = re.sub(r"\btasklets(?:\.\w+)*\._\w+(?:\.\w+)+", public, line)


def setup(app):
    app.connect("autodoc-process-docstring", _protect_property_summary, priority=100)
    app.connect("autodoc-process-docstring", _public_types, priority=900)  # after napoleon's (500)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("missing-reference", _resolve_private, priority=900)  # after intersphinx's own try
