"""Closed-form Jacobians of the built-in laws against finite differences (the slow path).

Each built-in law overrides ``Law.log_predict_raw_jac``; the base-class method (central
differences, vectorised over parameters) stays the reference. The analytic one must agree to
finite-difference accuracy at random parameter sets spanning each law's start grid, on data that
include zero pretraining or zero specialisation tokens, and give the same log prediction exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixopt
from mixopt.laws.base import Law

LAWS = ["chinchilla", "additive", "transfer", "multiplicative"]


def _data(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 40
    X = {"N": 10 ** rng.uniform(6, 10, n), "D": 10 ** rng.uniform(8, 11, n)}
    if name != "chinchilla":
        X["D_spec"] = 10 ** rng.uniform(6, 10, n)
        X["D"][:5] = 0.0  # experts from scratch
        X["D_spec"][5:10] = 0.0  # the general model on the domain
    return X


def _thetas(law: Law, rng: np.random.Generator, S: int = 25) -> np.ndarray:
    grid = law.grid()
    lo, hi = grid.min(axis=0), grid.max(axis=0)
    return lo + (hi - lo) * rng.uniform(size=(S, law.n_params))


def _richardson(law: Law, theta: np.ndarray, X: dict[str, np.ndarray]) -> np.ndarray:
    """Fourth-order central differences, one parameter at a time: (S, n, P)."""
    out = []
    for i in range(theta.shape[-1]):
        h = 1e-4 * np.maximum(1.0, np.abs(theta[:, i]))[:, None]
        e = np.zeros(theta.shape[-1])
        e[i] = 1.0

        def f(t: float, e: np.ndarray = e, h: np.ndarray = h) -> np.ndarray:
            return law.log_predict_raw(theta + t * e * h, X)

        d1 = (f(1) - f(-1)) / 2.0
        d2 = (f(2) - f(-2)) / 4.0
        out.append((4.0 * d1 - d2) / 3.0 / h)
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("name", LAWS)
def test_analytic_jacobian_matches_finite_differences(name):
    rng = np.random.default_rng(3)
    law = mixopt.laws.get(name)
    X = _data(name, rng)
    theta = _thetas(law, rng)
    f, J = law.log_predict_raw_jac(theta, X)
    assert type(law).log_predict_raw_jac is not Law.log_predict_raw_jac
    np.testing.assert_array_equal(f, law.log_predict_raw(theta, X))
    fd = _richardson(law, theta, X)
    assert J.shape == fd.shape == (theta.shape[0], X["N"].size, law.n_params)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)
    # and against the base class's central differences (the path a custom law takes)
    f2, J2 = Law.log_predict_raw_jac(law, theta, X)
    np.testing.assert_allclose(f2, f, rtol=0, atol=0)
    np.testing.assert_allclose(J, J2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", LAWS)
def test_jacobian_broadcasts_over_leading_axes(name):
    rng = np.random.default_rng(4)
    law = mixopt.laws.get(name)
    X = _data(name, rng)
    theta = _thetas(law, rng, S=6)
    f, J = law.log_predict_raw_jac(theta.reshape(2, 3, -1), X)
    f1, J1 = law.log_predict_raw_jac(theta, X)
    np.testing.assert_array_equal(f.reshape(6, -1), f1)
    np.testing.assert_array_equal(J.reshape(6, X["N"].size, -1), J1)
    f0, J0 = law.log_predict_raw_jac(theta[0], X)
    np.testing.assert_array_equal(f0, f1[0])
    np.testing.assert_array_equal(J0, J1[0])


def test_transfer_jacobian_at_zero_pretraining_is_finite():
    # D = 0: no transferred data, so d/dK = d/drho = 0 exactly (sigma log D -> 0, not nan)
    law = mixopt.laws.get("transfer")
    X = {"N": np.array([1e8, 1e9]), "D": np.array([0.0, 0.0]), "D_spec": np.array([1e8, 1e9])}
    theta = law.to_fit(dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=5.0, rho=0.8))
    f, J = law.log_predict_raw_jac(theta, X)
    assert np.isfinite(J).all()
    np.testing.assert_array_equal(J[:, 5:], 0.0)


def test_chinchilla_grid_prediction_equals_log_sum_exp():
    # many rows sharing few exponents take the tabulated path; it must equal the log-sum-exp
    law = mixopt.laws.get("chinchilla")
    rng = np.random.default_rng(8)
    X = _data("chinchilla", rng)
    grid = law.grid().copy()
    grid[:7, 1] = 650.0  # overflow of exp(a): those rows fall back
    grid[7:9, 0] = -700.0
    fast = law.log_predict_raw(grid, X)
    slow = Law.log_predict_raw(law, grid, X)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(fast[:9], slow[:9])
    few = law.log_predict_raw(grid[:100], X)  # too few rows: the plain path
    np.testing.assert_array_equal(few, slow[:100])
