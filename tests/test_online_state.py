"""state_dict round trips (bit for bit, through JSON), history, wrappers and bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import mixopt.online as mo
from mixopt.errors import GraphError, MixtureError

K = 3
A = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def factories():
    return {
        "Static": lambda: mo.Static([0.2, 0.3, 0.5]),
        "Stratified": lambda: mo.Stratified(K),
        "Schedule": lambda: mo.Schedule([(2, [1.0, 0.0, 0.0]), (None, [0.0, 0.5, 0.5])],
                                        every=1),
        "SkillIt": lambda: mo.SkillIt(A, eta=0.4, window=2, normalize_losses=True),
        "DoReMi": lambda: mo.DoReMi([1.0, 1.5, 0.5], smoothing=0.01),
        "ODM": lambda: mo.ODM(K),
        "Aioli": lambda: mo.Aioli(K, lp_rounds=1, lp_steps=1, update_every=10, ema=0.2, seed=4),
        "ADO": lambda: mo.ADO(K, min_points=2, tokens_per_update=10.0, start_step=0,
                              refit_every=3, ignore_steps=0, fit_stride=1),
        "EMA(Floor(SkillIt))": lambda: mo.EMA(mo.Floor(mo.SkillIt(A), 0.1), decay=0.5),
        "Freeze(Prior(DoReMi))": lambda: mo.Freeze(
            mo.Prior(mo.DoReMi([1.0, 1.0, 1.0]), [1.0, 2.0, 3.0]), {"0": 0.2}),
        "Smooth(ODM)": lambda: mo.Smooth(mo.ODM(K), 0.1),
    }


def _losses(rng, t):
    return 1.0 + 2.0 / (1 + t) + 0.1 * rng.random(K)


@pytest.mark.parametrize("name", list(factories()))
def test_state_round_trip_is_exact(name):
    rng = np.random.default_rng(0)
    rule = factories()[name]()
    for t in range(5):
        rule.update(_losses(rng, t))
    state = json.loads(json.dumps(rule.state_dict()))  # strict JSON on the way
    assert json.dumps(state, allow_nan=False)
    twin = factories()[name]()
    twin.load_state_dict(state)
    rebuilt = mo.from_state_dict(state)
    assert np.array_equal(twin.weights, rule.weights)
    for t in range(5, 12):  # continue all three identically, bit for bit
        L = _losses(rng, t)
        a, b, c = rule.update(L), twin.update(L), rebuilt.update(L)
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert json.dumps(twin.state_dict()) == json.dumps(rule.state_dict())
    assert rule.history.equals(rebuilt.history)
    w = rule.weights
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12


def test_history_frame_and_get_params():
    r = mo.SkillIt(A, eta=0.5)
    assert len(r.history) == 1  # the initial weights, before any update
    r.update([1.0, 2.0, 3.0])
    h = r.history
    assert list(h.index) == [0, 1]
    assert h[("loss", "2")].iloc[1] == 3.0 and np.isnan(h[("loss", "2")].iloc[0])
    np.testing.assert_allclose(h["weight"].iloc[1].to_numpy(), r.weights)
    p = r.get_params()
    assert p["eta"] == 0.5 and p["window"] == 3 and p["graph"] == A.tolist()
    assert "SkillIt" in r.summary()


def test_wrappers_formulas():
    base = mo.Static([0.9, 0.09, 0.01])
    # floor 0.05: third raised to 0.05, the other two scaled by (1 - 0.05) / 0.99
    f = mo.Floor(base, 0.05)
    np.testing.assert_allclose(f.weights, [0.9 * 0.95 / 0.99, 0.09 * 0.95 / 0.99, 0.05])
    # smoothing c = 0.3: 0.7 v + 0.1
    np.testing.assert_allclose(mo.Smooth(base, 0.3).weights, [0.73, 0.163, 0.107])
    # prior [1, 10, 100]: v * prior = [0.9, 0.9, 1.0], sum 2.8
    expected = np.array([0.9, 0.9, 1.0]) / 2.8
    np.testing.assert_allclose(mo.Prior(base, [1, 10, 100]).weights, expected)
    # freeze skill 2 at 0.5: others share 0.5 in ratio 0.9 : 0.09
    fr = mo.Freeze(base, {2: 0.5})
    np.testing.assert_allclose(fr.weights, [0.5 * 0.9 / 0.99, 0.5 * 0.09 / 0.99, 0.5])
    # EMA decay 0.5 over SkillIt(eye(2), eta=1, window=1): v1 ~ exp([1, 0]) -> sig(1)
    e = mo.EMA(mo.SkillIt(np.eye(2), eta=1.0, window=1), decay=0.5)
    assert e.weights.tolist() == [0.5, 0.5]
    s1 = 1 / (1 + np.exp(-1.0))
    assert e.update([1.0, 0.0])[0] == pytest.approx(0.5 * 0.5 + 0.5 * s1, abs=1e-15)


def test_freeze_list_holds_current_weights_and_passthrough():
    r = mo.Freeze(mo.DoReMi([0.0, 0.0, 0.0]), ["1"])
    w = r.update([5.0, 1.0, 1.0])
    assert w[1] == pytest.approx(1 / 3, abs=1e-15) and w[0] > w[2]
    assert np.array_equal(r.average_weights, r.inner.average_weights)  # read from inner


def test_docstring_example_rule_works():
    ns: dict = {}
    src = mo.__doc__.split("Writing a new rule in 20 lines")[1].split("::", 1)[1]
    code = src.split("It inherits")[0]
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "<doc>", "exec"), ns)
    rule = ns["FollowTheLoss"](3, power=2.0)
    # losses [1, 2, 3] ** 2 = [1, 4, 9] / 14
    np.testing.assert_allclose(rule.update([1.0, 2.0, 3.0]), np.array([1, 4, 9]) / 14)
    with pytest.raises(MixtureError, match="length 2, expected 3"):
        rule.update([1.0, 2.0])
    assert np.all(mo.Floor(rule, 0.2).weights >= 0.2 - 1e-15)


# ----------------------------------------------------------------------------- bad input
def test_bad_losses():
    r = mo.SkillIt(A)
    with pytest.raises(MixtureError, match="length 2, expected 3"):
        r.update([1.0, 2.0])
    with pytest.raises(MixtureError, match="NaN at \\[1\\].*nan_policy='skip'"):
        r.update([1.0, np.nan, 2.0])
    with pytest.raises(MixtureError, match="inf at \\[0\\]"):
        r.update([np.inf, 1.0, 2.0])
    with pytest.raises(MixtureError, match="must be an array of numbers"):
        r.update(["a", "b", "c"])
    with pytest.raises(MixtureError, match="1-D"):
        r.update([[1.0, 2.0, 3.0]])


def test_nan_policy_skip_keeps_weights():
    r = mo.EMA(mo.DoReMi([1.0, 1.0], nan_policy="skip"), decay=0.5)
    w = r.update([2.0, 1.0])
    with pytest.warns(RuntimeWarning, match="update skipped"):
        w2 = r.update([np.nan, 1.0])
    assert np.array_equal(w, w2) and r.skipped == 1 and r.inner.skipped == 1
    assert np.all(np.isfinite(r.weights))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r.update([1.0, 1.0])
    with pytest.raises(MixtureError, match="nan_policy must be"):
        mo.DoReMi([1.0, 1.0], nan_policy="ignore")


def test_bad_options():
    with pytest.raises(MixtureError, match="eta must be a finite non-negative"):
        mo.SkillIt(A, eta=-0.1)
    with pytest.raises(MixtureError, match="window must be an integer >= 1"):
        mo.SkillIt(A, window=0)
    with pytest.raises(GraphError, match="2-D"):
        mo.SkillIt(np.ones(3))
    with pytest.raises(GraphError, match="2 train_skills for 3 matrix rows"):
        class G:
            matrix = A
            train_skills = ["a", "b"]
        mo.SkillIt(G())
    with pytest.raises(GraphError, match="target 'zz' is not an evaluated skill"):
        mo.SkillIt(A, targets=["zz"])
    with pytest.raises(MixtureError, match="eta must be"):
        mo.DoReMi([1.0, 1.0], eta=-1)
    with pytest.raises(MixtureError, match="one_hot_factor must exceed 1/k"):
        mo.Aioli(4, one_hot_factor=0.25)
    with pytest.raises(MixtureError, match="update_every \\(40\\) must exceed the probe budget"):
        mo.Aioli(4, lp_rounds=2, lp_steps=5, update_every=40)
    with pytest.raises(MixtureError, match="at least 2 groups"):
        mo.Aioli(1)
    with pytest.raises(MixtureError, match="floor 0.5 is infeasible for 3 skills"):
        mo.Floor(mo.Stratified(3), 0.5)
    with pytest.raises(MixtureError, match="prior must be finite and positive"):
        mo.Prior(mo.Stratified(2), [1.0, 0.0])
    with pytest.raises(MixtureError, match="cannot freeze 'q'"):
        mo.Freeze(mo.Stratified(2), {"q": 0.1})


def test_weights_off_the_simplex():
    with pytest.raises(MixtureError, match="sum to 1 .*sum to 1.2"):
        mo.Static([0.6, 0.6])
    with pytest.raises(MixtureError, match="non-negative; entry 0 is -0.5"):
        mo.Static([-0.5, 1.5])
    with pytest.raises(MixtureError, match="weights has length 2, expected 3"):
        mo.DoReMi([1.0, 1.0, 1.0], initial_weights=[0.5, 0.5])
    with pytest.raises(MixtureError, match="finite"):
        mo.Static([np.nan, 1.0])
    with pytest.raises(MixtureError, match=r"pieces\[1\] weights must sum to 1"):
        mo.Schedule([(10, [1.0, 0.0]), (20, [0.5, 0.6])])
    with pytest.raises(MixtureError, match="must exceed the previous piece"):
        mo.Schedule([(10, [1.0, 0.0]), (5, [0.5, 0.5])])
    with pytest.raises(MixtureError, match="needs the position"):
        mo.Schedule([(10, [1.0, 0.0])]).update([1.0, 1.0])
    with pytest.raises(MixtureError, match="warmup_tokens \\(100\\) < total_tokens \\(50\\)"):
        mo.Schedule.warmup("dyck", "c4", warmup_tokens=100, total_tokens=50,
                           accounting="substitutive")
    with pytest.raises(MixtureError, match="accounting must be"):
        mo.Schedule.warmup("dyck", "c4", warmup_tokens=1, total_tokens=5, accounting="both")


def test_bad_state_dicts():
    r = mo.SkillIt(A)
    r.update([1.0, 1.0, 1.0])
    state = r.state_dict()
    with pytest.raises(MixtureError, match="state_dict is for rule 'SkillIt'.*DoReMi"):
        mo.DoReMi([1.0, 1.0, 1.0]).load_state_dict(state)
    small = mo.SkillIt(np.eye(2))
    with pytest.raises(MixtureError, match="weights has shape \\(3,\\), expected \\(2,\\)"):
        small.load_state_dict(state)
    broken = dict(state, state={"n_evals": 1})
    with pytest.raises(MixtureError, match="SkillIt state lacks 'buffer'"):
        mo.SkillIt(A).load_state_dict(broken)
    with pytest.raises(MixtureError, match="missing key"):
        mo.SkillIt(A).load_state_dict({"rule": "SkillIt"})
    with pytest.raises(MixtureError, match="unknown rule 'Nope'"):
        mo.from_state_dict({"rule": "Nope", "params": {}})


def test_floor_weights_against_bisection():
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(1, 10))
        v = rng.dirichlet(np.full(k, 0.3))
        f = float(rng.uniform(0, 1 / k))
        w = mo.floor_weights(v, f)
        lo, hi = 0.0, 1e6  # brute force: bisect the common factor s of max(f, s v)
        for _ in range(200):
            s = (lo + hi) / 2
            lo, hi = (lo, s) if np.maximum(f, s * v).sum() > 1 else (s, hi)
        np.testing.assert_allclose(w, np.maximum(f, lo * v), atol=1e-9)
        assert abs(w.sum() - 1) < 1e-12 and w.min() >= f - 1e-15
