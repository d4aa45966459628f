"""mixopt.mixture.optimize against brute force, between its solvers, and on RegMix's runs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import mixopt.mixture as mm
from mixopt.errors import InfeasiblePlanError, MixtureError
from mixopt.mixture.simplex import project_euclidean, project_kl

DOMS = ["a", "b", "c"]


def model3(kind: str = "mixing", target="m1", n: int = 40):
    """Known exponential laws on 3 domains whose optimum is interior."""
    rng = np.random.default_rng(0)
    R = pd.DataFrame(rng.dirichlet(np.ones(3), size=n), columns=DOMS)
    X = R.to_numpy()
    M = pd.DataFrame({
        "m1": 1.0 + np.exp(X @ np.array([-2.0, 0.5, 1.0])) + 0.0,
        "m2": 1.5 + np.exp(X @ np.array([1.0, -1.5, -0.2])),
    })
    # make m1 interior: add a second convex term through a linear metric mix
    return mm.fit(R, M, target=target, model=kind)


def simplex_grid(step: float = 1e-3) -> np.ndarray:
    k = int(round(1 / step))
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    a, b = i[keep] * step, j[keep] * step
    return np.column_stack([a, b, 1 - a - b]).clip(0, 1)


def brute(model, mask=None, kl=0.0, prior=None):
    G = simplex_grid()
    if mask is not None:
        G = G[mask(G)]
    f = model.predict(G)
    if kl:
        with np.errstate(divide="ignore", invalid="ignore"):
            f = f + kl * np.where(G > 0, G * np.log(G / prior), 0).sum(axis=1)
    i = int(np.argmin(f))
    return G[i], f[i]


@pytest.mark.parametrize("target", [{"m1": 0.5, "m2": 0.5}, "worst"])
def test_convex_optimum_matches_brute_force_under_caps_and_floors(target):
    m = model3(target=target)
    caps = {"a": 0.6}
    floors = {"c": 0.05}
    plan = mm.optimize(m, caps=caps, floors=floors)
    assert plan.success and plan.method == "convex" and plan.status == 0
    w = plan.weights
    assert w["a"] <= 0.6 and w["c"] >= 0.05 and w.sum() == pytest.approx(1, abs=1e-15)
    x, f = brute(m, lambda G: (G[:, 0] <= 0.6) & (G[:, 2] >= 0.05))
    assert plan.loss <= f + 1e-9  # never worse than the 1e-3 lattice
    np.testing.assert_allclose(w.to_numpy(), x, atol=3e-3)


def test_kl_pulls_toward_the_prior_and_matches_brute_force():
    m = model3(target={"m1": 0.5, "m2": 0.5})
    prior = {"a": 0.2, "b": 0.3, "c": 0.5}
    p = np.array([0.2, 0.3, 0.5])
    free = mm.optimize(m)
    plans = [mm.optimize(m, prior=prior, kl=k) for k in (0.1, 1.0, 10.0)]
    dist = [np.abs(pl.weights.to_numpy() - p).sum() for pl in [free, *plans]]
    assert dist == sorted(dist, reverse=True)  # stronger KL, closer to the prior
    x, f = brute(m, kl=1.0, prior=p)
    assert plans[1].objective <= f + 1e-9
    np.testing.assert_allclose(plans[1].weights.to_numpy(), x, atol=3e-3)
    with pytest.raises(MixtureError, match="needs a prior"):
        mm.optimize(m, kl=1.0)


@pytest.mark.parametrize("kind", ["mixing", "linear"])
def test_mirror_descent_agrees_with_the_convex_program(kind):
    m = model3(kind, target={"m1": 0.5, "m2": 0.5})
    caps = {"a": 0.45, "b": 0.5}
    exact = mm.optimize(m, caps=caps, method="convex")
    md = mm.optimize(m, caps=caps, method="mirror", prior={"a": 1, "b": 1, "c": 1}, kl=0.0)
    assert md.success, md.message
    assert md.loss == pytest.approx(exact.loss, rel=1e-7, abs=1e-9)
    np.testing.assert_allclose(md.weights, exact.weights, atol=2e-4)


def test_search_is_regmix_mean_of_top_k_and_holds_caps():
    m = model3("gbm", target={"m1": 0.5, "m2": 0.5}, n=80)
    caps = {"a": 0.3}
    plan = mm.optimize(m, caps=caps, floors={"b": 0.1}, n_samples=5000, top_k=16, seed=1)
    assert plan.method == "search" and plan.success
    assert plan.weights["a"] <= 0.3 and plan.weights["b"] >= 0.1
    assert plan.weights.sum() == pytest.approx(1.0, abs=1e-15)
    again = mm.optimize(m, caps=caps, floors={"b": 0.1}, n_samples=5000, top_k=16, seed=1)
    pd.testing.assert_series_equal(plan.weights, again.weights)
    # an exponential model searched by sampling lands near its exact optimum
    e = model3("mixing", target={"m1": 0.5, "m2": 0.5})
    s = mm.optimize(e, method="search", n_samples=20000, top_k=8, rounds=4, seed=0)
    assert s.loss == pytest.approx(mm.optimize(e).loss, rel=2e-3)
    with pytest.raises(MixtureError, match="smooth parametric"):
        mm.optimize(m, method="convex")


def test_infeasible_bounds_and_bad_options():
    m = model3()
    with pytest.raises(InfeasiblePlanError, match="caps sum to 0.9"):
        mm.optimize(m, caps={"a": 0.3, "b": 0.3, "c": 0.3})
    with pytest.raises(InfeasiblePlanError, match="floors sum to 1.2"):
        mm.optimize(m, floors={"a": 0.6, "b": 0.6})
    with pytest.raises(InfeasiblePlanError, match="above its cap"):
        mm.optimize(m, caps={"a": 0.2}, floors={"a": 0.3})
    with pytest.raises(MixtureError, match=r"caps\['a'\]"):
        mm.optimize(m, caps={"a": float("nan")})
    with pytest.raises(MixtureError, match="kl must be"):
        mm.optimize(m, kl=-1.0)
    with pytest.raises(MixtureError, match="method must be"):
        mm.optimize(m, method="lbfgs")
    with pytest.raises(MixtureError, match="n_samples"):
        mm.optimize(m, n_samples=0, method="search")
    with pytest.raises(MixtureError, match="needs a MixtureModel"):
        mm.optimize("model")


def test_bootstrap_interval_and_report():
    m = model3(target={"m1": 0.5, "m2": 0.5})
    plan = mm.optimize(m, caps={"a": 0.5}, n_boot=20, seed=3)
    lo, hi = plan.interval
    assert lo <= plan.loss <= hi and plan.n_boot == 20 and plan.level == 0.95
    wi = plan.weights_interval
    assert list(wi.columns) == ["lower", "upper"] and (wi["upper"] <= 0.5 + 1e-12)["a"]
    again = mm.optimize(m, caps={"a": 0.5}, n_boot=20, seed=3)
    assert again.interval == plan.interval
    d = plan.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["weights"]["a"] == pytest.approx(plan.weights["a"])
    text = plan.summary()
    assert "Optimal mixture" in text and "bootstrap" in text and "swarm max" in text


def test_projections_hold_bounds_and_match_scipy():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    lo = np.array([0.0, 0.1, 0.0, 0.05])
    hi = np.array([0.5, 1.0, 0.2, 1.0])
    Y = rng.normal(size=(50, 4))
    X = project_euclidean(Y, lo, hi)
    assert (X >= lo).all() and (X <= hi).all()
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-15)
    P = rng.dirichlet(np.ones(4), size=5)
    K = project_kl(P, lo, hi)
    cons = [{"type": "eq", "fun": lambda x: x.sum() - 1}]
    for y, x, k, p in zip(Y[:5], X[:5], K, P):
        e = minimize(lambda z, y=y: ((z - y) ** 2).sum(), np.full(4, 0.25), bounds=list(
            zip(lo, hi)), constraints=cons, method="SLSQP", options={"ftol": 1e-14})
        np.testing.assert_allclose(x, e.x, atol=1e-6)
        kk = minimize(lambda z, p=p: (z * np.log(np.maximum(z, 1e-300) / p)).sum(),
                      np.full(4, 0.25), bounds=list(zip(np.maximum(lo, 1e-12), hi)),
                      constraints=cons, method="SLSQP", options={"ftol": 1e-14})
        np.testing.assert_allclose(k, kk.x, atol=1e-5)


def test_regmix_released_runs(regmix_dir):
    """RegMix's 1M runs: ranking of unseen mixtures, a capped optimum, transfer to 1B."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        R, M = mm.read_regmix(regmix_dir)
        Rt, Mt = mm.read_regmix(regmix_dir, split="test")
        assert R.shape == (512, 17) and M.shape == (512, 13) and "pile_cc" in M.columns
        gbm = mm.fit(R, M, target="pile_cc", model="gbm")
        assert gbm.score(Rt, Mt)["spearman"] >= 0.98  # RegMix's notebook: 0.989
        mix = mm.fit(R, M, target="pile_cc", model="mixing")
        assert mix.score(Rt, Mt)["spearman"] >= 0.955
        # unconstrained the law puts everything on Pile-CC; caps of 50% keep it a mixture
        assert mm.optimize(mix).weights["pile_cc"] == pytest.approx(1.0, abs=1e-6)
        caps = pd.Series(0.5, index=R.columns)
        plan = mm.optimize(mix, caps=caps)
        assert plan.success and plan.weights.max() <= 0.5
        assert plan.weights["pile_cc"] == pytest.approx(0.5, abs=1e-6)
        _, M60 = mm.read_regmix(regmix_dir, split="test", scale="60m")
        rt = mm.rank_transfer(Mt, M60, target="pile_cc")
        assert rt.n == 256 and 0.5 < rt.spearman < 1.0
