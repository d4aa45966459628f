"""The bounded-memory engine paths give the answers of the dense (slow) formulas.

:meth:`Objective.value` and :meth:`Objective.system` accumulate over blocks of starts x runs;
the dense reference materialises all residuals ``(S, n)`` and the Jacobian ``(S, n, k)`` at once
(``residuals_jac``) and forms ``g = J^T w psi``, ``H = J^T diag(w omega) J`` directly.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixopt
from mixopt.datasets import simulate
from mixopt.fitting import huber
from mixopt.fitting.engine import LMOptions, levenberg_marquardt
from mixopt.fitting.objective import Objective, huber_irls_weight, huber_psi
from mixopt.fitting.problem import Problem, make_starts

TRUTH = dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=5.0, rho=0.8)


def _problem(n: int = 300, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    runs = {"N": 10 ** rng.uniform(7, 9.5, n), "D": 10 ** rng.uniform(8, 10.5, n),
            "D_spec": 10 ** rng.uniform(7, 9.5, n)}
    runs["D"][:10] = 0.0
    data = simulate("transfer", TRUTH, runs, noise=0.01, seed=seed)
    return Problem.build("transfer", data, fixed={"rho": 0.8})


def _dense(obj: Objective, theta: np.ndarray, W: np.ndarray):
    r, J = obj.residuals_jac(theta)
    f = (W * huber(r, obj.delta)).sum(-1)
    g = np.einsum("sn,snk->sk", W * huber_psi(r, obj.delta), J)
    H = np.einsum("sn,snk,snl->skl", W * huber_irls_weight(r, obj.delta), J, J)
    return f, g, H


@pytest.mark.parametrize("chunk", [50, 5_000, 4_000_000])
def test_blocked_system_equals_dense(chunk):
    pb = _problem()
    starts = make_starts(pb, 40, 0)
    obj = pb.objective()
    obj.chunk = chunk
    f, g, H, _ = obj.system(starts)
    fd, gd, Hd = _dense(obj, starts, np.broadcast_to(obj.w, (len(starts), obj.n)))
    np.testing.assert_allclose(f, fd, rtol=1e-12)
    np.testing.assert_allclose(g, gd, rtol=1e-10, atol=1e-14 * np.abs(gd).max())
    np.testing.assert_allclose(H, Hd, rtol=1e-10, atol=1e-14 * np.abs(Hd).max())
    np.testing.assert_allclose(obj.value(starts), fd, rtol=1e-12)
    f2, g2 = obj.value_grad(starts)
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_array_equal(g2, g)


def test_exact_gauss_newton_matrix_equals_dense():
    pb = _problem(n=120)
    starts = make_starts(pb, 10, 0)
    obj = pb.objective()
    obj.chunk = 400
    near = np.arange(len(starts)) % 3 == 0
    f, g, H, Hx = obj.system(starts, exact=near)
    r, J = obj.residuals_jac(starts)
    inside = (np.abs(r) <= obj.delta) * obj.w
    Hd = np.einsum("sn,snk,snl->skl", inside, J, J)
    np.testing.assert_allclose(Hx[near], Hd[near], rtol=1e-10, atol=1e-14 * np.abs(Hd).max())
    np.testing.assert_array_equal(Hx[~near], H[~near])
    assert obj.system(starts)[3] is None


def test_blocked_system_with_per_group_weights():
    pb = _problem(n=120)
    rng = np.random.default_rng(1)
    W = rng.integers(0, 3, size=(5, 120)).astype(float)
    starts = make_starts(pb, 12, 0)
    rows = rng.integers(0, 5, size=len(starts))
    obj = pb.objective(weights=W)
    obj.chunk = 300  # many blocks of starts and runs
    f, g, H, _ = obj.system(starts, rows)
    fd, gd, Hd = _dense(obj, starts, W[rows])
    np.testing.assert_allclose(f, fd, rtol=1e-12)
    np.testing.assert_allclose(g, gd, rtol=1e-10, atol=1e-14 * np.abs(gd).max())
    np.testing.assert_allclose(H, Hd, rtol=1e-10, atol=1e-14 * np.abs(Hd).max())
    np.testing.assert_allclose(obj.value(starts, rows), fd, rtol=1e-12)


def test_small_blocks_do_not_change_the_fit():
    # the whole LM run with tiny blocks follows the same path as with one block
    pb = _problem(n=200, seed=2)
    starts = make_starts(pb, 60, 0)
    a = pb.objective()
    b = pb.objective()
    b.chunk = 1_000
    opts = LMOptions(prune=((1, 20), (3, 5)), prescreen=30)
    sa = levenberg_marquardt(a, starts, opts)
    sb = levenberg_marquardt(b, starts, opts)
    np.testing.assert_array_equal(sa.index, sb.index)
    np.testing.assert_allclose(sb.theta, sa.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sb.f, sa.f, rtol=1e-9)


def test_fit_matches_finite_difference_jacobian_fit():
    # the analytic-Jacobian fit reaches the optimum of the finite-difference one (or lower)
    pb = _problem(n=150, seed=3)
    data = pb.data
    law = mixopt.laws.get("transfer")
    res = mixopt.fit(law, data, grid=80, seed=0)

    class FD(type(law)):
        log_predict_raw_jac = mixopt.laws.Law.log_predict_raw_jac

    slow = mixopt.fit(FD(), data, grid=80, seed=0)
    assert res.objective <= slow.objective * (1 + 1e-9)
    for k in law.param_names:
        assert res.params[k] == pytest.approx(slow.params[k], rel=1e-4), k


def test_subset_objective_equals_objective_of_the_subset():
    pb = _problem(n=200)
    runs = np.sort(np.random.default_rng(5).choice(200, 70, replace=False))
    sub = Problem.build("transfer", pb.data.iloc[runs], fixed={"rho": 0.8}).objective()
    starts = make_starts(pb, 15, 0)
    np.testing.assert_allclose(pb.objective().subset(runs).value(starts), sub.value(starts),
                               rtol=1e-13)


def test_prescreen_on_a_subset_of_runs_reaches_the_same_fit():
    # 2,500 runs: the prescreen ranks the 1,200 starts on 512 of them, or on all
    import importlib

    solve = importlib.import_module("mixopt.fitting.fit").solve
    rng = np.random.default_rng(7)
    N = 10 ** rng.uniform(7, 9.5, 2500)
    data = simulate("chinchilla", dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
                    {"N": N, "D": N * 10 ** rng.uniform(0.5, 2.5, 2500)}, noise=0.01, seed=7)
    pb = Problem.build("chinchilla", data)
    starts = make_starts(pb, 1200, 0)
    a = solve(pb, starts, lm=LMOptions(prescreen_runs=512))
    b = solve(pb, starts, lm=LMOptions(prescreen_runs=None))
    assert a["status"] == b["status"] == 0
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-10)
    np.testing.assert_allclose(a["theta"], b["theta"], rtol=1e-5, atol=1e-7)
