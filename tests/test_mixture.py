"""mixopt.mixture: surrogates, persistence, cross-validation, rank transfer, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import mixopt.mixture as mm
from mixopt.errors import DataError, MixoptError, MixtureError

DOMS = ["web", "code", "books", "math"]
TRUTH = {  # per metric: c, t (L = c + exp(t . r))
    "val_web": (2.0, np.array([-1.5, 0.4, -0.5, 0.8])),
    "val_code": (1.2, np.array([0.5, -2.0, 0.3, -0.4])),
}


def swarm(n: int = 60, seed: int = 0, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    R = pd.DataFrame(rng.dirichlet(np.full(len(DOMS), 0.7), size=n), columns=DOMS)
    R.index.name = "run"
    M = pd.DataFrame({m: c + np.exp(R.to_numpy() @ t) for m, (c, t) in TRUTH.items()},
                     index=R.index)
    if noise:
        M = M * np.exp(noise * rng.standard_normal(M.shape))
    return R, M


@pytest.mark.parametrize("model", ["mixing", "loglinear"])
def test_exponential_surrogates_recover_the_law(model):
    R, M = swarm()
    m = mm.fit(R, M, target="val_web", model=model)
    s = m.surrogates["val_web"]
    c, t = TRUTH["val_web"]
    assert s.c == pytest.approx(c, rel=1e-6)
    np.testing.assert_allclose(s.t, t, atol=1e-6)
    grid = np.random.default_rng(9).dirichlet(np.ones(4), size=20)
    np.testing.assert_allclose(m.predict(grid), c + np.exp(grid @ t), rtol=1e-8)


def test_linear_surrogate_is_least_squares_and_trees_rank_well():
    R, M = swarm(120, seed=1)
    lin = mm.fit(R, M, target="val_web", model="linear")
    w, *_ = np.linalg.lstsq(R.to_numpy(), M["val_web"].to_numpy(), rcond=None)
    np.testing.assert_allclose(lin.surrogates["val_web"].w, w, rtol=1e-12)
    Rt, Mt = swarm(80, seed=2)
    for model in ("gbm", "gp"):
        sc = mm.fit(R, M, target="val_web", model=model).score(Rt, Mt)
        assert sc["spearman"] > 0.9, (model, sc)
    gp = mm.fit(R, M, target="val_web", model="gp")
    sd = gp.predict_std(Rt)
    assert sd.shape == (80,) and (sd > 0).all()


def test_weighted_target_combines_per_metric_surrogates_and_worst_is_the_max():
    R, M = swarm()
    m = mm.fit(R, M, target={"val_web": 3.0, "val_code": 1.0}, model="mixing")
    assert set(m.surrogates) == {"val_web", "val_code"}
    P = m.predict_metrics(R)
    np.testing.assert_allclose(m.predict(R), 0.75 * P["val_web"] + 0.25 * P["val_code"])
    w = mm.fit(R, M, target="worst", model="mixing")
    np.testing.assert_allclose(w.predict(R), np.maximum(P["val_web"], P["val_code"]),
                               rtol=1e-8)
    mean = mm.fit(R, M, target=["val_web", "val_code"], model="linear")
    assert mean.target.weights == (0.5, 0.5)
    # scores compare the combined prediction with the same combination of actual metrics
    sc = m.score(R, M)
    assert sc["mre"] < 1e-6 and sc["spearman"] > 0.999


@pytest.mark.parametrize("model", ["mixing", "loglinear", "linear", "gbm", "gp"])
def test_save_and_load_reproduce_predictions(model, tmp_path):
    R, M = swarm(50, seed=3, noise=0.01)
    m = mm.fit(R, M, target=["val_web", "val_code"], model=model, seed=4)
    path = m.save(tmp_path / "model.json")
    json.loads(path.read_text())  # strict JSON
    back = mm.load(path)
    Rt, _ = swarm(30, seed=5)
    np.testing.assert_allclose(back.predict(Rt), m.predict(Rt), rtol=1e-10)
    assert back.model == model and back.domains == tuple(DOMS)


def test_results_do_not_depend_on_loss_units():
    R, M = swarm(60, seed=6, noise=0.005)
    for model in ("mixing", "loglinear", "gbm"):
        a = mm.fit(R, M, target="val_web", model=model)
        b = mm.fit(R, M * 1000.0, target="val_web", model=model)
        np.testing.assert_allclose(b.predict(R), 1000.0 * a.predict(R), rtol=1e-5)
        pa = mm.optimize(a, caps={"web": 0.5}, n_samples=2000)
        pb = mm.optimize(b, caps={"web": 0.5}, n_samples=2000)
        np.testing.assert_allclose(pb.weights, pa.weights, atol=2e-5)


def test_cross_validate_pools_out_of_fold_predictions():
    R, M = swarm(40, seed=7, noise=0.01)
    cv = mm.cross_validate(R, M, target=["val_web", "val_code"], models=["linear", "mixing"],
                           folds=4, seed=3, progress=False)
    assert list(cv.columns) == ["model", "target", "spearman", "pearson", "mae", "mre", "n"]
    assert set(cv["target"]) == {"val_web", "val_code", "target"}
    # by hand for the linear model: the same permutation, folds and least squares
    perm = np.random.default_rng(3).permutation(40)
    pred = np.empty(40)
    for test in np.array_split(perm, 4):
        train = np.setdiff1d(np.arange(40), test)
        w, *_ = np.linalg.lstsq(R.to_numpy()[train], M["val_web"].to_numpy()[train], rcond=None)
        pred[test] = R.to_numpy()[test] @ w
    want = mm.scores(pred, M["val_web"].to_numpy())
    row = cv[(cv.model == "linear") & (cv.target == "val_web")].iloc[0]
    assert row["mae"] == pytest.approx(want["mae"], rel=1e-12)
    assert row["spearman"] == pytest.approx(want["spearman"], rel=1e-12)
    mix = cv[(cv.model == "mixing") & (cv.target == "target")].iloc[0]
    assert mix["spearman"] > 0.98
    par = mm.cross_validate(R, M, target="val_web", models=["linear"], folds=4, seed=3,
                            n_jobs=2, progress=False)
    assert par.iloc[0]["mae"] == pytest.approx(want["mae"], rel=1e-12)


def test_rank_transfer_by_hand():
    small = pd.DataFrame({"m": [3.0, 1.0, 2.0, 4.0]}, index=[10, 11, 12, 13])
    large = pd.DataFrame({"m": [2.5, 2.0, 1.5, 3.0]}, index=[10, 11, 12, 13])
    rt = mm.rank_transfer(small, large, target="m")
    # ranks small: 3 1 2 4, large: 3 2 1 4 -> d^2 = 0+1+1+0, rho = 1 - 6*2/(4*15)
    assert rt.spearman == pytest.approx(1 - 12 / 60)
    assert rt.best_small == 11 and rt.best_large == 12
    assert rt.regret == pytest.approx(0.5) and rt.rank_of_small_best == 2
    assert rt.relative_regret == pytest.approx(0.5 / 1.5)
    assert "Spearman" in rt.summary() and json.dumps(rt.to_dict())
    with pytest.raises(DataError, match="share 1 runs"):
        mm.rank_transfer(small.iloc[:1], large, target="m")


def test_bad_input_names_the_culprit():
    R, M = swarm(30)
    with pytest.raises(DataError, match="sum to 1.1"):
        mm.fit(R.assign(web=R["web"] + 0.1), M, target="val_web")
    with pytest.raises(DataError, match="negative"):
        bad = R.copy()
        bad.iloc[0, 0], bad.iloc[0, 1] = -0.01, bad.iloc[0, 1] + 0.01 + bad.iloc[0, 0]
        mm.fit(bad, M, target="val_web")
    with pytest.raises(DataError, match="'val_web' of the metrics has a missing or non-numeric "
                       "value nan at run 2"):
        mm.fit(R, M.assign(val_web=M["val_web"].where(M.index != 2)), target="val_web")
    with pytest.raises(DataError, match="finite and positive"):
        mm.fit(R, M.assign(val_web=-M["val_web"]), target="val_web")
    with pytest.raises(DataError, match="in ratios but not in metrics"):
        mm.fit(R, M.iloc[1:], target="val_web")
    with pytest.raises(DataError, match="'nope' is not a metrics column"):
        mm.fit(R, M, target="nope")
    with pytest.raises(DataError, match="fewer than the 5 parameters"):
        mm.fit(R.iloc[:4], M.iloc[:4], target="val_web", model="mixing")
    with pytest.raises(MixtureError, match="unknown mixture model"):
        mm.fit(R, M, target="val_web", model="lightgbm")
    with pytest.raises(MixtureError, match="unknown option"):
        mm.fit(R, M, target="val_web", model="gbm", learnin_rate=0.1)
    m = mm.fit(R, M, target="val_web", model="linear")
    with pytest.raises(MixtureError, match="unknown domain"):
        mm.optimize(m, caps={"wiki": 0.1})
    with pytest.raises(MixtureError, match="prior names unknown"):
        mm.optimize(m, prior={"wiki": 1.0, "web": 1.0})
    with pytest.raises(DataError, match="4 columns"):
        m.predict(np.ones((2, 3)) / 3)
    # within rounding: renormalised with a warning, and the fit equals the exact one
    rounded = R.round(3)
    with pytest.warns(UserWarning, match="renormalised"):
        a = mm.fit(rounded, M, target="val_web", model="linear")
    b = mm.fit(rounded.div(rounded.sum(axis=1), axis=0), M, target="val_web", model="linear")
    np.testing.assert_allclose(a.surrogates["val_web"].w, b.surrogates["val_web"].w)


def test_tampered_model_file_is_refused(tmp_path):
    R, M = swarm(30)
    path = mm.fit(R, M, target="val_web", model="linear").save(tmp_path / "m.json")
    d = json.loads(path.read_text())
    for key, value in [("format", "other"), ("domains", ["a"]), ("ratios", [[0.5, 0.6]])]:
        bad = dict(d)
        bad[key] = value
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(MixoptError):
            mm.load(tmp_path / "bad.json")
    for value in (None, [0.1, 0.2], ["nan"] * 4, "x"):
        bad = json.loads(path.read_text())
        bad["surrogates"]["val_web"]["state"]["w"] = value
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(DataError, match="state 'w'"):
            mm.load(tmp_path / "bad.json")
    # save() writes strict JSON, so NaN tokens are a tampered file
    bad["surrogates"]["val_web"]["state"]["w"] = [float("nan")] * 4
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match="non-standard JSON token NaN"):
        mm.load(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="is not valid JSON"):
        mm.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="no such file"):
        mm.load(tmp_path / "missing.json")


def test_summary_reads_well():
    R, M = swarm(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = mm.fit(R, M, target="val_web", model="mixing").summary()
    assert "Mixture surrogate 'mixing' on 30 runs, 4 domains" in text
    assert "target: val_web" in text and "Spearman" in text
