"""mixopt.compare: held-out extrapolation error picks the generating law."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.datasets import simulate
from mixopt.errors import DataError, FitError
from mixopt.fitting.selection import holdout_mask


def spec_grid():
    g = np.array(np.meshgrid([2e7, 5e7, 1e8, 3e8, 1e9, 3e9], [1e9, 4e9, 1.6e10],
                             [0.0, 1e8, 5e8, 2e9], indexing="ij")).reshape(3, -1)
    return pd.DataFrame({"N": g[0], "D": g[1], "D_spec": g[2]})


def test_compare_picks_true_form():
    truth = dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=50.0, rho=0.6)
    data = simulate("transfer", truth, spec_grid(), noise=0.002, seed=0)
    table = mixopt.compare(["additive", "transfer", "multiplicative"], data, holdout="N",
                           grid=60)
    assert list(table.columns[:4]) == ["law", "n_params", "n_train", "n_test"]
    assert table.loc[0, "law"] == "transfer"
    assert table["mean_rel_error"].is_monotonic_increasing
    assert table.loc[0, "n_test"] == 12 and table.loc[0, "n_train"] == 60
    assert table.loc[0, "mean_rel_error"] < 0.01


def test_compare_error_by_hand():
    # A single law; the held-out error must equal |fit.predict - loss| / loss on those runs.
    data = simulate("chinchilla", {"E": 1.7, "A": 400, "B": 400, "alpha": 0.34, "beta": 0.28},
                    {"N": np.repeat([1e7, 3e7, 1e8, 3e8], 4),
                     "D": np.tile([1e9, 3e9, 1e10, 3e10], 4)}, noise=0.01, seed=1)
    table = mixopt.compare({"chin": "chinchilla"}, data, holdout="N", grid=50)
    train = data[data.N < 3e8]
    fit = mixopt.fit("chinchilla", train, grid=50)
    test = data[data.N == 3e8]
    rel = np.abs(fit.predict(test) - test["loss"]) / test["loss"]
    assert table.loc[0, "law"] == "chin"
    assert table.loc[0, "mean_rel_error"] == pytest.approx(rel.mean(), rel=1e-6)
    assert table.loc[0, "max_rel_error"] == pytest.approx(rel.max(), rel=1e-6)
    assert table.loc[0, "aic"] == pytest.approx(fit.aic, rel=1e-6)


def test_holdout_options():
    frame = pd.DataFrame({"N": [1.0, 2, 3, 3], "D": [10.0, 10, 10, 20], "loss": [1.0] * 4})
    np.testing.assert_array_equal(holdout_mask(frame, "N"), [False, False, True, True])
    # compute 6 N D = 60, 120, 180, 360; 0.5 quantile = 150 -> the last two
    np.testing.assert_array_equal(holdout_mask(frame, 0.5), [False, False, True, True])
    np.testing.assert_array_equal(holdout_mask(frame, "C"), [False, False, False, True])
    mask = np.array([True, False, False, False])
    np.testing.assert_array_equal(holdout_mask(frame, mask), mask)
    np.testing.assert_array_equal(holdout_mask(frame, lambda f: f["D"] > 15), [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("holdout", "match"),
    [("Z", "holdout must be"), (1.5, r"quantile must be in \(0, 1\)"),
     (np.array([True, False]), "length 4"), (np.zeros(4, bool), "no runs"),
     (np.ones(4, bool), "every run")],
)
def test_bad_holdout(holdout, match):
    frame = pd.DataFrame({"N": [1.0, 2, 3, 3], "D": [10.0, 10, 10, 20], "loss": [1.0] * 4})
    with pytest.raises(FitError, match=match):
        holdout_mask(frame, holdout)


def test_bad_laws_and_data():
    data = spec_grid().assign(loss=2.0)
    with pytest.raises(FitError, match="laws must be"):
        mixopt.compare(3, data)
    with pytest.raises(DataError, match="D_spec"):
        mixopt.compare(["transfer"], data.drop(columns="D_spec"), grid=5)


def test_holdout_by_d_and_by_unseen_mixtures_for_mixture_laws():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_laws_mixture import DOMS, TRUTH, ladder

    from mixopt.fitting.selection import holdout_mask

    law = mixopt.laws.get("mixing_chinchilla", domains=DOMS)
    data = ladder()
    rng = np.random.default_rng(0)
    data["loss"] = law.predict(TRUTH["mixing_chinchilla"], data) * np.exp(
        0.003 * rng.standard_normal(len(data)))
    mD = holdout_mask(data, "D")
    assert mD.sum() == (data["D"] == data["D"].max()).sum()
    mM = holdout_mask(data, "mixtures", domains=DOMS, seed=1)
    held = {tuple(r) for r in np.round(data.loc[mM, DOMS].to_numpy(), 9)}
    kept = {tuple(r) for r in np.round(data.loc[~mM, DOMS].to_numpy(), 9)}
    assert held and not held & kept  # unseen mixtures only
    laws = {"mixing_chinchilla": law,
            "mixture_additive": mixopt.laws.get("mixture_additive", domains=DOMS)}
    for holdout in ("N", "D", "mixtures"):
        table = mixopt.compare(laws, data, holdout=holdout)
        row = table.set_index("law").loc["mixing_chinchilla"]
        assert row["mean_rel_error"] < 0.01, holdout
        assert row["spearman"] > 0.9, holdout
    with pytest.raises(mixopt.MixoptError, match="needs a law over mixtures"):
        mixopt.compare("chinchilla", data, holdout="mixtures")
