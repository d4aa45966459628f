"""Sphinx configuration of the mixopt documentation.

Why Sphinx + numpydoc + myst-nb (rather than MkDocs + mkdocstrings): the docstrings are
numpy-style and already cross-reference each other with Sphinx roles (``:class:``, ``:func:``,
``:meth:``, ``:mod:``; about 400 of them). Sphinx resolves those roles, and in nitpicky mode
(``-n``) with warnings as errors (``-W``) a reference to a name that does not exist fails the
build; mkdocstrings would print them verbatim and check none. numpydoc is the reference parser
of the numpy docstring standard, and myst-nb renders the notebooks from their saved outputs
(execution off) and lets the prose pages be Markdown.

Nothing here reaches the network: no intersphinx, no theme assets from a CDN (furo bundles its
own), no notebook execution. Build: ``make docs`` (see docs/README.md).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shutil
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

project = "mixopt"
author = "the mixopt developers"
copyright = "2026, the mixopt developers"
release = importlib.import_module("mixopt").__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_nb",
]

# ---------------------------------------------------------------- sources copied in at build time
# The notebooks live in notebooks/ and the benchmark figures in benchmarks/studies/results/; a
# Sphinx source must sit under docs/, so they are copied (mtimes kept, so rebuilds stay
# incremental) into git-ignored folders before reading.
GENERATED_NOTEBOOKS = DOCS / "notebooks"
GENERATED_FIGURES = DOCS / "_figures"


def _copy_sources() -> None:
    GENERATED_NOTEBOOKS.mkdir(exist_ok=True)
    wanted = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    for stale in GENERATED_NOTEBOOKS.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name in wanted:
        shutil.copy2(ROOT / "notebooks" / name, GENERATED_NOTEBOOKS / name)
    GENERATED_FIGURES.mkdir(exist_ok=True)
    sections = []
    # caption: the first paragraph of the docstring of the study that wrote the figure (a
    # variant such as haystack_warmup_6000.png takes the caption of haystack_warmup.py)
    studies = sorted((ROOT / "benchmarks" / "studies").glob("*.py"), key=lambda p: -len(p.stem))
    for png in sorted((ROOT / "benchmarks" / "studies" / "results").glob("*.png")):
        shutil.copy2(png, GENERATED_FIGURES / png.name)
        script = next((p for p in studies if png.stem.startswith(p.stem)),
                      ROOT / "benchmarks" / "studies" / f"{png.stem}.py")
        doc = ast.get_docstring(ast.parse(script.read_text())) if script.exists() else None
        caption = " ".join((doc or png.stem).split("\n\n")[0].split())
        variant = "" if script.stem == png.stem else f", `{png.name}`"
        sections.append(f"```{{figure}} _figures/{png.name}\n:alt: {png.stem}\n\n{caption} "
                        f"(`benchmarks/studies/{script.stem}.py`{variant})\n```\n")
    text = "\n".join(sorted(sections, key=lambda sec: sec.split("\n\n", 1)[1])) or (
        "No figures yet.\n")  # in study order: the captions start "Study 1: ..."
    target = GENERATED_FIGURES / "figures.md"
    if not target.exists() or target.read_text() != text:  # unchanged: keep the mtime
        target.write_text(text)


root_doc = "index"

exclude_patterns = ["_build", "README.md", "_figures/figures.md", "**/.ipynb_checkpoints"]

# ---------------------------------------------------------------- strictness
# `make docs` runs sphinx-build -W --keep-going -n: every warning fails the build, and nitpicky
# mode makes every unresolved cross-reference a warning. References into other projects
# (numpy, pandas, torch, the standard library, ...) cannot resolve without intersphinx, which
# would need the network, so only those are exempt; every reference to a mixopt name must
# resolve.
nitpicky = True
_EXTERNAL = (r"(numpy|np|pandas|pd|scipy|torch|transformers|lightning|matplotlib|plt|cvxpy|"
             r"sklearn|joblib|datasets|networkx|statsmodels|collections|typing|types|pathlib|"
             r"os|io|json|enum|dataclasses|abc|numbers|concurrent|contextlib|functools|"
             r"itertools|random|warnings|builtins|_io)(\..*)?")
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    # type words in numpydoc "Parameters" types and numpy/pandas names in annotations
    (r"py:class", r"(array_like|array-like|ndarray|DataFrame|Series|Generator|Path|Axes|"
                  r"Figure|Module|Tensor|Callable|Mapping|Sequence|Iterable|Iterator|"
                  r"Any|Self|optional|default.*)"),
]

# ---------------------------------------------------------------- autodoc + numpydoc
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
# torch, transformers, lightning and matplotlib are optional extras: the API pages of
# mixopt.train, mixopt.train.hf, mixopt.train.lightning and mixopt.plotting build without them
# (mocked) and with them (the real classes, as `make test` installs every extra). lightning is
# always mocked: mixopt.train.lightning only subclasses its Callback, and importing it costs
# about 6 s of CPU, a quarter of the build.
autodoc_mock_imports = ["lightning"] + [
    m for m in ("torch", "transformers", "matplotlib", "sklearn", "lightgbm", "networkx")
    if importlib.util.find_spec(m) is None]

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# ---------------------------------------------------------------- notebooks (myst-nb)
nb_execution_mode = "off"  # rendered from their saved outputs; tests/test_notebooks.py runs them
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# ---------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"mixopt {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
pygments_style = "sphinx"


# ---------------------------------------------------------------- reference resolution
# A docstring names things the way its own module sees them: ``:class:`MixtureError``` in
# mixopt/online/base.py means the MixtureError that module imports, and
# ``:func:`mixopt.fitting.bootstrap.bootstrap``` is where a function is defined, not the public
# path (``mixopt.fitting.bootstrap``) the API pages document it under. When Sphinx cannot find
# such a target, look it up in Python the way the docstring's module would, and
#   * if it is an object the pages document under another (public) name, link there;
#   * if it exists but is not documented (a private helper, an internal module), print it as
#     code without a link;
#   * if nothing by that name exists, leave the warning: under -W it fails the build.
from docutils import nodes  # noqa: E402
from sphinx.util import logging as sphinx_logging  # noqa: E402

_LOG = sphinx_logging.getLogger("mixopt-docs")
_MISSING = object()
_DOCUMENTED: dict[int, dict[int, str]] = {}


def _lookup(dotted: str) -> object:
    """The object a dotted path names, or _MISSING. Attributes win over submodules of the same
    name (``mixopt.fitting.bootstrap`` is the function the package exports, not the module)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - not a module (or not importable): try shorter
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
        except AttributeError:
            break
    try:
        return importlib.import_module(dotted)
    except Exception:  # noqa: BLE001
        return _MISSING


