"""Property-based bad-input tests over ``mixopt.mixture`` (hypothesis).

design, caps, write_configs, fit (every surrogate), MixtureModel.save / load (one field of the
saved file corrupted at a time), predict, optimize, cross_validate, rank_transfer and read_regmix
get generated bad input: each must give a ``MixoptError`` or a correct result within a time
limit; no other exception type, no NaN or inf reported as success, no hang.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import mixopt.mixture as mm
from mixopt.errors import MixoptError

sys.path.insert(0, str(Path(__file__).parent))
from reliability_helpers import (  # noqa: E402
    BAD,
    FAST,
    JSON,
    corrupt,
    finite,
    on_simplex,
    paths,
    time_limit,
)

DOMS = ["web", "code", "math"]
RNG = np.random.default_rng(0)
R = pd.DataFrame(RNG.dirichlet(np.ones(3), size=14), columns=DOMS,
                 index=pd.Index(range(14), name="run"))
_T = np.array([0.8, 1.5, 0.4])
M = pd.DataFrame({"web_val": 2.0 + np.exp(-(R.to_numpy() @ _T)),
                  "code_val": 1.5 + np.exp(-(R.to_numpy() @ _T[::-1]))}, index=R.index)
MODEL = mm.fit(R, M, target="web_val", model="loglinear")
PRIOR = {"web": 5e9, "code": 2e9, "math": 1e9}


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        out[k] = v
    return out


def _cell_corrupted(frame: pd.DataFrame, i: int, j: int, value) -> pd.DataFrame:
    vals = frame.to_numpy(dtype=object).copy()
    vals[i % len(frame), j % frame.shape[1]] = value
    return pd.DataFrame(vals, index=frame.index, columns=frame.columns)


# ------------------------------------------------------------------------------ design / caps
DESIGN_ARGS = {"prior": PRIOR, "n_runs": 6, "seed": 0, "temperature": 0.5,
               "concentrations": None, "min_weight": 2e-4, "round_to": 2e-4, "max_ratio": 15.0,
               "caps": None, "groups": None, "existing": None, "oversample": 20,
               "min_distance": 0.0}


@settings(FAST, max_examples=60)
@given(arg=st.sampled_from(sorted(DESIGN_ARGS)), value=BAD)
def test_design(arg, value):
    kw = dict(DESIGN_ARGS, **{arg: value})
    with time_limit():
        try:
            swarm = mm.design(kw.pop("prior"), kw.pop("n_runs"), **kw)
        except MixoptError:
            return
    n = kw.get("n_runs", value if arg == "n_runs" else 6)
    assert isinstance(swarm, pd.DataFrame) and len(swarm) == (value if arg == "n_runs" else 6)
    assert n is not None and list(swarm.columns) == DOMS
    assert all(on_simplex(row) for row in swarm.to_numpy())


@FAST
@given(tokens=BAD | st.just(PRIOR), target=BAD, epochs=BAD)
def test_caps(tokens, target, epochs):
    with time_limit():
        try:
            c = mm.caps(tokens, target, epochs)
        except MixoptError:
            return
    assert finite(c) and (c >= 0).all() and (c <= 1).all()


@FAST
@given(i=st.integers(0, 5), j=st.integers(0, 2), value=BAD, index=BAD, template=JSON)
def test_write_configs(tmp_path_factory, i, j, value, index, template):
    swarm = mm.design(PRIOR, 4, seed=0)
    bad = _cell_corrupted(swarm, i, j, value)
    out = tmp_path_factory.mktemp("cfg")
    odd_ids = swarm.set_axis(pd.Index(_objects([index] * len(swarm)), dtype=object))
    for s, tpl in ((bad, None), (odd_ids, None), (swarm, template)):
        with time_limit():
            try:
                files = mm.write_configs(s, out, template=tpl)
            except MixoptError:
                continue
        for f in files:
            cfg = json.loads(Path(f).read_text())
            assert on_simplex(list(cfg["weights"].values()), tol=1e-2)  # published rounding


# ------------------------------------------------------------------------------ fit / predict
@settings(FAST, max_examples=25)
@given(which=st.sampled_from(["ratios", "metrics"]), i=st.integers(0, 20), j=st.integers(0, 3),
       value=BAD, model=st.sampled_from(["loglinear", "mixing", "linear"]))
def test_fit_with_a_corrupted_cell(which, i, j, value, model):
    r, m = (_cell_corrupted(R, i, j, value), M) if which == "ratios" else \
        (R, _cell_corrupted(M, i, j, value))
    with time_limit():
        try:
            fitted = mm.fit(r, m, target="web_val", model=model)
        except MixoptError:
            return
    pred = fitted.predict(R)
    assert finite(pred)


@settings(FAST, max_examples=40)
@given(case=st.integers(0, 5), value=BAD,
       name=st.sampled_from(["web_val", "worst", ["web_val", "code_val"], "loglinear", "gbm",
                             "gp", "mixing"]),
       option=st.sampled_from(["delta", "learning_rate", "n_restarts", "bogus", "max_iter"]))
def test_fit_arguments(case, value, name, option):
    """One argument of fit replaced by a bad value (or a valid name) per example."""
    fast = {"gbm": {"max_iter": 5}, "gp": {"n_restarts": 0}}
    kw = [dict(ratios=R, metrics=M, target=value if case % 2 else name, model="linear"),
          dict(ratios=R, metrics=M, target="web_val", model=value if case % 2 else name,
               **({} if case % 2 or not isinstance(name, str) else fast.get(name, {}))),
          dict(ratios=R, metrics=M, target="web_val", model="linear", seed=value),
          dict(ratios=R, metrics=M, target="web_val", model="linear", **{option: value}),
          dict(ratios=value, metrics=M, target="web_val", model="linear"),
          dict(ratios=R, metrics=value, target="web_val", model="linear")][case]
    with time_limit():
        try:
            fitted = mm.fit(kw.pop("ratios"), kw.pop("metrics"), **kw)
        except MixoptError:
            return
    assert finite(fitted.predict(R))


@settings(FAST, max_examples=40)
@given(ratios=BAD | st.lists(st.lists(st.floats(allow_nan=True), min_size=3, max_size=3),
                             max_size=3))
def test_predict_and_score(ratios):
    with time_limit():
        try:
            pred = MODEL.predict(ratios)
        except MixoptError:
            return
    assert finite(pred)


# ------------------------------------------------------------------------------ save / load
SAVED = MODEL.to_dict()
SAVED_GBM = mm.fit(R, M, target=["web_val", "code_val"], model="gbm", max_iter=5).to_dict()
SAVED_PATHS = [("loglinear", p) for p in paths(json.loads(json.dumps(SAVED)))] + \
    [("gbm", p) for p in paths(json.loads(json.dumps(SAVED_GBM)))]


@settings(FAST, max_examples=80)
@given(target=st.sampled_from(SAVED_PATHS), value=JSON)
def test_load_of_a_corrupted_model(tmp_path_factory, target, value):
    kind, path = target
    base = json.loads(json.dumps(SAVED if kind == "loglinear" else SAVED_GBM))
    f = tmp_path_factory.mktemp("model") / "m.json"
    f.write_text(json.dumps(corrupt(base, path, value)))
    with time_limit():
        try:
            model = mm.load(f)
        except MixoptError:
            return
    assert finite(model.predict(R))


@FAST
@given(text=st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_load_of_arbitrary_bytes(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("raw") / "m.json"
    f.write_bytes(text)
    with time_limit():
        try:
            mm.load(f)
        except MixoptError:
            return
    raise AssertionError("arbitrary bytes loaded as a model")


# ------------------------------------------------------------------------------ optimize
OPT_ARGS = {"caps": None, "floors": None, "prior": None, "kl": 0.0, "seed": 0, "method": "auto",
            "n_samples": 2000, "top_k": 16, "rounds": 1, "n_boot": 0, "level": 0.95,
            "max_iter": 200, "tol": 1e-8}


@settings(FAST, max_examples=60)
@given(arg=st.sampled_from(sorted(OPT_ARGS)), value=BAD
       | st.dictionaries(st.sampled_from(DOMS + ["bio"]), BAD, max_size=2))
def test_optimize(arg, value):
    kw = dict(OPT_ARGS, **{arg: value})
    if arg == "kl":
        kw["prior"] = PRIOR
    if arg in ("n_boot",) and isinstance(value, int) and value > 20:
        kw["n_boot"] = value % 4  # many resamples are valid but slow: the check is the input
    if arg in ("n_samples", "max_iter") and isinstance(value, int) and value > 10**5:
        return  # valid, only slow
    with time_limit():
        try:
            plan = mm.optimize(MODEL, **kw)
        except MixoptError:
            return
    if plan.success:
        assert on_simplex(plan.weights) and np.isfinite(plan.loss)
    assert isinstance(plan.summary(), str)
    json.dumps(plan.to_dict(), allow_nan=False)


@FAST
@given(model=BAD)
def test_optimize_needs_a_model(model):
    with time_limit():
        try:
            mm.optimize(model)
        except MixoptError:
            return
    raise AssertionError(f"optimize accepted {model!r}")


# ------------------------------------------------------------------------------ cross_validate
@settings(FAST, max_examples=20)
@given(folds=BAD, models=BAD | st.lists(st.sampled_from(["loglinear", "linear", "x"]),
                                        max_size=2), seed=BAD)
def test_cross_validate(folds, models, seed):
    for kw in ({"folds": folds, "models": ["linear"]}, {"models": models, "folds": 2},
               {"seed": seed, "models": ["linear"], "folds": 2}):
        with time_limit():
            try:
                cv = mm.cross_validate(R, M, target="web_val", progress=False, **kw)
            except MixoptError:
                continue
        assert isinstance(cv, pd.DataFrame) and len(cv)


# ------------------------------------------------------------------------------ rank_transfer
@FAST
@given(i=st.integers(0, 20), value=BAD, target=BAD)
def test_rank_transfer(i, value, target):
    large = M * 0.9
    for small, tgt in ((_cell_corrupted(M, i, 0, value), "web_val"), (M, target)):
        with time_limit():
            try:
                rt = mm.rank_transfer(small, large, target=tgt)
            except MixoptError:
                continue
        json.dumps(rt.to_dict(), allow_nan=True)
        assert isinstance(rt.summary(), str)


# ------------------------------------------------------------------------------ read_regmix
CSV = st.text(alphabet=st.sampled_from(list("ab,.-0123456789e\n\"_ ")), max_size=60)


@FAST
@given(mixture=CSV, loss=CSV, split=BAD | st.sampled_from(["train", "test"]),
       scale=BAD | st.sampled_from(["1m", "60m", "1B"]), renorm=BAD)
def test_read_regmix(tmp_path_factory, mixture, loss, split, scale, renorm):
    d = tmp_path_factory.mktemp("regmix")
    (d / "train_mixture_1m.csv").write_text(mixture)
    (d / "train_pile_loss_1m.csv").write_text(loss)
    for kw in ({}, {"split": split}, {"scale": scale}, {"renormalise": renorm}):
        with time_limit():
            try:
                ratios, metrics = mm.read_regmix(d, **kw)
            except MixoptError:
                continue
        assert finite(ratios) and finite(metrics)
        assert all(on_simplex(row, tol=5e-3) for row in ratios.to_numpy())
        assert (metrics.to_numpy(dtype=float) > 0).all()
