"""mixopt.plan.mixture / mixture_path against brute-force grids on 3 training domains."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import plan
from mixopt.errors import InfeasiblePlanError, PlanError

sys.path.insert(0, str(Path(__file__).parent))
from test_laws_mixture import DOMS, TRUTH, ladder  # noqa: E402

STEP = 2e-3


def simplex(step: float = STEP) -> np.ndarray:
    k = int(round(1 / step))
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    a, b = i[keep] * step, j[keep] * step
    return np.column_stack([a, b, np.clip(1 - a - b, 0, 1)])


def fits_for(name: str):
    law = mixopt.laws.get(name, domains=DOMS)
    other = dict(TRUTH[name])
    other["E"] = 1.2  # a second evaluation domain with another asymptote and mixture effect
    for d, v in zip(DOMS, (1.0, 0.3, 2.0)):
        for prefix in ("C_", "ta_"):
            if f"{prefix}{d}" in other:
                other[f"{prefix}{d}"] = other[f"{prefix}{d}"] * v if prefix == "C_" else \
                    other[f"{prefix}{d}"] + 0.5 * v
    return {"web_val": (law, TRUTH[name]), "code_val": (law, other)}


def brute_at(fits, N, D, w, mask=None, worst=False):
    G = simplex()
    if mask is not None:
        G = G[mask(G)]
    X = {"N": np.full(len(G), N), "D": np.full(len(G), D), **{d: G[:, j] for j, d in
                                                              enumerate(DOMS)}}
    L = np.column_stack([law.predict(p, X) for law, p in fits.values()])
    f = L.max(axis=1) if worst else L @ np.asarray(w)
    i = int(np.argmin(f))
    return G[i], f[i]


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_fixed_scale_matches_brute_force(name):
    fits = fits_for(name)
    a = plan.mixture(fits, N=1e8, D=2e9, weights={"web_val": 0.7, "code_val": 0.3},
                     caps={"web": 0.6})
    assert a.success, a.message
    h, f = brute_at(fits, 1e8, 2e9, [0.7, 0.3], mask=lambda G: G[:, 0] <= 0.6)
    assert a.objective <= f + 1e-10
    assert a.objective >= f - 5e-3 * abs(f)  # the lattice is within a step of the optimum
    assert a.weights["web"] <= 0.6 and a.weights.sum() == pytest.approx(1.0, abs=1e-15)
    w = plan.mixture(fits, N=1e8, D=2e9, objective="worst")
    hw, fw = brute_at(fits, 1e8, 2e9, None, worst=True)
    assert w.objective <= fw + 1e-9 and w.objective == pytest.approx(fw, rel=2e-3)


def test_budget_plan_matches_a_brute_force_grid_over_n_and_h():
    fits = fits_for("mixing_chinchilla")
    C = 1e20
    a = plan.mixture(fits, budget=C, caps={"math": 0.5})
    assert a.success and a.flops == pytest.approx(C, rel=1e-12)
    assert a.D == pytest.approx(C / (6 * a.N), rel=1e-12)
    best = np.inf
    for N in np.geomspace(a.N / 3, a.N * 3, 61):
        _, f = brute_at(fits, N, C / (6 * N), [0.5, 0.5], mask=lambda G: G[:, 2] <= 0.5)
        best = min(best, f)
    assert a.objective <= best + 1e-10 and a.objective == pytest.approx(best, rel=1e-3)


def test_optimum_moves_with_budget_only_when_the_law_lets_it():
    add = plan.mixture_path(fits_for("mixture_additive"), [1e18, 1e20, 1e22])
    W = add.weights.to_numpy()
    np.testing.assert_allclose(W, W[[0, 0, 0]], atol=1e-5)  # additive: scale-independent
    joint = plan.mixture_path(fits_for("mixture_joint"), [1e18, 1e20, 1e22])
    assert np.abs(np.diff(joint.weights.to_numpy(), axis=0)).max() > 1e-2
    assert (np.diff([p.N for p in joint.plans]) > 0).all()
    frame = joint.to_frame()
    assert list(frame.columns[:3]) == ["N", "D", "objective"] and len(frame) == 3
    json.dumps(joint.to_dict(), allow_nan=False)
    fig = joint.plot()
    assert len(fig.axes) >= 2


def test_extrapolation_is_reported():
    law = mixopt.laws.get("mixing_chinchilla", domains=DOMS)
    data = ladder()
    data = data[data[DOMS].max(axis=1) < 0.8].reset_index(drop=True)
    data["loss"] = law.predict(TRUTH["mixing_chinchilla"], data)
    fit = mixopt.fit(law, data)
    a = plan.mixture({"web_val": fit}, N=1e11, D=1e12)
    text = " ".join(a.outside)
    assert "N 1e+11 > largest fitted N 1e+09 (x100)" in text and "D 1e+12" in text
    assert any("weight of" in n for n in a.outside)  # the corner optimum leaves the swarm
    assert "extrapolates" in a.summary()


def test_bad_input():
    fits = fits_for("mixture_additive")
    with pytest.raises(PlanError, match="N and D"):
        plan.mixture(fits, N=1e8)
    with pytest.raises(PlanError, match="not both"):
        plan.mixture(fits, N=1e8, D=1e9, budget=1e20)
    with pytest.raises(InfeasiblePlanError, match="caps sum to 0.9"):
        plan.mixture(fits, N=1e8, D=1e9, caps={"web": 0.3, "code": 0.3, "math": 0.3})
    with pytest.raises(InfeasiblePlanError, match="cannot supply"):
        plan.mixture(fits, N=1e8, D=1e9, tokens={"web": 1e8, "code": 1e8, "math": 1e8})
    with pytest.raises(InfeasiblePlanError, match="more tokens than available"):
        plan.mixture(fits, budget=1e24, tokens={"web": 1e6, "code": 1e6, "math": 1e6},
                     N_range=(1e7, 1e9))
    with pytest.raises(PlanError, match="not an L\\(N, D, h\\) law"):
        plan.mixture({"x": ("chinchilla", {"E": 1, "A": 1, "B": 1, "alpha": .3, "beta": .3})},
                     N=1e8, D=1e9)
    other = mixopt.laws.get("mixture_additive", domains=["web", "code"])
    p2 = {k: v for k, v in TRUTH["mixture_additive"].items() if not k.endswith("math")}
    with pytest.raises(PlanError, match="share one set"):
        plan.mixture({**fits, "y": (other, p2)}, N=1e8, D=1e9)
    with pytest.raises(PlanError, match="unknown evaluation domain"):
        plan.mixture(fits, N=1e8, D=1e9, weights={"nope": 1.0})
    # tokens bound the weights: h_j D <= tokens_j
    a = plan.mixture(fits, N=1e8, D=1e9, tokens={"web": 2e8, "code": 1e9, "math": 1e9})
    assert a.weights["web"] * 1e9 <= 2e8 * (1 + 1e-12)
    assert pd.Series(a.weights).sum() == pytest.approx(1.0)
