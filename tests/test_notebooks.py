"""Every notebook under notebooks/ runs top to bottom without a failing cell."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
MIXTURE = NOTEBOOK_DIR / "mixture.ipynb"
# the mixture notebook reads RegMix's released runs and has its own tests below
# the mixture-laws notebook also has its own tests (below), which check its outputs
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb")
                   if p not in (MIXTURE, NOTEBOOK_DIR / "mixture_laws.ipynb"))


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


# ------------------------------------------------------------ notebooks/mixture_laws.ipynb

MIXTURE_LAWS = NOTEBOOK_DIR / "mixture_laws.ipynb"

# appended to the notebook and run in its kernel: the numbers its cells showed
_MIXTURE_LAWS_PROBE = """
import json
print("PROBE" + json.dumps({
    "best": BEST,
    "mean_error": mean_error.to_dict(),
    "scores": scores[["eval", "holdout", "law", "mean_rel_error", "spearman"]]
        .to_dict(orient="records"),
    "extrapolation": {f"{k[0]}|{k[1]}": v for k, v in
                      extrapolation["mean_rel_error"].to_dict().items()},
    "fixed": {k: v.to_dict() for k, v in fixed_table.iterrows()},
    "fixed_outside": {k: p.outside for k, p in fixed_plans.items()},
    "budget": {"true_N": budget_true.N, "N": budget_plan.N, "D": budget_plan.D,
               "flops": budget_plan.flops, "success": budget_plan.success,
               "true_w": budget_true.weights.to_dict(), "w": budget_plan.weights.to_dict(),
               "regret": budget_regret},
    "limited": {"w": limited.weights.to_dict(), "D": limited.D, "success": limited.success,
                "outside": limited.outside},
    "paths": {k: p.weights.to_numpy().tolist() for k, p in paths.items()},
    "true_at_joint": true_at_joint.to_numpy().tolist(),
    "path_success": {k: p.success for k, p in paths.items()},
    "n_axes": len(fig.axes),
    "regmix": None if regmix_scores is None else regmix_scores.to_dict(orient="index"),
}, default=str))
"""


def _run_mixture_laws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, regmix: Path,
                      probe: str | None = None, cells: list[int] | None = None):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MIXOPT_SMOKE", "1")
    monkeypatch.setenv("MIXOPT_REGMIX_DIR", str(regmix))
    nb = nbformat.read(MIXTURE_LAWS, as_version=4)
    if cells is not None:  # run only these cells
        nb.cells = [nb.cells[i] for i in cells]
    if probe is not None:
        nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def test_mixture_laws_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mixture-law walk-through recovers the true plan and shows what its prose says."""
    import json

    import numpy as np

    regmix = Path(__file__).resolve().parents[2] / "shared" / "data" / "regmix"
    have_regmix = (regmix / "train_mixture_1m.csv").exists()  # optional: checked when present
    nb = _run_mixture_laws(tmp_path, monkeypatch, regmix if have_regmix else
                           tmp_path / "no_regmix_here", _MIXTURE_LAWS_PROBE)
    line = next(s for s in _text(nb.cells[-1]).splitlines() if s.startswith("PROBE"))
    r = json.loads(line.removeprefix("PROBE"))

    # model choice: the law the data came from extrapolates best, in size and to new mixtures
    assert r["best"] == "mixture_joint"
    shown = next(_text(c) for c in nb.cells if "chosen law:" in _text(c))
    assert "chosen law: mixture_joint" in shown
    for row in r["scores"]:
        if row["law"] == "mixture_joint":
            assert row["mean_rel_error"] < 0.01 and row["spearman"] > 0.98, row
    assert r["mean_error"]["mixture_joint"] < 0.5 * min(
        r["mean_error"]["mixture_additive"], r["mean_error"]["mixing_chinchilla"])

    # extrapolation 10x beyond the ladder: the chosen law within 1% of the truth
    ex = r["extrapolation"]
    for ev in ("web_val", "math_val"):
        assert ex[f"mixture_joint|{ev}"] < 0.01
        assert ex[f"mixture_additive|{ev}"] > 3 * ex[f"mixture_joint|{ev}"]

    # fixed-scale plan: the fitted law's mixture is the true optimum to 0.02, regret < 1e-3
    fx, doms = r["fixed"], ("web", "code", "math")
    assert max(abs(fx["mixture_joint"][d] - fx["truth"][d]) for d in doms) < 0.02
    assert 0 <= fx["mixture_joint"]["regret"] < 1e-3
    assert fx["mixture_additive"]["regret"] > 10 * fx["mixture_joint"]["regret"]
    assert "N 1e+10 > largest fitted N 1e+09 (x10)" in r["fixed_outside"]["mixture_joint"]
    assert any(n.startswith("weight of math") for n in r["fixed_outside"]["mixing_chinchilla"])

    # budget plan: compute-optimal N and mixture of the truth, 6 N D = budget
    b = r["budget"]
    assert b["success"] and b["N"] == pytest.approx(b["true_N"], rel=0.05)
    assert 6 * b["N"] * b["D"] == pytest.approx(1e21, rel=1e-9) and b["flops"] == 1e21
    assert max(abs(b["w"][d] - b["true_w"][d]) for d in doms) < 0.02 and b["regret"] < 1e-3

    # caps and available tokens hold and bind
    lim = r["limited"]
    assert lim["success"] and sum(lim["w"].values()) == pytest.approx(1.0, abs=1e-9)
    assert lim["w"]["math"] == pytest.approx(0.5, abs=1e-6)
    assert lim["w"]["code"] * lim["D"] <= 1e10 * (1 + 1e-9)
    assert lim["w"]["code"] * lim["D"] == pytest.approx(1e10, rel=1e-4)
    assert any(n.startswith("N ") for n in lim["outside"])

    # the path: flat under the additive law, moving (with the truth) under the joint law
    add, joint = (np.array(r["paths"][k]) for k in ("mixture_additive", "mixture_joint"))
    true = np.array(r["true_at_joint"])
    assert all(r["path_success"].values()) and len(add) == 3 and r["n_axes"] == 4
    assert np.ptp(add, axis=0).max() < 1e-4
    assert np.ptp(joint[:, 2]) > 0.2 and (np.diff(joint[:, 2]) < 0).all()  # math falls
    np.testing.assert_allclose(joint, true, atol=0.02)

    # RegMix: the ranking transfers to 1B parameters, the level does not (as the prose says)
    if have_regmix:
        cc = r["regmix"]["pile_cc"]
        assert cc["spearman"] > 0.98 and 0.2 < cc["mean_rel_error"] < 0.6
        assert cc["E"] > cc["mean actual"]
    else:
        assert r["regmix"] is None


def test_mixture_laws_notebook_without_regmix(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without RegMix's runs the RegMix section says it was skipped (set-up cell + that cell)."""
    nbformat = pytest.importorskip("nbformat")
    cells = nbformat.read(MIXTURE_LAWS, as_version=4).cells
    setup = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    regmix = next(i for i, c in enumerate(cells) if "def regmix_candidates" in c.source)
    nb = _run_mixture_laws(tmp_path, monkeypatch, tmp_path / "no_regmix_here",
                           cells=[setup, regmix])
    assert _text(nb.cells[-1]).startswith("skipped: RegMix's runs not found")
