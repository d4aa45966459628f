"""Ablation designs and the simulator of ablation runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mixopt.skills as sk
from mixopt.errors import DataError, GraphError


def test_linear_and_pairwise_designs() -> None:
    d = sk.design(["x", "y", "z"], method="linear", steps=100, seeds=2)
    assert len(d) == 6 and list(d.runs["seed"]) == [0, 1] * 3
    assert np.array_equal(d.mixtures.to_numpy(), np.eye(3))
    assert list(d.mixtures.index) == ["one:x", "one:y", "one:z"]
    p = sk.design(4, method="pairwise", steps=10)
    # 4 single-skill runs + C(4, 2) = 6 pair runs
    assert len(p) == 10 and p.skills == ["skill0", "skill1", "skill2", "skill3"]
    pairs = p.mixtures.iloc[4:].to_numpy()
    assert np.array_equal(np.sort(pairs, axis=1)[:, -2:], np.full((6, 2), 0.5))
    q = sk.design(["x", "y", "z"], method="pairwise", pairs=[("z", "x"), ("x", "z")])
    assert list(q.mixtures.index) == ["one:x", "one:y", "one:z", "pair:x+z"]
    first = next(iter(q))
    assert first == {"run": "one:x", "seed": 0, "steps": 1000,
                     "mixture": {"x": 1.0, "y": 0.0, "z": 0.0}}
    assert "4 mixtures x 1 seeds = 4 training runs" in q.summary()


def test_mixed_designs() -> None:
    d = sk.design(["a", "b", "c"], method="demix", steps=10)
    # Aioli structure: 0.625 on skill j, (1 - 0.625) / 2 = 0.1875 on each other skill
    expected = np.full((3, 3), 0.1875) + (0.625 - 0.1875) * np.eye(3)
    assert np.allclose(d.mixtures.to_numpy(), expected)
    r = sk.design(3, method="regression", steps=10, seed=5)
    W = r.mixtures.to_numpy()
    assert W.shape == (9, 3)  # max(3 k, k + 5) = 9 runs
    assert np.allclose(W.sum(axis=1), 1) and (W >= 0).all()
    assert np.linalg.matrix_rank(W) == 3
    again = sk.design(3, method="regression", steps=10, seed=5)
    assert np.array_equal(again.mixtures.to_numpy(), W)
    gen = sk.design(3, method="regression", steps=10, seed=np.random.default_rng(5))
    assert np.array_equal(gen.mixtures.to_numpy(), W)
    both = sk.design(3, method="demix", structure="both", n_runs=4, seed=0, seeds=[7, 8])
    assert both.runs["run"].nunique() == 7 and set(both.runs["seed"]) == {7, 8}
    back = sk.Design.from_dict(json.loads(json.dumps(both.to_dict())))
    pd.testing.assert_frame_equal(back.runs, both.runs, check_dtype=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skills": 3, "method": "random"}, "unknown design method 'random'"),
        ({"skills": 3, "method": "linear", "pairs": []}, r"does not take option\(s\) \['pairs'\]"),
        ({"skills": 0}, "positive count"),
        ({"skills": ["a", "a"]}, "duplicate labels"),
        ({"skills": "abc"}, "count or a list of labels"),
        ({"skills": 3, "steps": 0}, "steps must be a positive integer, got 0"),
        ({"skills": 3, "steps": 1.5}, "steps must be a positive integer, got 1.5"),
        ({"skills": 3, "seeds": 0}, "seeds must be a positive count"),
        ({"skills": 3, "seeds": [1, 1]}, "seeds must be distinct"),
        ({"skills": 1, "method": "pairwise"}, "at least 2 skills"),
        ({"skills": ["a", "b"], "method": "pairwise", "pairs": [("a", "q")]},
         "unknown skill 'q'"),
        ({"skills": ["a", "b"], "method": "pairwise", "pairs": [("a", "a")]},
         "two different skills"),
        ({"skills": 4, "method": "demix", "one_hot_factor": 0.25}, r"must lie in \(1/k, 1\]"),
        ({"skills": 3, "method": "demix", "structure": "grid"}, "structure must be"),
        ({"skills": 3, "method": "regression", "seed": 0, "n_runs": 4},
         "n_runs must be an integer >= 5"),
        ({"skills": 3, "method": "demix", "n_runs": 4}, "n_runs applies to"),
        ({"skills": 3, "method": "regression", "seed": 0, "alpha": -1.0},
         "alpha must be a positive"),
    ],
)
def test_design_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        sk.design(**kwargs)


def test_simulator_matches_the_law_by_hand() -> None:
    g = sk.SkillGraph([[0.01, 0.02], [0.0, 0.03]], ["a", "b"])
    runs = pd.DataFrame({"run": ["r"], "steps": [10], "a": [0.5], "b": [0.5]})
    sim = sk.simulate_ablations(g, runs, eval_every=5)
    ev = sim.evals.set_index(["step", "skill"])["loss"]
    # A^T p = (0.5 * 0.01 + 0.5 * 0, 0.5 * 0.02 + 0.5 * 0.03) = (0.005, 0.025) per step
    assert ev[(10, "a")] == pytest.approx(1 - 10 * 0.005)
    assert ev[(10, "b")] == pytest.approx(1 - 10 * 0.025)
    assert ev[(5, "b")] == pytest.approx(1 - 5 * 0.025)
    assert sorted(sim.evals["step"].unique()) == [0, 5, 10]
    prop = sk.simulate_ablations(g, runs, dynamics="proportional", initial_loss=[2.0, 3.0])
    pv = prop.evals.set_index(["step", "skill"])["loss"]
    # L(t) = L(0) (1 - A^T p)^t
    assert pv[(10, "a")] == pytest.approx(2.0 * 0.995**10)
    assert pv[(10, "b")] == pytest.approx(3.0 * 0.975**10)
    assert sorted(prop.evals["step"].unique()) == list(range(11))  # every max(1, 10 // 10) step
    # the step-by-step path (taken with process noise) agrees with the closed form
    for dyn in ("linear", "proportional"):
        tiny = sk.simulate_ablations(g, runs, dynamics=dyn, eval_every=5, process_noise=1e-300,
                                     seed=0)
        exact = sk.simulate_ablations(g, runs, dynamics=dyn, eval_every=5)
        assert np.allclose(tiny.evals["loss"], exact.evals["loss"], rtol=1e-12)


def test_simulator_noise_seeds_and_design_objects() -> None:
    truth = sk.SkillGraph.chain(3, edge_weight=0.01, diagonal=0.005)
    d = sk.design(truth.train_skills, method="linear", steps=20, seeds=3)
    a = sk.simulate_ablations(truth, d, noise=0.01, seed=1)
    b = sk.simulate_ablations(truth, d, noise=0.01, seed=1)
    c = sk.simulate_ablations(truth, d, noise=0.01, seed=2)
    pd.testing.assert_frame_equal(a.evals, b.evals)
    assert not np.allclose(a.evals["loss"], c.evals["loss"])
    assert list(a.evals.columns) == ["run", "seed", "step", "skill", "loss"]
    assert set(a.evals["seed"]) == {0, 1, 2}
    assert a.mixtures.equals(d.mixtures)
    exact = sk.simulate_ablations(truth, d)
    resid = a.evals["loss"] - exact.evals["loss"]
    assert resid.std() == pytest.approx(0.01, rel=0.15)
    assert "simulated 9 runs (3 mixtures)" in a.summary()
    json.dumps(a.to_dict())
    # a graph with more trained skills than the design uses: the others get proportion 0
    wide = sk.SkillGraph(np.ones((3, 2)) * 0.01, ["a", "b", "c"], ["u", "v"])
    runs = pd.DataFrame({"run": ["r"], "steps": [4], "a": [1.0]})
    sim = sk.simulate_ablations(wide, runs)
    assert set(sim.evals["skill"]) == {"u", "v"}


def test_simulator_errors() -> None:
    g = sk.SkillGraph.chain(2)
    runs = pd.DataFrame({"run": ["r"], "steps": [10], "skill0": [1.0]})
    with pytest.raises(GraphError, match="graph must be a SkillGraph"):
        sk.simulate_ablations(np.eye(2), runs)
    with pytest.raises(DataError, match="design is missing column 'steps'"):
        sk.simulate_ablations(g, runs.drop(columns="steps"))
    with pytest.raises(DataError, match="design must be a mixopt.skills.Design"):
        sk.simulate_ablations(g, [1, 2])
    with pytest.raises(DataError, match=r"design skill\(s\) \['zz'\] are not trained skills"):
        sk.simulate_ablations(g, runs.rename(columns={"skill0": "zz"}))
    with pytest.raises(DataError, match="mixture of run 'r' sums to 0.5"):
        sk.simulate_ablations(g, runs.assign(skill0=0.5))
    with pytest.raises(DataError, match="run 'r' has 2.5"):
        sk.simulate_ablations(g, runs.assign(steps=2.5))
    with pytest.raises(DataError, match="noise must be a finite non-negative"):
        sk.simulate_ablations(g, runs, noise=-1)
    with pytest.raises(DataError, match="dynamics must be one of"):
        sk.simulate_ablations(g, runs, dynamics="cubic")
    with pytest.raises(DataError, match="eval_every must be a positive integer"):
        sk.simulate_ablations(g, runs, eval_every=0)
    with pytest.raises(DataError, match="initial_loss must be finite and positive"):
        sk.simulate_ablations(g, runs, initial_loss=-1.0)
    with pytest.raises(DataError, match="initial_loss has 3 values for 2 evaluated skills"):
        sk.simulate_ablations(g, runs, initial_loss=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"no value for evaluated skill\(s\) \['skill1'\]"):
        sk.simulate_ablations(g, runs, initial_loss={"skill0": 1.0})
