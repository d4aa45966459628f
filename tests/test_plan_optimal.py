"""Compute-optimal allocation, inverse questions and FLOP models (mixopt.plan)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import plan
from mixopt.errors import InfeasiblePlanError, PlanError

HOFF = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
FIT = ("chinchilla", HOFF)
BUDGETS = np.logspace(18, 25, 8)


def _brute(law, params, C, flops=None, n=200001, lo=1e3):
    """Dense grid over log N with D = tokens(N, C): the reference optimum."""
    fm = plan.as_flop_model(flops)
    logN = np.linspace(np.log(lo), np.log(C / 6.0) - 1e-9, n)
    N = np.exp(logN)
    D = fm.tokens(N, C)
    ok = D >= 1.0
    L = law.predict(params, {"N": N[ok], "D": D[ok]})
    i = int(np.argmin(L))
    return N[ok][i], L[i]


def test_closed_form_by_hand():
    # alpha = beta = 0.5, A = B = 1: G = (0.5 / 0.5)^(1/1) = 1, so N = D = (C/6)^(1/2);
    # C = 6e20 -> N = D = 1e10, loss = E + 1e10^-0.5 + 1e10^-0.5 = 2 + 2e-5
    fit = ("chinchilla", {"E": 2.0, "A": 1.0, "B": 1.0, "alpha": 0.5, "beta": 0.5})
    a = plan.compute_optimal(fit, 6e20)
    assert a.solver == "closed_form"
    assert isinstance(a.N, float) and isinstance(a.loss, float)
    assert a.N == pytest.approx(1e10, rel=1e-12)
    assert a.D == pytest.approx(1e10, rel=1e-12)
    assert a.loss == pytest.approx(2.0 + 2e-5, rel=1e-12)
    # Hoffmann's fit: G = (0.34*406.4 / (0.28*410.7))^(1/0.62); N = G (C/6)^(0.28/0.62)
    G = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62)
    b = plan.compute_optimal(FIT, 1e21)
    assert b.N == pytest.approx(G * (1e21 / 6) ** (0.28 / 0.62), rel=1e-12)
    assert b.D == pytest.approx(1e21 / 6 / b.N, rel=1e-12)


def test_closed_form_equals_numeric_and_brute_force():
    a = plan.compute_optimal(FIT, BUDGETS)
    b = plan.compute_optimal(FIT, BUDGETS, solver="numeric")
    assert a.solver == "closed_form" and b.solver == "golden"
    assert isinstance(a.N, np.ndarray) and a.N.shape == BUDGETS.shape
    np.testing.assert_allclose(b.N, a.N, rtol=1e-7)
    np.testing.assert_allclose(b.D, a.D, rtol=1e-7)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-12)
    np.testing.assert_allclose(6 * a.N * a.D, BUDGETS, rtol=1e-12)
    law = mixopt.laws.get("chinchilla")
    for C in (1e19, 1e23):
        n_ref, l_ref = _brute(law, HOFF, C)
        i = int(np.argmin(np.abs(BUDGETS - C)))
        assert a.loss[i] <= l_ref * (1 + 1e-12)
        assert a.N[i] == pytest.approx(n_ref, rel=1e-3)


def test_gp_solver_agrees():
    a = plan.compute_optimal(FIT, [1e20, 1e22])
    g = plan.compute_optimal(FIT, [1e20, 1e22], solver="gp")
    assert g.solver == "gp"
    np.testing.assert_allclose(g.N, a.N, rtol=1e-3)
    np.testing.assert_allclose(g.loss, a.loss, rtol=1e-8)


def test_attention_flops_by_hand_and_numeric_solve():
    fm = plan.AttentionFlops(2048, n_layers=24, d_model=2048)
    # 6N + 3 * 2 * n_layer * n_ctx * d_model = 6e9 + 6 * 24 * 2048 * 2048 = 6e9 + 603,979,776
    assert fm.per_token(1e9) == pytest.approx(6e9 + 603_979_776, rel=1e-15)
    assert fm(1e9, 10.0) == pytest.approx(10 * (6e9 + 603_979_776))
    # aspect-ratio scaling: N = 12 n_layer d_model^2 with d_model = 64 n_layer
    ar = plan.AttentionFlops(1024, aspect_ratio=64)
    nl, dm = ar.shape(12 * 10 * 640**2)
    assert nl == pytest.approx(10) and dm == pytest.approx(640)
    # posynomial form equals per_token
    N = np.array([1e7, 1e9, 1e11])
    for m in (fm, ar, plan.AttentionFlops(512, vocab_size=50000)):
        poly = sum(c * N**e for c, e in m.posynomial())
        np.testing.assert_allclose(poly, m.per_token(N), rtol=1e-12)
    a = plan.compute_optimal(FIT, 1e21, flops=ar)
    assert a.solver == "golden"
    assert ar(a.N, a.D) == pytest.approx(1e21, rel=1e-12)
    n_ref, l_ref = _brute(mixopt.laws.get("chinchilla"), HOFF, 1e21, flops=ar)
    assert a.loss <= l_ref * (1 + 1e-12)
    assert a.N == pytest.approx(n_ref, rel=1e-3)
    g = plan.compute_optimal(FIT, 1e21, flops=ar, solver="gp")
    assert g.N == pytest.approx(a.N, rel=1e-3)


def test_callable_flops_and_conversions():
    lin = plan.CallableFlops(lambda N, t: 6 * N * t)
    assert lin.linear
    non = plan.CallableFlops(lambda N, t: 6 * N * t + t**1.5)
    assert not non.linear
    t = non.tokens(1e8, non(1e8, 3e9))
    assert t == pytest.approx(3e9, rel=1e-10)
    a = plan.compute_optimal(FIT, 1e21, flops=lambda N, t: 6 * N * t)
    b = plan.compute_optimal(FIT, 1e21)
    assert a.N == pytest.approx(b.N, rel=1e-7)
    c = plan.compute_optimal(FIT, 1e21, flops=non.fn)
    assert non(c.N, c.D) == pytest.approx(1e21, rel=1e-9)
    assert c.loss >= b.loss  # extra FLOPs per token can only hurt
    # 1e6 tokens / (8 * 1024 tokens per step) = 122.07 -> 123 steps
    assert int(plan.tokens_to_steps(1e6, 8, 1024)) == 123
    assert float(plan.steps_to_tokens(123, 8, 1024)) == 123 * 8 * 1024
    with pytest.raises(PlanError, match="batch_size"):
        plan.tokens_to_steps(1e6, 0, 1024)
    with pytest.raises(PlanError, match="flops"):
        plan.compute_optimal(FIT, 1e21, flops="bogus")
    with pytest.raises(PlanError, match="context"):
        plan.AttentionFlops(-1)


def test_custom_law_numeric():
    law = mixopt.laws.custom(
        "kaplan_like", lambda p, X: p["E"] + (p["Nc"] / X["N"]) ** p["a"]
        + (p["Dc"] / X["D"]) ** p["b"] + 0.0 * X["D"],
        ("N", "D"), {"E": (0, 10), "Nc": (0, 1e20), "Dc": (0, 1e20), "a": (0, 2), "b": (0, 2)})
    params = {"E": 1.5, "Nc": 1e7, "Dc": 1e8, "a": 0.3, "b": 0.35}
    a = plan.compute_optimal((law, params), [1e19, 1e22])
    for i, C in enumerate((1e19, 1e22)):
        n_ref, l_ref = _brute(law, params, C)
        assert a.loss[i] <= l_ref * (1 + 1e-12)
        assert a.N[i] == pytest.approx(n_ref, rel=1e-3)


def test_caps_fixed_n_fixed_d():
    free = plan.compute_optimal(FIT, 1e22)
    capped = plan.compute_optimal(FIT, 1e22, max_D=1e11)  # binding: free D is 3.2e11
    assert capped.D == pytest.approx(1e11, rel=1e-12)
    assert capped.N == pytest.approx(1e22 / 6e11, rel=1e-12)
    assert capped.loss > free.loss
    loose = plan.compute_optimal(FIT, 1e22, max_D=1e13)
    assert loose.N == pytest.approx(free.N, rel=1e-12)
    num = plan.compute_optimal(FIT, 1e22, max_D=1e11, solver="numeric")
    assert num.N == pytest.approx(capped.N, rel=1e-7)
    b = plan.best_loss_at(FIT, 1e22, max_D=1e11)
    assert b.loss == pytest.approx(capped.loss, rel=1e-12)
    n = plan.best_loss_at(FIT, 1e22, N=1e9)  # D = C / (6 N) = 1e22 / 6e9
    assert n.D == pytest.approx(1e22 / 6e9, rel=1e-12)
    assert n.loss == pytest.approx(
        1.69 + 406.4 / 1e9**0.34 + 410.7 / (1e22 / 6e9) ** 0.28, rel=1e-12)
    d = plan.best_loss_at(FIT, 1e22, D=1e11)
    assert d.N == pytest.approx(1e22 / 6e11, rel=1e-12)
    assert n.loss >= free.loss and d.loss >= free.loss
    with pytest.raises(PlanError, match="exactly one"):
        plan.best_loss_at(FIT, 1e22, N=1e9, D=1e11)


def test_budget_for_loss():
    targets = np.array([2.0, 2.3, 3.0])
    r = plan.budget_for_loss(FIT, targets)
    np.testing.assert_allclose(plan.compute_optimal(FIT, r.budget).loss, targets, rtol=1e-10)
    np.testing.assert_allclose(r.loss, targets, rtol=1e-10)
    fm = plan.AttentionFlops(2048)
    r2 = plan.budget_for_loss(FIT, 2.3, flops=fm)  # numeric bisection path
    assert isinstance(r2.budget, float)
    assert r2.loss == pytest.approx(2.3, rel=1e-9)
    assert r2.budget > r.budget[1]  # attention FLOPs make each loss level dearer
    with pytest.raises(InfeasiblePlanError, match="asymptote"):
        plan.budget_for_loss(FIT, 1.69)
    with pytest.raises(InfeasiblePlanError, match="asymptote"):
        plan.budget_for_loss(FIT, [2.0, 1.5])
    with pytest.raises(PlanError, match="target_loss"):
        plan.budget_for_loss(FIT, -1.0)


def _fake_bootstrap(n=64, seed=0, with_fit=True):
    rng = np.random.default_rng(seed)
    samples = pd.DataFrame({k: v * np.exp(0.03 * rng.standard_normal(n)) for k, v in HOFF.items()})

    class Boot:
        pass

    b = Boot()
    b.law, b.samples = mixopt.laws.get("chinchilla"), samples
    if with_fit:
        b.fit = FIT
    return b


def test_bootstrap_distribution_matches_per_sample_closed_form():
    boot = _fake_bootstrap()
    dist = plan.compute_optimal(boot, [1e20, 1e22], level=0.9)
    assert dist.samples["N"].shape == (64, 2)
    ref = np.array([[plan.compute_optimal(("chinchilla", row.to_dict()), C).N
                     for C in (1e20, 1e22)] for _, row in boot.samples.iterrows()])
    np.testing.assert_allclose(dist.samples["N"], ref, rtol=1e-12)
    ci = dist.conf_int()
    np.testing.assert_allclose(ci["N_lower"], np.quantile(ref, 0.05, axis=0), rtol=1e-12)
    np.testing.assert_allclose(ci["N_upper"], np.quantile(ref, 0.95, axis=0), rtol=1e-12)
    point = plan.compute_optimal(FIT, [1e20, 1e22])
    np.testing.assert_allclose(dist.N, point.N, rtol=1e-12)  # point estimate from the fit
    num = plan.compute_optimal(boot, [1e20, 1e22], solver="numeric")
    np.testing.assert_allclose(num.samples["N"], ref, rtol=1e-6)
    scalar = plan.compute_optimal(_fake_bootstrap(with_fit=False), 1e21)
    assert isinstance(scalar.N, float) and isinstance(scalar.lower["N"], float)
    assert scalar.lower["N"] < scalar.N < scalar.upper["N"]
    assert "loss_upper" in scalar.to_frame().columns and "bootstrap" in scalar.summary()
    import json

    json.dumps(dist.to_dict())


def test_with_mixopt_fit_and_bootstrap():
    rng = np.random.default_rng(1)
    N = np.repeat(np.logspace(7, 9, 5), 4)
    D = np.tile(np.logspace(9, 11, 4), 5)
    loss = mixopt.laws.get("chinchilla").predict(HOFF, {"N": N, "D": D})
    data = pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(0.005 * rng.standard_normal(20))})
    fit = mixopt.fit("chinchilla", data)
    a = plan.compute_optimal(fit, 1e21)
    assert a.success and a.law == "chinchilla"
    boot = fit.bootstrap(12, seed=0)
    dist = plan.compute_optimal(boot, [1e20, 1e21])
    assert dist.n_samples == 12 and np.all(dist.conf_int()["loss_lower"] <= dist.loss + 1e-12)


def test_result_objects():
    a = plan.compute_optimal(FIT, [1e20, 1e21])
    f = a.to_frame()
    assert list(f.columns) == ["budget", "N", "D", "D/N", "loss"] and len(f) == 2
    assert "closed_form" in a.summary()
    import json

    d = json.loads(json.dumps(a.to_dict()))
    assert d["N"] == pytest.approx(list(a.N))


@pytest.mark.parametrize("budget, match", [
    (0.0, "positive"), (-1e20, "positive"), (np.nan, "positive"), ([[1e20]], "1-D"),
    ("lots", "number"), ([], "empty")])
def test_bad_budget(budget, match):
    with pytest.raises(PlanError, match=match):
        plan.compute_optimal(FIT, budget)


def test_bad_inputs():
    with pytest.raises(PlanError, match="split"):
        plan.compute_optimal(("transfer", {"E": 1, "A": 1, "B": 1, "alpha": .3, "beta": .3,
                                           "K": 1, "rho": .5}), 1e21)
    with pytest.raises(PlanError, match="missing parameter"):
        plan.compute_optimal(("chinchilla", {"E": 1.0}), 1e21)
    with pytest.raises(PlanError, match="tuple"):
        plan.compute_optimal(42, 1e21)
    with pytest.raises(PlanError, match="solver"):
        plan.compute_optimal(FIT, 1e21, solver="magic")
    with pytest.raises(PlanError, match="max_D"):
        plan.compute_optimal(FIT, 1e21, max_D=-5)
    with pytest.raises(InfeasiblePlanError, match="too small"):
        plan.compute_optimal(FIT, 1e3)  # 6 * min_N(1e3) * 1 token = 6e3 FLOPs needed
    with pytest.raises(PlanError, match="level"):
        plan.compute_optimal(_fake_bootstrap(), 1e21, level=1.5)


def test_budget_for_loss_respects_min_N():
    """Issue 16 item 6: a target reached below min_N must not be reported from the closed form."""
    fit = ("chinchilla", HOFF)
    a = plan.budget_for_loss(fit, 100.0)
    assert a.loss == pytest.approx(100.0, rel=1e-9) or a.loss <= 100.0
    assert a.N >= 1e3 * (1 - 1e-12)
    b = plan.budget_for_loss(fit, 2.5)  # an ordinary target still uses the closed form
    assert b.loss == pytest.approx(2.5, rel=1e-9)
