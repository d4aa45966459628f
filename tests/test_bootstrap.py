"""FitResult.bootstrap: resampling, intervals, coverage on simulated data, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.datasets import simulate
from mixopt.errors import FitError
from mixopt.fitting import BootstrapResult

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def ladder(noise, seed):
    N, r = np.meshgrid([2e7, 5e7, 1e8, 3e8, 1e9], [2.0, 5.0, 10, 20, 40, 80], indexing="ij")
    return simulate("chinchilla", TRUTH, {"N": N.ravel(), "D": (N * r).ravel()},
                    noise=noise, seed=seed)


@pytest.fixture(scope="module")
def boot():
    fit = mixopt.fit("chinchilla", ladder(0.01, 0), grid=100)
    return fit.bootstrap(60, seed=1, progress=False)


def test_samples_and_intervals(boot):
    assert isinstance(boot, BootstrapResult)
    assert list(boot.samples.columns) == list(boot.law.param_names)
    assert boot.samples.shape == (60, 5) and boot.converged.all()
    ci = boot.conf_int(0.9)
    assert list(ci.columns) == ["lower", "upper"] and list(ci.index) == list(boot.law.param_names)
    # percentile interval by hand: numpy quantiles of the samples
    lo, hi = np.quantile(boot.samples["alpha"], [0.05, 0.95])
    assert ci.loc["alpha", "lower"] == pytest.approx(lo) and ci.loc["alpha", "upper"] == hi
    assert (ci["lower"] <= pd.Series(boot.fit.params)).all()
    assert "resamples" in boot.summary()


def test_resample_is_a_refit_of_the_resampled_table(boot):
    # Reproduce resample 0 by hand: same multinomial draw, refit the repeated rows directly.
    rng = np.random.default_rng(1)
    n = len(boot.fit.data)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=60)[0]
    rows = boot.fit.data.loc[np.repeat(np.arange(n), counts)]
    direct = mixopt.fit("chinchilla", rows, grid=100)
    for k in TRUTH:
        assert boot.samples.loc[0, k] == pytest.approx(direct.params[k], rel=1e-3), k


def test_seed_and_jobs_do_not_change_results(boot):
    again = boot.fit.bootstrap(60, seed=1, progress=False, n_jobs=2, chunk_size=25)
    np.testing.assert_allclose(again.samples.to_numpy(), boot.samples.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("kw", [dict(n_jobs=2), dict(n_jobs=2, backend="loky"),
                                dict(n_jobs=2, backend="threading"),
                                dict(n_jobs=1, chunk_size=7)])
def test_backend_and_chunking_do_not_change_results(boot, kw):
    # small work: n_jobs=2 stays in this process by default; workers on request
    again = boot.fit.bootstrap(60, seed=1, progress=False, **kw)
    np.testing.assert_array_equal(again.converged, boot.converged)
    np.testing.assert_allclose(again.samples.to_numpy(), boot.samples.to_numpy(), rtol=1e-9)


def test_fixed_parameters_stay_fixed():
    fit = mixopt.fit("chinchilla", ladder(0.01, 2), grid=50, fixed={"E": 1.69})
    b = fit.bootstrap(20, seed=0, progress=False)
    assert (b.samples["E"] == 1.69).all()


def test_prediction_interval_wider_than_confidence(boot):
    # inside the ladder the 1% run noise dominates the parameter uncertainty
    new = pd.DataFrame({"N": [1e8, 3e8], "D": [2e9, 6e9]})
    conf = boot.predict_interval(new, 0.9)
    pred = boot.predict_interval(new, 0.9, kind="prediction")
    np.testing.assert_allclose(conf["estimate"], boot.fit.predict(new))
    assert ((pred["upper"] - pred["lower"]) > 2 * (conf["upper"] - conf["lower"])).all()
    # prediction width ~ the 5-95% spread of the fit's log residuals
    r = boot.fit.residuals
    spread = np.quantile(r, 0.95) - np.quantile(r, 0.05)
    np.testing.assert_allclose(np.log(pred["upper"] / pred["lower"]), spread, rtol=0.5)
    assert ((conf["lower"] <= conf["estimate"] * 1.001) & (conf["estimate"] <= conf["upper"]
                                                           * 1.001)).all()


def test_coverage_on_simulated_data():
    # 6 simulated ladders x 5 parameters = 30 nominal-80% intervals: expect ~24 to cover.
    level, hits, total = 0.8, 0, 0
    for seed in range(6):
        fit = mixopt.fit("chinchilla", ladder(0.01, 100 + seed), grid=60)
        ci = fit.bootstrap(80, seed=seed, progress=False, n_grid_starts=2).conf_int(level)
        for k, v in TRUTH.items():
            hits += int(ci.loc[k, "lower"] <= v <= ci.loc[k, "upper"])
            total += 1
    # Binomial(30, 0.8): P(X <= 17) ~ 0.6%; the percentile bootstrap is slightly liberal.
    assert hits >= 18, f"coverage {hits}/{total}"


def test_round_trip(boot, tmp_path):
    path = tmp_path / "boot.json"
    boot.save(path)
    back = mixopt.load(path)
    assert isinstance(back, BootstrapResult)
    pd.testing.assert_frame_equal(back.samples, boot.samples)
    assert back.fit.params == boot.fit.params
    pd.testing.assert_frame_equal(back.conf_int(), boot.conf_int())
    # a loaded fit can bootstrap again
    again = back.fit.bootstrap(5, seed=3, progress=False)
    assert again.samples.shape == (5, 5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: b.conf_int(1.5), "level"),
        (lambda b: b.predict_interval({"N": [1e9], "D": [1e10]}, kind="x"), "kind"),
        (lambda b: b.fit.bootstrap(0), "n"),
        (lambda b: b.fit.bootstrap(5, n_jobs=0), "n_jobs"),
        (lambda b: b.fit.bootstrap(5, chunk_size=0), "chunk_size"),
    ],
)
def test_bad_input(boot, call, match):
    with pytest.raises(FitError, match=match):
        call(boot)
