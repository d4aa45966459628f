"""Closed-form derivatives used by the split planner, against finite differences (slow path).

``log_loss_derivatives`` of each built-in L(N, D, D') law gives log L and its gradient and
Hessian in (log N, log D, log D'); the planner's fallback for other laws is the central
difference stencil. Plans with the closed form must equal plans on the stencil.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixopt
from mixopt import plan
from mixopt.plan import _newton

LAWS = {
    "additive": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, G=0.5, S=3e8, gamma=0.5),
    "transfer": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=5.0, rho=0.8),
    "multiplicative": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, S=3e8, gamma=0.2),
}


def _fd(law, theta, x, y, z, h=1e-4):
    """Value, gradient and Hessian of log L by 4th-order central differences."""
    def f(p):
        X = {"N": np.exp(p[..., 0]), "D": np.exp(p[..., 1]), "D_spec": np.exp(p[..., 2])}
        return law.log_predict_raw(theta, X)

    p0 = np.stack([x, y, z], -1)
    E = np.eye(3) * h
    g = np.stack([(8 * (f(p0 + E[i]) - f(p0 - E[i])) - f(p0 + 2 * E[i]) + f(p0 - 2 * E[i]))
                  / (12 * h) for i in range(3)], -1)
    H = np.empty(x.shape + (3, 3))
    for i in range(3):
        for j in range(3):
            H[..., i, j] = (f(p0 + E[i] + E[j]) - f(p0 + E[i] - E[j]) - f(p0 - E[i] + E[j])
                            + f(p0 - E[i] - E[j])) / (4 * h * h)
    return f(p0), g, H


@pytest.mark.parametrize("name", sorted(LAWS))
def test_log_loss_derivatives_match_finite_differences(name):
    law = mixopt.laws.get(name)
    rng = np.random.default_rng(0)
    thetas = np.stack([law.to_fit(LAWS[name]), law.to_fit({**LAWS[name], "beta": 0.6,
                                                          "E": 0.5})])
    n = 30
    x = rng.uniform(16, 23, (2, n))
    y = rng.uniform(17, 25, (2, n))
    z = rng.uniform(15, 24, (2, n))
    lv, g, H = law.log_loss_derivatives(thetas, x, y, z)
    l0, gf, Hf = _fd(law, thetas, x, y, z)
    np.testing.assert_allclose(lv, l0, rtol=1e-14)
    np.testing.assert_allclose(g, gf, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hf, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(H, np.swapaxes(H, -1, -2), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_log_loss_derivatives_at_zero_tokens(name):
    # D = 0 or D' = 0 (log = -inf): finite value, and the live coordinates' derivatives agree
    law = mixopt.laws.get(name)
    theta = law.to_fit(LAWS[name])
    x = np.array([20.0, 20.0])
    y = np.array([-np.inf, 22.0])
    z = np.array([21.0, -np.inf])
    lv, g, H = law.log_loss_derivatives(theta, x, y, z)
    assert np.isfinite(lv).all()
    X = {"N": np.exp(x), "D": np.exp(y), "D_spec": np.exp(z)}
    np.testing.assert_allclose(lv, law.log_predict_raw(theta, X), rtol=1e-14)
    # a coordinate at -inf stays there under +-h: its finite-difference derivative is 0
    _, gf, Hf = _fd(law, theta, x, y, z)
    assert np.isfinite(g).all() and np.isfinite(H).all()
    np.testing.assert_allclose(g, gf, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hf, rtol=1e-4, atol=1e-6)


def _fits(name, K, seed=0):
    rng = np.random.default_rng(seed)
    base = LAWS[name]
    return {f"d{k}": (name, {**base, "E": base["E"] + 0.05 * k, "B": base["B"] * (1 + 0.2 * k),
                             "beta": base["beta"] * rng.uniform(0.8, 1.2)}) for k in range(K)}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_plans_with_closed_form_equal_the_stencil(name, monkeypatch):
    fits = _fits(name, 4)
    fast = plan.split(fits, 1e21, baselines=False)
    capped = plan.split(fits, 1e21, baselines=False, caps={"d1": 1e9})
    worst = plan.split(fits, 1e21, baselines=False, objective="worst")
    law_cls = type(mixopt.laws.get(name))
    monkeypatch.delattr(law_cls.__mro__[1], "log_loss_derivatives")
    assert not hasattr(mixopt.laws.get(name), "log_loss_derivatives")
    slow = plan.split(fits, 1e21, baselines=False)
    slow_c = plan.split(fits, 1e21, baselines=False, caps={"d1": 1e9})
    slow_w = plan.split(fits, 1e21, baselines=False, objective="worst")
    for a, b in ((fast, slow), (capped, slow_c), (worst, slow_w)):
        assert a.success and b.success
        assert a.objective_value <= b.objective_value * (1 + 1e-10)
        assert a.N == pytest.approx(b.N, rel=1e-4)
        total = b.D + sum(b.D_spec.values())  # D may be a tiny, flat share of the tokens
        assert a.D == pytest.approx(b.D, rel=1e-4, abs=1e-6 * total)
    assert _newton is not None
