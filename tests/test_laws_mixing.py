"""Ye et al.'s mixing law on the simplex: k dropped, gentle starts, analytic Jacobian, aliases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.errors import LawError
from mixopt.fitting.problem import Problem, make_starts


def _swarm(m: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.dirichlet(np.full(m, 0.5), size=n),
                        columns=[f"d{j}" for j in range(m)])


def test_scale_is_dropped_on_the_simplex_and_kept_on_request():
    law = mixopt.laws.get("mixing", components=["a", "b"])
    assert law.param_names == ("c", "t_a", "t_b")
    # k exp(t . r) = exp((t + log k) . r) on the simplex: the law without k reproduces it.
    scaled = mixopt.laws.get("mixing", components=["a", "b"], scale=True)
    p = {"c": 2.0, "k": 0.5, "t_a": -1.0, "t_b": 0.5}
    q = {"c": 2.0, "t_a": -1.0 + np.log(0.5), "t_b": 0.5 + np.log(0.5)}
    X = {"a": np.array([0.3, 0.9]), "b": np.array([0.7, 0.1])}
    np.testing.assert_allclose(law.predict(q, X), scaled.predict(p, X), rtol=1e-14)
    assert law.predict(q, {"a": 0.3, "b": 0.7}) == pytest.approx(
        2 + np.exp(0.3 * q["t_a"] + 0.7 * q["t_b"]))
    with pytest.raises(LawError, match="list of column names"):
        mixopt.laws.get("mixing", components="ab")


def test_start_grid_grows_linearly_with_domains():
    for m in (2, 5, 17, 24):
        law = mixopt.laws.get("mixing", components=[f"d{j}" for j in range(m)])
        assert law.grid().shape == (3 * (2 * m + 1), m + 1)


@pytest.mark.parametrize("scale", [False, True])
def test_analytic_jacobian_matches_finite_differences(scale):
    law = mixopt.laws.get("mixing", components=["a", "b", "c3"], scale=scale)
    R = _swarm(3, 20, 0).to_numpy()
    X = {"a": R[:, 0], "b": R[:, 1], "c3": R[:, 2]}
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(4, law.n_params))
    f, J = law.log_predict_raw_jac(theta, X)
    f0, J0 = mixopt.laws.Law.log_predict_raw_jac(law, theta, X)
    np.testing.assert_allclose(f, f0, rtol=1e-14)
    np.testing.assert_allclose(J, J0, rtol=1e-6, atol=1e-8)


def test_seventeen_domains_recovered_from_data_starts():
    m = 17
    frame = _swarm(m, 200, 2)
    law = mixopt.laws.get("mixing", components=list(frame.columns))
    rng = np.random.default_rng(3)
    truth = {"c": 1.5, **{f"t_d{j}": float(v) for j, v in enumerate(rng.normal(0.5, 1.0, m))}}
    frame["loss"] = law.predict(truth, frame)
    res = mixopt.fit(law, frame)
    assert res.success
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
    # The data-driven starts come first and the grid stays small.
    starts = make_starts(Problem.build(law, frame), None, 0)
    assert starts.shape[0] == 6 + 3 * (2 * m + 1)


def test_mixture_columns_are_never_renamed_by_aliases():
    # "c", "tokens", "n" and "model_size" are aliases of canonical run-table columns.
    names = ["c", "tokens", "n", "model_size"]
    frame = _swarm(4, 40, 4)
    frame.columns = names
    law = mixopt.laws.get("mixing", components=names)
    truth = {"c": 2.0, "t_c": -1.0, "t_tokens": 0.5, "t_n": 0.2, "t_model_size": 1.0}
    frame["loss"] = law.predict(truth, frame)
    np.testing.assert_allclose(
        law.predict(truth, frame.to_dict("list")), frame["loss"], rtol=1e-14)
    res = mixopt.fit(law, frame)
    assert res.params["t_tokens"] == pytest.approx(0.5, abs=1e-5)
