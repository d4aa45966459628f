"""Split planning (mixopt.plan.split / frontier): brute force, budget, KKT, baselines, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mixopt
from mixopt import plan
from mixopt.errors import InfeasiblePlanError, PlanError
from mixopt.laws import Parameter


def transfer(E=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28, K=1e3, rho=0.7):
    return ("transfer", dict(E=E, A=A, B=B, alpha=alpha, beta=beta, K=K, rho=rho))


TWO = {"code": transfer(), "math": transfer(E=1.5, B=900.0, K=50.0, rho=0.8)}
MIXED = {
    "code": transfer(),
    "math": ("additive", dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.3, G=0.6,
                              S=np.exp(20.0), gamma=0.5)),
}
ONE_MULT = {"law": ("multiplicative", dict(E=1.7, A=400.0, B=450.0, alpha=0.34, beta=0.28,
                                           S=np.exp(19.0), gamma=0.3))}
C = 1e21


def _losses(fits, N, D, Dk):
    """Per-domain losses from law.predict (independent of the planner's code)."""
    out = []
    for k, (law, params) in enumerate(fits.values()):
        law = mixopt.laws.get(law)
        out.append(law.predict(params, {"N": N, "D": D, "D_spec": Dk[k]}))
    return np.array(out)


def _objective(fits, N, D, Dk, weights=None, objective="weighted"):
    L = _losses(fits, N, D, Dk)
    if objective == "worst":
        return L.max(axis=0)
    w = np.full(len(fits), 1 / len(fits)) if weights is None else np.asarray(weights)
    return np.tensordot(w, L, axes=1)


def _brute(fits, budget, weights=None, objective="weighted", caps=None, n_n=121, n_s=121):
    """Dense grid over log N and the token shares (softmax over a grid of logits, plus exact
    zero shares), FLOPs 6 N (D + sum D'). Returns the best objective."""
    K = len(fits)
    logN = np.linspace(np.log(1e7), np.log(1e11), n_n)
    a = np.concatenate([[-np.inf], np.linspace(-14, 14, n_s)])
    grids = np.meshgrid(*([a] * K), indexing="ij")
    logits = np.stack([np.zeros_like(grids[0]), *grids], axis=0).reshape(K + 1, -1)
    finite = logits.max(axis=0)
    s = np.exp(logits - finite)
    s /= s.sum(axis=0)
    # also the pure from-scratch shares (D = 0)
    best = np.inf
    for ln in logN:
        N = np.exp(ln)
        T = budget / (6 * N)
        D, Dk = s[0] * T, s[1:] * T
        if caps is not None:
            ok = np.all(Dk <= np.asarray(caps)[:, None] * (1 + 1e-12), axis=0)
            D, Dk = D[ok], Dk[:, ok]
        v = _objective(fits, np.full(D.shape, N), D, Dk, weights, objective)
        best = min(best, float(np.nanmin(v)))
    return best


def _kkt(fits, p, weights=None, objective="weighted", caps=None, frac=0.01, fixed_N=False):
    """Moving 1% of the FLOPs between any two terms must not improve the objective."""
    doms = list(fits)
    N, T = p.N, p.tokens
    terms = np.array([p.D] + [p.D_spec[d] for d in doms])
    cap = np.array([np.inf] + [(caps or {}).get(d, np.inf) for d in doms])
    base = float(_objective(fits, N, terms[0], terms[1:], weights, objective))
    assert base == pytest.approx(p.objective_value, rel=1e-12)
    move = frac * T
    for i in range(len(terms)):
        for j in range(len(terms)):
            if i == j or terms[i] < move or terms[j] + move > cap[j]:
                continue
            t = terms.copy()
            t[i] -= move
            t[j] += move
            assert float(_objective(fits, N, t[0], t[1:], weights, objective)) >= base - 1e-12
    for f in () if fixed_N else (1.01, 1 / 1.01):  # N <-> tokens: FLOPs 6 N T stay fixed
        t = terms / f
        if np.all(t <= cap):
            assert float(_objective(fits, N * f, t[0], t[1:], weights, objective)) >= base - 1e-12


def _check_plan(fits, p, budget=C, **kw):
    assert p.success, p.message
    assert p.flops == pytest.approx(budget, rel=1e-9)
    assert 6 * p.N * p.tokens == pytest.approx(budget, rel=1e-9)
    assert p.split_fraction == pytest.approx(p.D / p.tokens, rel=1e-12)
    _kkt(fits, p, **kw)


@pytest.mark.parametrize("fits", [ONE_MULT, {"t": transfer(K=1e2, rho=0.75)}],
                         ids=["multiplicative", "transfer"])
def test_k1_matches_brute_force(fits):
    p = plan.split(fits, C, baselines=False)
    _check_plan(fits, p)
    ref = _brute(fits, C, n_n=241, n_s=401)
    assert p.objective_value <= ref * (1 + 1e-9)
    assert p.objective_value >= ref * (1 - 1e-3)


@pytest.mark.parametrize("fits", [TWO, MIXED], ids=["transfer2", "mixed2"])
def test_k2_matches_brute_force(fits):
    w = [0.3, 0.7]
    p = plan.split(fits, C, weights=w, baselines=False)
    _check_plan(fits, p, weights=w)
    ref = _brute(fits, C, weights=w)
    assert p.objective_value <= ref * (1 + 1e-9)
    assert p.objective_value >= ref * (1 - 1e-3)


def test_transfer_optimum_by_hand():
    # For transfer laws with every D'_k > 0, one pretraining token is worth K_k rho_k D^(rho_k-1)
    # domain-k tokens to every expert, while a domain token costs the same: at the optimum
    # sum_k K_k rho_k D^(rho_k - 1) = 1, whatever the weights or N.
    for w in ([0.5, 0.5], [0.2, 0.8]):
        p = plan.split(TWO, C, weights=w, baselines=False)
        assert all(v > 0 for v in p.D_spec.values())
        D = p.D
        assert 1e3 * 0.7 * D ** (0.7 - 1) + 50 * 0.8 * D ** (0.8 - 1) == pytest.approx(1, rel=1e-5)


def test_worst_objective_and_caps_match_brute_force():
    p = plan.split(TWO, C, objective="worst", baselines=False)
    assert p.solver == "slsqp" and p.objective == "worst"
    _check_plan(TWO, p, objective="worst")
    assert p.objective_value == pytest.approx(max(p.loss.values()))
    ref = _brute(TWO, C, objective="worst")
    assert ref * (1 - 1e-3) <= p.objective_value <= ref * (1 + 1e-9)
    caps = {"code": 2e9}
    q = plan.split(TWO, C, caps=caps, baselines=False)
    assert q.D_spec["code"] <= 2e9 * (1 + 1e-9)
    _check_plan(TWO, q, caps=caps)
    ref = _brute(TWO, C, caps=[2e9, np.inf])
    assert ref * (1 - 1e-3) <= q.objective_value <= ref * (1 + 1e-9)
    z = plan.split(TWO, C, caps={"code": 0}, baselines=False)
    assert z.D_spec["code"] == 0.0


def test_fixed_n_and_baselines():
    p = plan.split(MIXED, C)
    tab = p.baselines
    assert list(tab.index) == ["plan", "pretrain_only", "from_scratch", "fixed_N"]
    assert np.all(tab["objective"] >= p.objective_value - 1e-12)
    assert tab.loc["pretrain_only", "D_spec_total"] == 0.0
    assert tab.loc["pretrain_only", "split_fraction"] == 1.0
    assert tab.loc["from_scratch", "D"] == 0.0
    # the pretrain-only baseline is compute-optimal on the objective at D' = 0
    po = tab.loc["pretrain_only"]
    for f in (1.05, 1 / 1.05):
        n = po["N"] * f
        assert _objective(MIXED, n, C / (6 * n), np.zeros(2)) >= po["objective"] - 1e-12
    assert tab.loc["fixed_N", "N"] == pytest.approx(po["N"])
    q = plan.split(MIXED, C, N=5e8)
    assert q.N == 5e8 and q.baselines.loc["fixed_N", "N"] == 5e8
    _check_plan(MIXED, q, fixed_N=True)
    assert q.objective_value >= p.objective_value - 1e-12
    d = json.loads(json.dumps(p.to_dict()))
    assert d["D_spec"] == p.D_spec and d["baselines"][0]["baseline"] == "plan"
    assert "split fraction" in p.summary() and "pretrain_only" in p.summary()
    assert list(p.to_frame().index) == ["code", "math"]


class _PosyLaw(mixopt.laws.FunctionLaw):
    """L = E + A/N^a + B/D^b + G/D'^g: a posynomial law (declares posynomial_terms)."""

    def __init__(self):
        super().__init__(
            "posy", lambda p, X: p["E"] + p["A"] * X["N"] ** -p["a"] + p["B"] * X["D"] ** -p["b"]
            + p["G"] * X["D_spec"] ** -p["g"], ("N", "D", "D_spec"),
            [Parameter(n, 0.0, 1e6) for n in ("E", "A", "B", "G", "a", "b", "g")])

    def posynomial_terms(self, p):
        return [(p["E"], {}), (p["A"], {"N": -p["a"]}), (p["B"], {"D": -p["b"]}),
                (p["G"], {"D_spec": -p["g"]})]


def test_gp_for_posynomial_laws():
    law = _PosyLaw()
    fits = {"a": (law, dict(E=1.5, A=400, B=400, G=50, a=0.34, b=0.28, g=0.2)),
            "b": (law, dict(E=1.7, A=400, B=200, G=80, a=0.34, b=0.3, g=0.25))}
    g = plan.split(fits, C, baselines=False)
    assert g.solver == "gp" and g.success
    s = plan.split(fits, C, gp=False, baselines=False)
    assert s.solver == "newton"
    assert g.objective_value == pytest.approx(s.objective_value, rel=1e-7)
    assert g.flops == pytest.approx(C, rel=1e-9)
    with pytest.raises(PlanError, match="posynomial"):
        plan.split(TWO, C, gp=True)


def test_frontier_matches_single_plans():
    budgets = np.logspace(19, 23, 40)[::-1]  # any order
    f = plan.frontier(MIXED, budgets)
    assert f.success and len(f.frame) == 40
    np.testing.assert_allclose(f.frame["budget"], budgets)
    np.testing.assert_allclose(f.frame["flops"], budgets, rtol=1e-9)
    assert np.all(f.frame["objective"] <= f.frame["pretrain_only"] + 1e-12)
    for i in (0, 17, 39):
        p = plan.split(MIXED, budgets[i], baselines=False)
        assert f.frame["objective"][i] == pytest.approx(p.objective_value, rel=1e-7)
    capped = plan.frontier(TWO, np.logspace(20, 22, 5), caps={"code": 5e9})
    assert np.all(capped.frame["D_spec[code]"] <= 5e9 * (1 + 1e-9))
    for i, c in enumerate(np.logspace(20, 22, 5)):
        p = plan.split(TWO, c, caps={"code": 5e9}, baselines=False)
        assert capped.frame["objective"][i] == pytest.approx(p.objective_value, rel=1e-6)
    assert "Split frontier" in f.summary()
    json.dumps(f.to_dict())


def test_frontier_figure():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = plan.frontier(TWO, np.logspace(19, 22, 12)).plot()
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, mixopt.plan; print('matplotlib' in sys.modules, 'cvxpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


@pytest.mark.parametrize("kwargs, match", [
    ({"budget": 0.0}, "positive"),
    ({"budget": -1e21}, "positive"),
    ({"budget": [1e20, 1e21]}, "frontier"),
    ({"weights": [0.5, 0.6]}, "sum to 1"),
    ({"weights": [1.5, -0.5]}, "'math'"),
    ({"weights": {"code": 0.5, "bio": 0.5}}, "unknown domain"),
    ({"weights": {"code": 1.0}}, "miss domain"),
    ({"weights": [1.0]}, "1 entries for 2 domains"),
    ({"caps": {"code": -1.0}}, "caps\\['code'\\]"),
    ({"caps": {"bio": 1e9}}, "unknown domain 'bio'"),
    ({"objective": "best"}, "objective"),
    ({"N": -3.0}, "N must be"),
    ({"flops": lambda N, t: 6 * N * t + t**1.5}, "linear"),
])
def test_bad_input(kwargs, match):
    budget = kwargs.pop("budget", C)
    with pytest.raises(PlanError, match=match):
        plan.split(TWO, budget, **kwargs)


def test_bad_fits_and_infeasible():
    with pytest.raises(PlanError, match="non-empty"):
        plan.split({}, C)
    with pytest.raises(PlanError, match="fits\\['gen'\\].*chinchilla"):
        plan.split({"gen": ("chinchilla", {"E": 1.7, "A": 400, "B": 400, "alpha": 0.3,
                                           "beta": 0.3}), **TWO}, C)
    with pytest.raises(PlanError, match="fits\\['math'\\]"):
        plan.split({"code": TWO["code"], "math": "not a fit"}, C)
    with pytest.raises(InfeasiblePlanError, match="too small"):
        plan.split(TWO, 1e3)
    with pytest.raises(InfeasiblePlanError, match="caps cannot absorb"):
        plan.split(TWO, C, N=1e9, max_D=1e9, caps={"code": 1e9, "math": 1e9})
    # with N free, tiny caps are absorbed by a huge model trained on few tokens
    big = plan.split(TWO, C, max_D=1e3, caps={"code": 1e3, "math": 1e3}, baselines=False)
    assert big.tokens == pytest.approx(3e3) and big.N == pytest.approx(C / 6 / 3e3)
    with pytest.raises(PlanError, match="gp"):
        plan.split(TWO, C, gp="yes")


def test_worst_objective_with_a_cap_solves_and_holds_the_cap():
    """Issue 16 item 1: the cap Jacobian was padded twice under objective='worst'."""
    caps = {"code": 1e9}
    p = plan.split(TWO, C, objective="worst", caps=caps)
    assert p.success
    assert p.D_spec["code"] <= 1e9 * (1 + 1e-9)
    flops = 6 * p.N * (p.D + sum(p.D_spec.values()))
    assert flops == pytest.approx(C, rel=1e-9)
    # no point on a grid of N with the same cap does better on the worst loss
    best = np.inf
    for N in np.geomspace(p.N / 2, p.N * 2, 9):
        T = C / (6 * N)
        for fc in np.linspace(0, 1e9 / T, 6):
            for fm in np.linspace(0, 1 - fc, 21):
                Dk = np.array([fc * T, fm * T])
                L = _losses(TWO, N, (1 - fc - fm) * T, Dk)
                best = min(best, float(np.max(L)))
    assert max(p.loss.values()) <= best + 1e-9
