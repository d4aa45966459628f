"""The documentation site: its workflow pages run as written, and its build is strict about
references (a name that does not exist fails it; an exported name missing from the API pages
fails it). `make docs` / `make test` build the whole site with warnings as errors."""

from __future__ import annotations

import io
import re
import runpy
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WORKFLOWS = DOCS / "workflows"
PAGES = sorted(p for p in WORKFLOWS.glob("*.md") if p.name != "index.md")

# the workflows issue 19 asks for, one page each
EXPECTED = {"fit-ladder", "plan-compute", "plan-split", "mixture-offline", "skill-graph",
            "online-trainer", "procedural-warmup"}


def test_one_page_per_workflow_and_all_in_the_toctree() -> None:
    assert {p.stem for p in PAGES} >= EXPECTED
    index = (WORKFLOWS / "index.md").read_text()
    for page in PAGES:
        assert re.search(rf"^{re.escape(page.stem)}$", index, flags=re.M), page.name


def test_every_public_package_has_an_api_page() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    index = (DOCS / "api" / "index.rst").read_text()
    for package in conf["PUBLIC_PACKAGES"]:
        page = DOCS / "api" / f"{package}.rst"
        assert page.exists(), package
        assert re.search(rf"^\s+{re.escape(package)}$", index, flags=re.M), package


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_workflow_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert code, f"{page.name} has no python code"
    if any("import torch" in block for block in code):
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    scope: dict = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, block in enumerate(code):
            exec(compile(block, f"{page.name}, block {i + 1}", "exec"), scope)


# ------------------------------------------------------------------ strict references

_PAGE = """\
Probe
=====

.. autoexception:: mixopt.errors.MixoptError

Resolve: :class:`mixopt.errors.MixoptError`, the alias :class:`mixopt.MixoptError` and the
undocumented but existing :mod:`mixopt.fitting.engine`.

Broken: :func:`mixopt.fit_with_typo` and :class:`mixopt.errors.NoSuchError`.
"""


def _build(tmp_path: Path, page: str, public: tuple[str, ...]) -> tuple[int, str]:
    sphinx_app = pytest.importorskip("sphinx.application")
    pytest.importorskip("numpydoc")
    pytest.importorskip("myst_nb")
    pytest.importorskip("furo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.rst").write_text(page)
    # this project's conf.py, with the public-API check narrowed to the given packages
    (src / "conf.py").write_text(
        f"import runpy\n"
        f"globals().update({{k: v for k, v in runpy.run_path({str(DOCS / 'conf.py')!r}).items()"
        f" if not k.startswith('__')}})\n"
        f"mixopt_public_packages = {public!r}\n"
    )
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    warning = io.StringIO()
    # as sphinx-build does: directives and roles registered by one build do not leak into
    # the next one in this process
    with patch_docutils(str(src)), docutils_namespace():
        app = sphinx_app.Sphinx(str(src), str(src), str(tmp_path / "out"),
                                str(tmp_path / "doctrees"), "html", status=io.StringIO(),
                                warning=warning, freshenv=True, warningiserror=True)
        app.build()
    return app.statuscode, warning.getvalue()


def test_broken_reference_fails_the_build(tmp_path: Path) -> None:
    status, log = _build(tmp_path, _PAGE, public=())
    assert status != 0
    assert "mixopt.fit_with_typo" in log
    assert "mixopt.errors.NoSuchError" in log
    # what exists resolves (or prints as code) without a warning
    for fine in ("mixopt.MixoptError", "mixopt.fitting.engine",
                 "target not found: mixopt.errors.MixoptError"):
        assert fine not in log, log
    assert log.count("WARNING") == 2, log


def test_public_name_missing_from_the_pages_fails_the_build(tmp_path: Path) -> None:
    page = "Probe\n=====\n\n.. autoexception:: mixopt.errors.MixoptError\n"
    status, log = _build(tmp_path, page, public=("mixopt.errors",))
    assert status != 0
    assert "mixopt.errors.DataError is public (in __all__) but on no API page" in log
    assert "mixopt.errors.MixoptError is public" not in log
    assert "public package mixopt.errors has no API page" in log  # no automodule directive


def test_paragraph_read_as_a_parameter_fails_the_build(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "probe_docstrings.py").write_text(
        'def f(x, y):\n'
        '    """Probe.\n\n    Parameters\n    ----------\n'
        '    x : float\n        Fine.\n'
        '    y: written as name: text on one line.\n\n'
        '    A closing paragraph, not under Notes.\n    """\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    status, log = _build(tmp_path, "Probe\n=====\n\n.. autofunction:: probe_docstrings.f\n",
                         public=())
    assert status != 0
    assert "'y: written as name: text on one line.' is not a parameter name" in log
    assert "'A closing paragraph, not under Notes.' is not a parameter name" in log
    assert "'x'" not in log


def test_clean_page_builds(tmp_path: Path) -> None:
    page = ("Probe\n=====\n\n.. automodule:: mixopt.errors\n\n"
            "See :class:`DataError` and :class:`mixopt.MixoptError`.\n")
    status, log = _build(tmp_path, page, public=("mixopt.errors",))
    assert status == 0, log
    assert "WARNING" not in log