def _documented(env) -> dict[int, str]:
    """id(object) -> the full name the API pages document it under (built once per build)."""
    cache = _DOCUMENTED.get(id(env))
    if cache is None:
        cache = _DOCUMENTED[id(env)] = {}
        for fullname, entry in env.get_domain("py").objects.items():
            if getattr(entry, "aliased", False):
                continue
            obj = _lookup(fullname)
            if obj is _MISSING or isinstance(obj, (int, float, str, bool, tuple, type(None))):
                continue
            cache.setdefault(id(obj), fullname)
    return cache


def _source_object(node) -> str | None:
    """Dotted path of the object whose docstring holds ``node`` (from docutils' source)."""
    source = node.source or ""
    if ":docstring of " in source:
        return source.split(":docstring of ", 1)[1].strip()
    return None


def _candidates(node) -> list[str]:
    target = node["reftarget"].lstrip(".~")
    scopes = []
    origin = _source_object(node)
    if origin:
        parts = origin.split(".")
        scopes += [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    module, cls = node.get("py:module"), node.get("py:class")
    if module and cls:
        scopes.append(f"{module}.{cls}")
        # a signature's annotation is read in the module that defines the class
        defining = getattr(_lookup(f"{module}.{cls}"), "__module__", None)
        if isinstance(defining, str):
            scopes.append(defining)
    if module:
        scopes.append(module)
    seen: list[str] = []
    for scope in scopes:
        cand = f"{scope}.{target}"
        if cand not in seen:
            seen.append(cand)
        # names a module imports only under `if TYPE_CHECKING:` (for its annotations)
        alias = _type_checking_names(scope).get(target.split(".")[0])
        if alias and alias not in seen:
            seen.append(".".join([alias, *target.split(".")[1:]]))
    if target not in seen:
        seen.append(target)
    return seen


def _type_checking_names(modname: str) -> dict[str, str]:
    """Names ``modname`` imports in ``if TYPE_CHECKING:`` blocks -> their dotted paths."""
    if modname in _TYPE_CHECKING_CACHE:
        return _TYPE_CHECKING_CACHE[modname]
    names: dict[str, str] = {}
    spec = None
    try:
        spec = importlib.util.find_spec(modname)
    except Exception:  # noqa: BLE001 - a class path, not a module
        spec = None
    if spec is not None and spec.origin and spec.origin.endswith(".py"):
        tree = ast.parse(Path(spec.origin).read_text())
        for block in ast.walk(tree):
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
                for stmt in block.body:
                    if isinstance(stmt, ast.ImportFrom) and stmt.module:
                        for alias in stmt.names:
                            names[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"
    _TYPE_CHECKING_CACHE[modname] = names
    return names


_TYPE_CHECKING_CACHE: dict[str, dict[str, str]] = {}


def _resolve_missing(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if re.fullmatch(_EXTERNAL, target) or target in ("Any", "Callable", "Mapping", "Sequence"):
        return None  # another project's name: nitpick_ignore_regex decides
    for cand in _candidates(node):
        obj = _lookup(cand)
        if obj is _MISSING:
            continue
        fullname = _documented(env).get(id(obj))
        if fullname is not None:
            domain = env.get_domain("py")
            resolved = domain.resolve_any_xref(env, node["refdoc"], app.builder, fullname,
                                               node, contnode)
            if resolved:
                return resolved[0][1]
        # exists, but is not on any page: show it as code, unlinked (listed in the build
        # log without -q, so owners can see which docstrings point at undocumented names)
        _LOG.info("unlinked reference: %s (%s) in %s", target, cand,
                  _source_object(node) or node.get("refdoc"))
        return contnode if isinstance(contnode, nodes.literal) else nodes.literal(
            target, target)
    return None


def _dataclass_defaults(app, what, name, obj, options, signature, return_annotation):
    """A dataclass field with a default factory shows as ``<factory>``, which is not Python and
    makes Sphinx split the signature at every comma; show ``...`` instead."""
    if signature and "<factory>" in signature:
        signature = signature.replace("<factory>", "...")
    return signature, return_annotation


_GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Attributes|Returns|Raises|Yields):\s*$")


def _google_to_rst(app, what, name, obj, options, lines):
    """numpydoc reads numpy-style docstrings only; the few Google-style ones (``Args:``,
    ``Attributes:``) would come out as broken reST, so napoleon converts those first."""
    if any(_GOOGLE_SECTION.match(line) for line in lines):
        from sphinx.ext.napoleon import Config, GoogleDocstring

        config = Config(napoleon_use_param=True, napoleon_use_rtype=True,
                        napoleon_use_ivar=True)
        lines[:] = GoogleDocstring(list(lines), config, app, what, name, obj).lines()


_PARAM_NAME = re.compile(r"\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*:?")


def _check_parameter_names(app, what, name, obj, options, lines):
    """A line at the indentation of a Parameters / Attributes entry starts a new entry, so a
    closing paragraph written there (instead of under ``Notes``), or ``name: text`` on one line,
    becomes a "parameter" named by the whole line and shows raw markup. Warn (an error under
    -W) when an entry's name is not a list of identifiers."""
    from numpydoc.docscrape import NumpyDocString

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = NumpyDocString("\n".join(lines))
    except Exception:  # noqa: BLE001 - numpydoc itself reports what it cannot parse
        return
    for section in ("Parameters", "Other Parameters", "Attributes"):
        for entry in doc[section]:
            if not _PARAM_NAME.fullmatch(entry.name.strip()):
                _LOG.warning("docstring of %s: %s entry %r is not a parameter name (a closing "
                             "paragraph belongs under 'Notes'; write 'name' or 'name : type' "
                             "and the description indented below)", name, section,
                             entry.name[:60], type="mixopt-docstring")


def _numpydoc_warnings_are_sphinx_warnings() -> None:
    """numpydoc reports a docstring it cannot parse (an unknown section such as ``Example``,
    whose text it then drops) with Python's ``warnings``, which ``-W`` does not see; send those
    to Sphinx's logger so they fail the build too."""
    warnings.filterwarnings("always", category=UserWarning, module=r"numpydoc(\..*)?")
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "numpydoc" in str(filename):
            _LOG.warning("numpydoc: %s", message, type="numpydoc")
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show


# The packages whose ``__all__`` is the public API (DESIGN.md); each exported name must be on an
# API page (under that name, or as the same object under another documented name).
PUBLIC_PACKAGES = ("mixopt", "mixopt.errors", "mixopt.data", "mixopt.datasets", "mixopt.laws",
                   "mixopt.fitting", "mixopt.plan", "mixopt.mixture", "mixopt.skills",
                   "mixopt.online", "mixopt.procedural", "mixopt.curves", "mixopt.plotting",
                   "mixopt.train", "mixopt.train.models", "mixopt.train.hf",
                   "mixopt.train.lightning")


def _check_public_api(app, exception) -> None:
    if exception is not None:
        return
    env = app.env
    objects = env.get_domain("py").objects
    documented = _documented(env)
    for package in app.config.mixopt_public_packages:
        module = importlib.import_module(package)
        if package not in objects:
            _LOG.warning("public package %s has no API page", package, type="mixopt-api")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, _MISSING)
            if obj is _MISSING:
                _LOG.warning("%s.__all__ lists %r, which does not exist", package, name,
                             type="mixopt-api")
            elif type(obj).__name__ == "module" or name == "__version__":
                continue
            elif f"{package}.{name}" not in objects and id(obj) not in documented:
                _LOG.warning("%s.%s is public (in __all__) but on no API page", package, name,
                             type="mixopt-api")


def _copy_when_building_these_docs(app) -> None:
    if Path(app.srcdir).resolve() == DOCS:  # not for other projects reusing this conf
        _copy_sources()


def _no_object_base(app, name, obj, options, bases) -> None:
    """Drop the uninformative "Bases: object" line of plain classes."""
    bases[:] = [b for b in bases if b is not object]


def setup(app):
    app.connect("builder-inited", _copy_when_building_these_docs)
    app.connect("autodoc-process-bases", _no_object_base)
    app.add_config_value("mixopt_public_packages", PUBLIC_PACKAGES, "env")
    app.connect("build-finished", _check_public_api)
    app.connect("missing-reference", _resolve_missing)
    app.connect("autodoc-process-signature", _dataclass_defaults)
    app.connect("autodoc-process-docstring", _google_to_rst, priority=100)
    app.connect("autodoc-process-docstring", _check_parameter_names, priority=101)
    _numpydoc_warnings_are_sphinx_warnings()
