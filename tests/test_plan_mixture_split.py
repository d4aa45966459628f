"""mixopt.plan.mixture_split: pretraining mixture + split, against a brute-force grid."""

from __future__ import annotations

import numpy as np
import pytest

import mixopt
from mixopt import plan
from mixopt.errors import PlanError
from mixopt.plan._inputs import as_fit
from mixopt.plan.mixture_split import effective_tokens

MC = mixopt.laws.get("mixing_chinchilla", domains=["web", "code"])
MIX = {"web_val": (MC, {"E": 1.8, "alpha": 0.34, "beta": 0.28, "ta_web": 6.0, "ta_code": 6.2,
                        "tb_web": 5.8, "tb_code": 6.6}),
       "code_val": (MC, {"E": 1.5, "alpha": 0.34, "beta": 0.28, "ta_web": 6.3, "ta_code": 5.9,
                         "tb_web": 6.9, "tb_code": 5.6})}
SPLIT = {"web_val": ("transfer", dict(E=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28, K=1e3,
                                      rho=0.7)),
         "code_val": ("transfer", dict(E=1.5, A=400.0, B=900.0, alpha=0.34, beta=0.28, K=50.0,
                                       rho=0.8))}
C = 1e21


def brute(spec_caps=None, n_h=21, n_n=13, step=0.05):
    """Objective on a grid of (h_web, log N, token shares), fully vectorised."""
    hs = np.linspace(0, 1, n_h)
    Ns = np.geomspace(1e8, 1e10, n_n)
    k = int(round(1 / step))
    a, b = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = a + b <= k
    S = np.column_stack([a[keep] * step, b[keep] * step, 1 - (a[keep] + b[keep]) * step])
    H, N, I = np.meshgrid(hs, Ns, np.arange(len(S)), indexing="ij")
    H, N, I = H.ravel(), N.ravel(), I.ravel()
    T = C / (6 * N)
    D, D1, D2 = S[I, 0] * T, S[I, 1] * T, S[I, 2] * T
    ok = np.ones_like(D, dtype=bool)
    if spec_caps:
        ok &= D1 <= spec_caps.get("web_val", np.inf)
    total = np.zeros_like(D)
    for name, Dk in (("web_val", D1), ("code_val", D2)):
        law, params = MIX[name]
        Lm = law.predict(params, {"N": N, "D": np.maximum(D, 1e-300), "web": H, "code": 1 - H})
        de = np.where(D > 0, effective_tokens(SPLIT[name], N, Lm), 0.0)
        sf = as_fit(SPLIT[name])
        total += 0.5 * sf.law.predict(sf.params, {"N": N, "D": de, "D_spec": Dk})
    total = np.where(ok, total, np.inf)
    i = int(np.argmin(total))
    return total[i], H[i], N[i]


def test_effective_tokens_invert_the_pretrain_only_branch():
    sf = as_fit(SPLIT["web_val"])
    N = np.array([1e8, 1e9, 1e9])
    D = np.array([1e9, 1e10, 3e11])
    target = sf.law.predict(sf.params, {"N": N, "D": D, "D_spec": np.zeros(3)})
    np.testing.assert_allclose(effective_tokens(sf, N, target), D, rtol=1e-9)
    floor = 1.8 + 400 / 1e9**0.34
    assert effective_tokens(sf, 1e9, floor * 0.99) == pytest.approx(1e30, rel=1e-6)


def test_joint_plan_matches_brute_force():
    p = plan.mixture_split(MIX, SPLIT, C, N_range=(1e8, 1e10))
    assert p.success, p.message
    f, h, n = brute()
    assert p.objective <= f + 1e-9
    assert p.objective == pytest.approx(f, rel=2e-3)
    tokens = p.D + sum(p.D_spec.values())
    assert 6 * p.N * tokens == pytest.approx(C, rel=1e-9)
    assert p.weights.sum() == pytest.approx(1.0, abs=1e-12)
    # the joint plan is no worse than fixing either choice
    fixed = plan.mixture_split(MIX, SPLIT, C, N_range=(1e8, 1e10), caps={"web": 0.5},
                               floors={"web": 0.5})
    assert p.objective <= fixed.objective + 1e-9
    assert "Pretraining mixture + split plan" in p.summary()


def test_specialisation_caps_bind_and_bad_input():
    cap = {"web_val": 1e9}
    p = plan.mixture_split(MIX, SPLIT, C, N_range=(1e8, 1e10), spec_caps=cap)
    assert p.D_spec["web_val"] <= 1e9 * (1 + 1e-6)
    f, _, _ = brute(spec_caps=cap)
    assert p.objective <= f + 1e-9
    with pytest.raises(PlanError, match="same evaluation domains"):
        plan.mixture_split(MIX, {"web_val": SPLIT["web_val"]}, C)
    with pytest.raises(PlanError, match="L\\(N, D, D'\\) law"):
        plan.mixture_split(MIX, {"web_val": MIX["web_val"], "code_val": MIX["code_val"]}, C)
    with pytest.raises(PlanError, match="unknown evaluation domain"):
        plan.mixture_split(MIX, SPLIT, C, spec_caps={"nope": 1.0})
