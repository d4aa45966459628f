"""Every notebook under notebooks/ runs top to bottom without a failing cell."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
MIXTURE = NOTEBOOK_DIR / "mixture.ipynb"
# the mixture notebook reads RegMix's released runs and has its own tests below
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if p != MIXTURE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MIXOPT_SMOKE", "1")  # notebooks may shrink their work under tests
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell


# ------------------------------------------------------------------ notebooks/mixture.ipynb

# appended to the notebook and run in its kernel: the numbers its cells showed
_MIXTURE_PROBE = """
import json
print("PROBE" + json.dumps({
    "swarm_rows": len(swarm),
    "swarm_within_bounds": bool(swarm.le(np.minimum(caps_1b, 15 * share) + 1e-12).all().all()),
    "test_spearman": test_scores["spearman"].to_dict(),
    "cv_spearman": cv.set_index("model")["spearman"].to_dict(),
    "free_pile_cc": {k: float(p.weights["pile_cc"]) for k, p in free.items()},
    "capped": {"success": bool(capped.success), "weights": capped.weights.to_dict(),
               "caps": caps_100b.to_dict(), "interval": list(capped.interval)},
    "kl_pile_cc": {str(k): float(p.weights["pile_cc"]) for k, p in pulled.items()},
    "gbm_plan": {"pile_cc": float(gbm_plan.weights["pile_cc"]), "loss": gbm_plan.loss,
                 "interval": list(gbm_plan.interval)},
    "predicted": predicted.to_dict(),
    "matched_1b": len(matched),
    "transfer": {k: v.to_dict() for k, v in transfer.items()},
}, default=str))
"""


def _run_mixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, regmix: Path,
                 probe: str | None = None):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("sklearn")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MIXOPT_SMOKE", "1")
    monkeypatch.setenv("MIXOPT_REGMIX_DIR", str(regmix))
    nb = nbformat.read(MIXTURE, as_version=4)
    if probe is not None:
        nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def test_mixture_notebook(regmix_dir: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk-through on RegMix's runs shows what its prose says (smoke size)."""
    import json

    nb = _run_mixture(tmp_path, monkeypatch, regmix_dir, _MIXTURE_PROBE)
    line = next(s for s in _text(nb.cells[-1]).splitlines() if s.startswith("PROBE"))
    r = json.loads(line.removeprefix("PROBE"))
    assert r["swarm_rows"] == 512 and r["swarm_within_bounds"]

    # the Spearman table on the 256 unseen mixtures, as displayed
    sp = r["test_spearman"]
    shown = next(_text(c) for c in nb.cells if "test_scores.round(4)" in c.source)
    assert "spearman" in shown and f"{sp['gbm']:.4f}" in shown
    assert sp["gbm"] >= 0.98  # RegMix: 0.989 with LightGBM
    assert sp["gp"] >= 0.97 and min(sp["mixing"], sp["loglinear"]) >= 0.955
    assert 0.85 <= sp["linear"] < min(sp["mixing"], sp["loglinear"], sp["gbm"], sp["gp"])
    assert max(r["cv_spearman"], key=r["cv_spearman"].get) == "gbm"

    # the mixing law alone goes to the Pile-CC corner; the caps hold and bind
    assert r["free_pile_cc"] == pytest.approx({"mixing": 1.0, "loglinear": 1.0}, abs=1e-6)
    capped = r["capped"]
    w, cap = capped["weights"], capped["caps"]
    assert capped["success"] and sum(w.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(w[d] <= cap[d] + 1e-9 for d in w)
    assert w["pile_cc"] == pytest.approx(cap["pile_cc"], abs=1e-6) and cap["pile_cc"] < 0.6
    lo, hi = capped["interval"]
    assert lo < hi
    # a stronger KL pull keeps the mixture nearer the prior (less Pile-CC)
    kl = r["kl_pile_cc"]
    assert kl["0.003"] > kl["0.01"] > kl["0.03"] > kl["0.1"] > 0.2369
    # RegMix's search with the trees lands near its published 87% Pile-CC
    assert 0.7 < r["gbm_plan"]["pile_cc"] < 0.95

    # every surrogate prefers RegMix's mixture to the Pile's; only the exp laws prefer the corner
    pred = r["predicted"]
    for m in ("mixing", "loglinear", "linear", "gbm", "gp"):
        assert pred[m]["regmix"] < pred[m]["human"]
    for m in ("mixing", "loglinear"):
        assert pred[m]["pile_cc_only"] < pred[m]["regmix"]
    for m in ("gbm", "gp"):
        assert pred[m]["regmix"] < pred[m]["pile_cc_only"]
    assert pred["gbm"]["regmix"] < pred["gbm"]["mixopt: gbm search"]

    # transfer: no 1B mixture is a 1M one; rankings carry to 60M and 1B as the notebook says
    assert r["matched_1b"] == 0
    t = r["transfer"]
    assert t["1M runs -> 60M runs"]["n"] == 256 and t["1M runs -> 60M runs"]["spearman"] > 0.98
    assert t["gbm prediction -> 1B runs"]["n"] == 64
    assert t["gbm prediction -> 1B runs"]["spearman"] > 0.9
    assert t["loglinear prediction -> 1B runs"]["spearman"] > 0.95
    assert t["gbm prediction -> 1B runs"]["rank_of_small_best"] == 1


def test_mixture_notebook_without_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without RegMix's runs the notebook designs a swarm and skips the rest with a message."""
    nb = _run_mixture(tmp_path, monkeypatch, tmp_path / "no_regmix_here")
    assert "sections 2-6 are skipped" in _text(nb.cells[2])
    design_cell = next(c for c in nb.cells if "swarm.le(bound" in c.source)
    assert "512 distinct mixtures" in _text(design_cell)
    needs = [c for c in nb.cells if c.source.startswith("# needs RegMix's runs")]
    assert len(needs) > 10
    for c in needs:
        assert _text(c).strip() == "skipped: RegMix's runs not found"
