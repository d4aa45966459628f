"""Property-based bad-input tests over every registered law's ``predict`` and the mixture
planners (``plan.mixture``, ``plan.mixture_path``, ``plan.mixture_split``) (hypothesis).

Each generated input must give a ``MixoptError`` or a correct result (finite, positive losses;
plans on the simplex) within a time limit: no other exception type, no NaN or inf reported as
success, no hang.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import mixopt
from mixopt import plan
from mixopt.errors import MixoptError

sys.path.insert(0, str(Path(__file__).parent))
from reliability_helpers import BAD, FAST, finite, on_simplex, time_limit  # noqa: E402

DOMS = ["web", "code", "math"]
OPTIONS = {"mixing": {"components": DOMS}, "mixing_chinchilla": {"domains": DOMS},
           "mixture_additive": {"domains": DOMS}, "mixture_joint": {"domains": DOMS}}
LAWS = {name: mixopt.laws.get(name, **OPTIONS.get(name, {})) for name in mixopt.laws.names()}


def _valid_params(law):
    """A point inside the law's bounds: the middle of each parameter's start grid."""
    return {p.name: float(p.from_fit(p.grid[len(p.grid) // 2])) for p in law.parameters}


PARAMS = {name: _valid_params(law) for name, law in LAWS.items()}
H = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
DATA = {"N": np.array([1e7, 1e8, 1e9]), "D": np.array([1e9, 1e10, 2e10]),
        "D_spec": np.array([0.0, 1e8, 1e9]), **{d: H[:, j] for j, d in enumerate(DOMS)}}


def test_every_law_predicts_at_its_valid_point():
    for name, law in LAWS.items():
        pred = law.predict(PARAMS[name], {v: DATA[v] for v in law.variables})
        assert finite(pred) and np.all(pred > 0), name


@settings(FAST, max_examples=80)
@given(name=st.sampled_from(sorted(LAWS)), which=st.integers(0, 40), value=BAD)
def test_predict_with_one_bad_parameter(name, which, value):
    law = LAWS[name]
    params = dict(PARAMS[name])
    key = law.param_names[which % law.n_params]
    params[key] = value
    with time_limit():
        try:
            pred = law.predict(params, {v: DATA[v] for v in law.variables})
        except MixoptError:
            return
    # accepted: a real number inside the law's bounds, and the prediction is usable
    assert not isinstance(value, bool) and isinstance(value, (int, float))
    lo, hi = law.bounds[key]
    assert lo <= float(value) <= hi
    assert finite(pred) and np.all(pred > 0)


@settings(FAST, max_examples=80)
@given(name=st.sampled_from(sorted(LAWS)), which=st.integers(0, 10),
       value=BAD | st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4))
def test_predict_with_one_bad_column(name, which, value):
    law = LAWS[name]
    data = {v: DATA[v] for v in law.variables}
    data[law.variables[which % len(law.variables)]] = value
    with time_limit():
        try:
            pred = law.predict(PARAMS[name], data)
        except MixoptError:
            return
    pred = np.asarray(pred, dtype=float)
    ok = np.isfinite(pred) & (pred > 0)
    if {"D", "D_spec"} <= set(law.variables):  # no training tokens at all: infinite loss
        D, Ds, _ = np.broadcast_arrays(np.asarray(data["D"], dtype=float),
                                       np.asarray(data["D_spec"], dtype=float), pred)
        ok |= (D + Ds == 0) & (pred == np.inf)
    assert np.all(ok)


@FAST
@given(name=st.sampled_from(sorted(LAWS)), params=BAD, data=BAD, bounds=BAD)
def test_predict_with_bad_containers(name, params, data, bounds):
    law = LAWS[name]
    good = {v: DATA[v] for v in law.variables}
    for args, kw in (((params, good), {}), ((PARAMS[name], data), {}),
                     ((PARAMS[name], good), {"bounds": bounds})):
        with time_limit():
            try:
                pred = law.predict(*args, **kw)
            except MixoptError:
                continue
        assert finite(pred) and np.all(pred > 0)


@FAST
@given(name=BAD | st.sampled_from(sorted(LAWS)), option=st.sampled_from(
    ["domains", "components", "max_exponent", "max_slope", "bogus"]), value=BAD)
def test_laws_get(name, option, value):
    with time_limit():
        try:
            law = mixopt.laws.get(name, **{option: value})
        except MixoptError:
            return
    assert law.name == name and law.n_params > 0


# ------------------------------------------------------------------------------ plan.mixture
MIX_LAW = LAWS["mixing_chinchilla"]
P1 = {"E": 1.8, "alpha": 0.34, "beta": 0.28, "ta_web": 6.0, "ta_code": 6.2, "ta_math": 6.1,
      "tb_web": 5.8, "tb_code": 6.6, "tb_math": 6.3}
P2 = {"E": 1.5, "alpha": 0.34, "beta": 0.28, "ta_web": 6.3, "ta_code": 5.9, "ta_math": 6.0,
      "tb_web": 6.9, "tb_code": 5.6, "tb_math": 6.2}
FITS = {"web_val": (MIX_LAW, P1), "code_val": (MIX_LAW, P2)}
MIX_ARGS = {"weights": None, "caps": None, "floors": None, "tokens": None,
            "objective": "weighted", "flops": None, "N_range": None}
VALUES = BAD | st.dictionaries(st.sampled_from(DOMS + ["web_val", "bio"]), BAD, max_size=2)


def _check_allocation(a) -> None:
    if a.success:
        assert on_simplex(a.weights) and math.isfinite(a.objective)
        assert all(math.isfinite(v) and v > 0 for v in a.loss.values())
        assert a.N > 0 and a.D > 0 and math.isfinite(a.N) and math.isfinite(a.D)
    json.dumps(a.to_dict(), allow_nan=False)
    assert isinstance(a.summary(), str)


@settings(FAST, max_examples=60)
@given(arg=st.sampled_from(sorted(MIX_ARGS) + ["N", "D", "budget", "fits"]), value=VALUES,
       fixed=st.booleans())
def test_plan_mixture(arg, value, fixed):
    kw = dict(MIX_ARGS, **({"N": 1e9, "D": 2e10} if fixed else {"budget": 1e20}))
    fits = FITS
    if arg == "fits":
        fits = value
    else:
        kw[arg] = value
    with time_limit():
        try:
            a = plan.mixture(fits, **kw)
        except MixoptError:
            return
    _check_allocation(a)
    if a.success and kw.get("caps") is not None and isinstance(kw["caps"], dict):
        for d, c in kw["caps"].items():
            assert a.weights[d] <= float(c) + 1e-9


@settings(FAST, max_examples=10)
@given(budgets=BAD | st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=2),
       option=st.sampled_from(sorted(MIX_ARGS)), value=VALUES)
def test_plan_mixture_path(budgets, option, value):
    """(Each valid budget costs a full budget solve: few examples.)"""
    for b, kw in ((budgets, {}), ([1e20], {option: value})):
        with time_limit():
            try:
                p = plan.mixture_path(FITS, b, **kw)
            except MixoptError:
                continue
        for a in p.plans:
            _check_allocation(a)
        assert isinstance(p.summary(), str)
        assert len(p.plans) == len(np.atleast_1d(b))


# ------------------------------------------------------------------------------ mixture_split
SPLIT_FITS = {"web_val": ("transfer", dict(E=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28,
                                           K=1e3, rho=0.7)),
              "code_val": ("transfer", dict(E=1.5, A=400.0, B=900.0, alpha=0.34, beta=0.28,
                                            K=50.0, rho=0.8))}
MS_ARGS = {"weights": None, "objective": "weighted", "caps": None, "floors": None,
           "spec_caps": None, "N_range": (1e7, 1e11)}


@settings(FAST, max_examples=8)
@given(arg=st.sampled_from(sorted(MS_ARGS) + ["budget", "mixture_fits", "split_fits"]),
       value=VALUES)
def test_plan_mixture_split(arg, value):
    kw = dict(MS_ARGS)
    mix, spl, budget = FITS, SPLIT_FITS, 1e21
    if arg == "mixture_fits":
        mix = value
    elif arg == "split_fits":
        spl = value
    elif arg == "budget":
        budget = value
    else:
        kw[arg] = value
    with time_limit(60):
        try:
            p = plan.mixture_split(mix, spl, budget, **kw)
        except MixoptError:
            return
    if p.success:
        assert on_simplex(p.weights)
        assert all(math.isfinite(v) and v > 0 for v in p.loss.values())
        total = p.D + sum(p.D_spec.values())
        assert math.isclose(6 * p.N * total, p.budget, rel_tol=1e-6)
    json.dumps(p.to_dict(), allow_nan=False)
    assert isinstance(p.summary(), str)


def test_mixture_split_frame_checks_are_plan_errors():
    """Found by the properties: bad shapes of the fits' mappings are refused up front."""
    for mix, spl in (({}, {}), (FITS, {"web_val": SPLIT_FITS["web_val"]}),
                     ({"web_val": FITS["web_val"], "code_val": ("chinchilla", {})}, SPLIT_FITS)):
        try:
            plan.mixture_split(mix, spl, 1e21)
        except MixoptError:
            continue
        raise AssertionError("accepted")


def test_weighted_split_objective_ignores_zero_weight_domains():
    """Issue 16 item 5 (it came back): a domain of weight 0 trained on no tokens at all has an
    infinite loss, and 0 x inf made the objective NaN with success=True."""
    from mixopt.plan.split import Planner

    tr = mixopt.laws.get("transfer")
    p = dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=1e3, rho=0.75)
    planner = Planner({"a": (tr, p), "b": (tr, p)}, weights=[1.0, 0.0])
    losses = np.array([[2.0, 2.5], [np.inf, np.inf]])
    np.testing.assert_array_equal(planner.value(losses), [2.0, 2.5])
    both = Planner({"a": (tr, p), "b": (tr, p)}, weights=[0.5, 0.5])
    assert np.isinf(both.value(losses)).all()  # a weighted domain without tokens stays inf
