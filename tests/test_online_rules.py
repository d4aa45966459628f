"""Each online rule against its formula on hand-computed inputs (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mixopt.online as mo
from mixopt.errors import MixtureError
from mixopt.online.ado import fit_laws


def sig(x: float) -> float:
    """Weight of the first of two skills when p is proportional to exp([x, 0])."""
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- Static, Schedule
def test_static_and_stratified_never_change():
    r = mo.Static({"a": 0.25, "b": 0.75})
    assert r.skills == ["a", "b"]
    assert np.array_equal(r.update([3.0, 1.0]), [0.25, 0.75])
    assert mo.Static([1, 1, 3], normalize=True).weights.tolist() == [0.2, 0.2, 0.6]
    s = mo.Stratified(4)
    assert np.array_equal(s.update([1, 2, 3, 4]), np.full(4, 0.25))
    assert s.history[("loss", "3")].iloc[1] == 4.0  # losses are recorded
    assert not s.needs_eval


def test_schedule_pieces_by_step():
    # [0, 100): skill a only; [100, 300): half/half; from 300 on: b only
    sched = mo.Schedule([(100, {"a": 1.0}), (300, {"a": 0.5, "b": 0.5}), (None, {"b": 1.0})],
                        every=50)
    assert sched.skills == ["a", "b"]
    assert sched.weights.tolist() == [1.0, 0.0]
    assert sched.update([1.0, 1.0]).tolist() == [1.0, 0.0]  # position 50
    assert sched.update([1.0, 1.0]).tolist() == [0.5, 0.5]  # position 100: second piece
    assert sched.weights_at(299.9).tolist() == [0.5, 0.5]
    assert sched.weights_at(300).tolist() == [0.0, 1.0]
    assert sched.update([1.0, 1.0], step=1000).tolist() == [0.0, 1.0]
    assert sched.tick(0).tolist() == [1.0, 0.0]
    assert sched.segment_steps == 50


def test_schedule_warmup_accountings():
    # additive: procedural on [0, 10), natural on [10, 110): natural keeps its 100 tokens
    add = mo.Schedule.warmup("dyck", {"c4": 3, "code": 1}, warmup_tokens=10, total_tokens=100,
                             accounting="additive")
    assert add.skills == ["dyck", "c4", "code"]
    assert add.total == 110.0
    assert add.budget() == {"dyck": 10.0, "c4": 75.0, "code": 25.0}
    assert add.weights_at(9.99).tolist() == [1.0, 0.0, 0.0]
    assert add.weights_at(10).tolist() == [0.0, 0.75, 0.25]
    # substitutive: procedural on [0, 10), natural on [10, 100): natural gets 100 - 10 = 90
    sub = mo.Schedule.warmup(["dyck", "eca"], "c4", warmup_tokens=10, total_tokens=100,
                             accounting="substitutive")
    assert sub.total == 100.0
    assert sub.budget() == {"dyck": 5.0, "eca": 5.0, "c4": 90.0}
    assert sub.update([2.0, 2.0, 2.0], tokens=50).tolist() == [0.0, 0.0, 1.0]


# ----------------------------------------------------------------------------- Skill-It
A2 = np.array([[1.0, 0.5], [0.0, 1.0]])


def test_skillit_initial_and_windowed_updates():
    r = mo.SkillIt(A2, eta=0.5, window=2)
    # p_1 ~ exp(0.5 * A 1) = exp(0.5 * [1.5, 1]) = exp([0.75, 0.5]) -> p_0 = sig(0.25)
    assert r.weights[0] == pytest.approx(sig(0.25), abs=1e-15)
    # L(1) = [2, 1]: A L = [2 + 0.5, 1] = [2.5, 1]; z = [1.25, 0.5] -> sig(0.75)
    assert r.update([2.0, 1.0])[0] == pytest.approx(sig(0.75), abs=1e-15)
    # L(2) = [1, 1]: window sum [3, 2]; A @ = [4, 2]; z = [2, 1] -> sig(1)
    assert r.update([1.0, 1.0])[0] == pytest.approx(sig(1.0), abs=1e-15)
    # L(3) = [0.5, 0.5]: window 2 drops L(1): [1.5, 1.5]; A @ = [2.25, 1.5]; z diff 0.375
    assert r.update([0.5, 0.5])[0] == pytest.approx(sig(0.375), abs=1e-15)


def test_skillit_matches_brute_force_reference():
    rng = np.random.default_rng(3)
    A = rng.uniform(0, 1, (4, 6))
    Ls = rng.uniform(0.5, 3, (7, 6))
    r = mo.SkillIt(A, eta=0.3, window=3)
    for t in range(7):
        got = r.update(Ls[t])
        z = 0.3 * A @ Ls[max(0, t - 2): t + 1].sum(axis=0)
        ref = np.exp(z) / np.exp(z).sum()
        np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_skillit_targets_average_window():
    A = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    r = mo.SkillIt(A, eta=0.5, window=2, targets=[2])
    # p_1 ~ exp(0.5 * A[:, [2]] 1) = exp([1, 0.5]) -> sig(0.5)
    assert r.weights[0] == pytest.approx(sig(0.5), abs=1e-15)
    r.update([9.0, 9.0, 1.0])
    # window mean of target column = (1 + 3) / 2 = 2; A[:, 2] * 2 = [4, 2]; z = [2, 1]
    assert r.update([9.0, 9.0, 3.0])[0] == pytest.approx(sig(1.0), abs=1e-15)


def test_skillit_eta_schedule_and_loss_normalisation():
    # loss0="first": L(0) is the first evaluation for good
    r = mo.SkillIt(np.eye(2), eta=0.5, window=1, eta_schedule=True, loss0="first")
    # L(0) = [2, 2] (sum 4): eta_0 = 0.5 * 4 / 4; z = [1, 1] -> uniform
    assert r.update([2.0, 2.0]).tolist() == [0.5, 0.5]
    # L = [1, 0.5] (sum 1.5): eta = 0.5 * 4 / 1.5 = 4/3; z diff = 4/3 * 0.5 = 2/3
    assert r.update([1.0, 0.5])[0] == pytest.approx(sig(2 / 3), abs=1e-15)
    # default (reference code): the second evaluation replaces L(0), so eta = 0.5 * 1.5 / 1.5
    d = mo.SkillIt(np.eye(2), eta=0.5, window=1, eta_schedule=True)
    d.update([2.0, 2.0])
    assert d.update([1.0, 0.5])[0] == pytest.approx(sig(0.25), abs=1e-15)
    n = mo.SkillIt(np.eye(2), eta=0.5, window=1, normalize_losses=True, loss0="first")
    assert n.update([2.0, 4.0]).tolist() == [0.5, 0.5]  # L / L(0) = [1, 1]
    # [1, 4] / [2, 4] = [0.5, 1]; z = 0.5 * [0.5, 1]; diff -0.25
    assert n.update([1.0, 4.0])[0] == pytest.approx(sig(-0.25), abs=1e-15)
    # default: L(0) = [1, 4] from the second evaluation on, [1, 4] / [1, 4] = [1, 1]
    nd = mo.SkillIt(np.eye(2), eta=0.5, window=1, normalize_losses=True)
    nd.update([2.0, 4.0])
    assert nd.update([1.0, 4.0]).tolist() == [0.5, 0.5]


def test_skillit_static_and_evals_per_update():
    st = mo.SkillIt.static(A2, eta=0.5)
    assert isinstance(st, mo.Static)
    assert st.weights[0] == pytest.approx(sig(0.25), abs=1e-15)
    r = mo.SkillIt(A2, eta=0.5, window=2, evals_per_update=2)
    w0 = r.weights
    assert np.array_equal(r.update([2.0, 1.0]), w0)  # 1st evaluation: no recompute
    # 2nd: window [2,1] + [1,1] = [3, 2]; A @ = [4, 2]; z diff 1
    assert r.update([1.0, 1.0])[0] == pytest.approx(sig(1.0), abs=1e-15)


class _FakeGraph:
    matrix = A2
    train_skills = ("x", "y")
    eval_skills = ("u", "v")


def test_skillit_duck_types_a_skill_graph():
    r = mo.SkillIt(_FakeGraph(), targets=["v"])
    assert r.skills == ["x", "y"] and r.eval_skills == ["u", "v"]
    assert r.targets == [1]


# ----------------------------------------------------------------------------- DoReMi
def test_doremi_update_smoothing_and_average():
    r = mo.DoReMi([1.0, 1.0], eta=1.0, smoothing=0.1)
    # L = [2, 1]: lambda = [1, 0]; w' ~ [0.5 e, 0.5] -> e / (1 + e); w = 0.9 w' + 0.05
    w1 = r.update([2.0, 1.0])
    a = 0.9 * math.e / (1 + math.e) + 0.05
    assert w1[0] == pytest.approx(a, abs=1e-15)
    # L = [0.5, 3]: lambda = [0 (clipped), 2]; w' ~ [a, (1 - a) e^2]
    w2 = r.update([0.5, 3.0])
    b = 0.9 * a / (a + (1 - a) * math.e**2) + 0.05
    assert w2[0] == pytest.approx(b, abs=1e-15)
    assert r.average_weights[0] == pytest.approx((a + b) / 2, abs=1e-15)
    assert r.excess_loss([0.5, 3.0]).tolist() == [0.0, 2.0]


def test_doremi_negative_excess_only_smooths():
    r = mo.DoReMi([1.0, 1.0, 1.0], smoothing=0.3, initial_weights=[0.7, 0.2, 0.1])
    # lambda = 0: w' = w; w = 0.7 w + 0.1
    np.testing.assert_allclose(r.update([0.5, 0.5, 0.5]), [0.59, 0.24, 0.17], rtol=1e-14)


# ----------------------------------------------------------------------------- ODM
def test_odm_exp3_with_unobserved_domains():
    r = mo.ODM(2, reward_scale=1.0, warmup_steps=0)  # counts updates, unscaled rewards
    # t = 1: eps_1 = min(1/2, sqrt(ln 2 / 2)) = 1/2 -> (1 - 2 eps) = 0: uniform
    # domain 1 unobserved (NaN): R = [1 / 0.5, 0] = [2, 0]
    assert r.update([1.0, np.nan]).tolist() == [0.5, 0.5]
    assert r.rewards.tolist() == [2.0, 0.0]
    # t = 2: R = [2, 0 + 3 / 0.5] = [2, 6]; eps_1 = 1/2; eps_2 = sqrt(ln 2 / 4)
    w = r.update([np.nan, 3.0])
    eps2 = math.sqrt(math.log(2) / 4)
    soft0 = 1 / (1 + math.exp(0.5 * 6 - 0.5 * 2))
    assert w[0] == pytest.approx((1 - 2 * eps2) * soft0 + eps2, abs=1e-15)
    assert mo.ODM.exploration(3, 2) == pytest.approx(math.sqrt(math.log(2) / 6))
    # a round with no observation changes only the exploration rate
    R = r.rewards.copy()
    r.update([np.nan, np.nan])
    assert np.array_equal(r.rewards, R)


# ----------------------------------------------------------------------------- Aioli
A_TRUE = np.array([[0.4, 0.1], [0.0, 0.2]])  # rows: evaluated group, columns: trained group


def _drive_aioli(rule, A, L0, rounds):
    """Feed exact linear-law losses: each probe step drops L by A @ x."""
    L = np.array(L0, dtype=float)
    rule.update(L)  # baseline evaluation (0-step segment)
    for _ in range(rounds):
        while rule.segment[0] == "probe":
            L = L - rule.segment_steps * A @ rule.weights
            rule.update(L)
        L = L - rule.segment_steps * A @ rule.weights  # exploitation segment
        rule.update(L)
    return L


def test_aioli_segments_and_probe_mixtures():
    r = mo.Aioli(3, lp_rounds=2, lp_steps=4, one_hot_factor=0.6, update_every=30, seed=1)
    assert r.segment == ("baseline", None) and r.segment_steps == 0
    r.update([5.0, 5.0, 5.0])
    groups = []
    for _ in range(6):  # lp_rounds * k probes of lp_steps steps
        kind, g = r.segment
        assert kind == "probe" and r.segment_steps == 4
        assert r.weights[g] == pytest.approx(0.6) and r.weights.min() == pytest.approx(0.2)
        groups.append(g)
        r.update([5.0, 5.0, 5.0])
    assert sorted(groups[:3]) == [0, 1, 2] and sorted(groups[3:]) == [0, 1, 2]  # each sweep
    assert r.segment == ("exploit", None) and r.segment_steps == 30 - 24


def test_aioli_recovers_A_and_updates_by_column_sums():
    r = mo.Aioli(2, eta=1.0, lp_rounds=1, lp_steps=1, one_hot_factor=0.75, update_every=10,
                 normalize=False)
    _drive_aioli(r, A_TRUE, [3.0, 3.0], rounds=1)
    np.testing.assert_allclose(r.A, A_TRUE, atol=1e-14)  # B = A X solved exactly
    # p ~ exp(eta * column sums) = exp([0.4, 0.3]) -> sig(0.1)
    assert r.mixture[0] == pytest.approx(sig(0.1), abs=1e-14)
    n = mo.Aioli(2, eta=1.0, lp_rounds=1, lp_steps=1, one_hot_factor=0.75, update_every=10)
    _drive_aioli(n, A_TRUE, [3.0, 3.0], rounds=1)
    # normalised: min 0 (no shift), divided by the sum 0.7 -> column sums [0.4, 0.3] / 0.7
    assert n.mixture[0] == pytest.approx(sig(0.1 / 0.7), abs=1e-14)


def test_aioli_diagonal_and_ema():
    d = mo.Aioli(2, eta=1.0, lp_rounds=1, lp_steps=1, one_hot_factor=0.75, update_every=10,
                 diagonal=True, normalize=False)
    _drive_aioli(d, A_TRUE, [3.0, 3.0], rounds=1)
    # B_00 = 0.4 * 0.75 + 0.1 * 0.25 = 0.325; B_11 = 0.0 * 0.25 + 0.2 * 0.75 = 0.15; / f
    np.testing.assert_allclose(np.diag(d.A), [0.325 / 0.75, 0.15 / 0.75], atol=1e-14)
    assert d.mixture[0] == pytest.approx(sig((0.325 - 0.15) / 0.75), abs=1e-14)
    e = mo.Aioli(2, eta=1.0, lp_rounds=1, lp_steps=1, one_hot_factor=0.75, update_every=10,
                 ema=0.5, normalize=False)
    _drive_aioli(e, A_TRUE, [3.0, 3.0], rounds=2)
    # the law is linear so both rounds estimate A_TRUE: A_bar = A_TRUE and p = p_0 exp(...)
    # restarts from uniform: the same sig(0.1), not sig(0.2) as without EMA
    assert e.mixture[0] == pytest.approx(sig(0.1), abs=1e-13)
    c = mo.Aioli(2, eta=1.0, lp_rounds=1, lp_steps=1, one_hot_factor=0.75, update_every=10,
                 normalize=False, ema=None)  # no EMA: the update compounds
    _drive_aioli(c, A_TRUE, [3.0, 3.0], rounds=2)
    assert c.mixture[0] == pytest.approx(sig(0.2), abs=1e-13)


def test_aioli_normalize_matrix_shift():
    # min -1 -> shift by +1: [[0, 2], [3, 1]]; sum 6
    out = mo.Aioli.normalize_matrix(np.array([[-1.0, 1.0], [2.0, 0.0]]))
    np.testing.assert_allclose(out, np.array([[0.0, 2.0], [3.0, 1.0]]) / 6)


# ----------------------------------------------------------------------------- ADO
def test_ado_fit_recovers_power_laws():
    n = np.tile(np.geomspace(10, 1e4, 30), (3, 1))
    truth = {"eps": np.array([1.0, 2.0, 0.5]), "beta": np.array([5.0, 1.0, 3.0]),
             "alpha": np.array([0.5, 0.25, 0.75])}
    y = truth["eps"][:, None] + truth["beta"][:, None] * n ** -truth["alpha"][:, None]
    fit = fit_laws(n, y, alpha_max=0.8, grid=160)  # grid step 0.005 contains the truth
    for key in truth:
        np.testing.assert_allclose(fit[key], truth[key], rtol=1e-8, atol=1e-9)


def test_ado_update_matches_reference_loop():
    eps, beta, alpha = np.array([1.0, 1.0]), np.array([4.0, 1.0]), np.array([0.5, 0.3])
    # mixopt's earlier variant, kept as options: own-count x-axis, fit as soon as possible,
    # inclusive mean, exact floor, no exponent bound, no smoothing, the grid fitter
    rule = mo.ADO(2, tokens_per_update=100.0, min_points=3, floor=0.05, gamma=0.9,
                  h_decay=0.9, fitter="grid", x_axis="domain", average="inclusive",
                  floor_mode="exact", alpha_min=0.0, start_step=0, refit_every=1,
                  ignore_steps=0, fit_stride=1, smoothing="none")
    # the recursion written out with the true law in place of the fit
    w, seen, h, rho_sum = np.full(2, 0.5), np.zeros(2), np.full(2, 0.5), np.zeros(2)
    for t in range(1, 9):
        seen = seen + w * 100.0
        h = 0.9 * h + 0.1 * w
        L = eps + beta * seen**-alpha
        got = rule.update(L)
        if t < 3:
            rho = np.full(2, 0.5)  # not enough points: the prior
        else:
            fitted = rule.params
            np.testing.assert_allclose(fitted["alpha"], alpha, atol=0.02)
            a, b, e = fitted["alpha"], fitted["beta"], fitted["eps"]
            pred = e + b * seen**-a
            rho = 0.5 * a * (pred - e) / seen * np.sqrt(h)
            rho = mo.floor_weights(rho / rho.sum(), 0.05)
        rho_sum += rho
        pi = 0.9 * rho_sum / t + 0.1 * rho
        w = pi / pi.sum()
        np.testing.assert_allclose(got, w, rtol=1e-12)
    # domain 0 (larger beta, faster power) learns faster per token at these n: upweighted
    assert got[0] > 0.5


def test_ado_mixopt_fitter_matches_truth():
    pytest.importorskip("mixopt.fitting")
    eps, beta, alpha = np.array([1.0, 0.5]), np.array([4.0, 2.0]), np.array([0.5, 0.3])
    rule = mo.ADO(2, tokens_per_update=100.0, min_points=5, refit_every=4, fitter="mixopt",
                  start_step=0, ignore_steps=0, fit_stride=1, smoothing="none", x_axis="domain")
    for _ in range(8):  # refits at steps 4 (5 points) and 8
        seen = rule.seen + rule.weights * 100.0
        rule.update(eps + beta * seen**-alpha)
    np.testing.assert_allclose(rule.params["alpha"], alpha, rtol=1e-4)
    np.testing.assert_allclose(rule.params["eps"], eps, rtol=1e-4)
    with pytest.raises(MixtureError, match="fitter must be"):
        mo.ADO(2, fitter="lbfgs")


def test_skillit_warns_on_negative_graph_entries():
    import warnings

    from mixopt.online import SkillIt

    with pytest.warns(UserWarning, match="negative entries"):
        SkillIt(np.array([[1.0, -2.0], [0.0, 1.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SkillIt(np.array([[1.0, 0.5], [0.0, 1.0]]))  # non-negative: no warning
