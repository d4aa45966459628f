"""Plans say where they leave the fitted data's range; summaries print clean numbers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import plan
from mixopt.plan.extrapolation import data_range, describe, extrapolation
from mixopt.plan.result import format_size, format_tokens

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_fixtures import Fitted as _Fitted  # noqa: E402
from plan_fixtures import mixture_fits as _mixture_fits  # noqa: E402

HOFF = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(scope="module")
def chin_fit():
    N = np.repeat(np.logspace(7, 9, 3), 3)          # 1e7 .. 1e9 parameters
    D = np.tile(np.logspace(9, 11, 3), 3)           # 1e9 .. 1e11 tokens
    loss = mixopt.laws.get("chinchilla").predict(HOFF, {"N": N, "D": D})
    return mixopt.fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": loss}))


def test_format_tokens_and_sizes():
    assert format_tokens(1662978.4255) == "1,662,978"
    assert format_tokens(0.0024) == "0" and format_tokens(0.49) == "0" and format_tokens(0.6) == "1"
    assert format_tokens(float("inf")) == "inf"
    assert format_size(9318.014) == "9,318"
    # an interval 8.3e7 wide supports N to 1e6: 236,112,345 -> 236,000,000
    assert format_size(236_112_345, 2.0e8, 2.83e8) == "236,000,000"
    assert format_size(1_995_108_443, 9.93e8, 3.31e9) == "2,000,000,000"
    assert format_size(12.4, 12.0, 12.5) == "12"  # never finer than whole units


def test_compute_optimal_extrapolation_records(chin_fit):
    alloc = plan.compute_optimal(chin_fit, [1e18, 1e22])
    assert data_range(chin_fit, "N") == pytest.approx((1e7, 1e9))
    recs = extrapolation(alloc, chin_fit)
    n = [r for r in recs if r["variable"] == "N"]
    # by hand: which budgets put N or D outside [1e7, 1e9] x [1e9, 1e11]
    for b, N, D in zip([1e18, 1e22], alloc.N, alloc.D):
        expect_n = N < 1e7 or N > 1e9
        assert any(r["budget"] == b for r in n) == expect_n
        expect_d = D < 1e9 or D > 1e11
        assert any(r["budget"] == b and r["variable"] == "D" for r in recs) == expect_d
    big = [r for r in recs if r["budget"] == 1e22 and r["variable"] == "N"][0]
    assert big["side"] == "above" and big["ratio"] == pytest.approx(alloc.N[1] / 1e9)
    assert big["data_min"] == pytest.approx(1e7) and big["data_max"] == pytest.approx(1e9)
    alloc.extrapolation = recs
    text = alloc.summary()
    assert "EXTRAPOLATION" in text and f"{big['ratio']:.3g}x the largest" in text
    d = json.loads(json.dumps(alloc.to_dict()))
    assert d["extrapolation"] == json.loads(json.dumps(recs))
    # a plan inside the range says so, an unchecked one says nothing
    inside = plan.compute_optimal(chin_fit, 1e19)  # N ~ 2.3e8, D ~ 7.3e9: inside the ladder
    assert 1e7 < inside.N < 1e9 and 1e9 < inside.D < 1e11
    assert extrapolation(inside, chin_fit) == []
    assert "within the range" in describe([])
    # the library fills the field itself; a fit without data (a tuple) is "not checked"
    assert plan.compute_optimal(chin_fit, [1e18, 1e22]).extrapolation == recs
    assert plan.compute_optimal(("chinchilla", HOFF), 1e21).to_dict()["extrapolation"] is None
    assert "not checked" in plan.compute_optimal(("chinchilla", HOFF), 1e21).summary()


def _spec_fit(base, K):
    import dataclasses

    tr = mixopt.laws.get("transfer")
    params = dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=K, rho=0.75)
    data = base.data.assign(D_spec=np.tile([0.0, 1e8, 1e9], 3))
    return dataclasses.replace(base, law=tr, params=params, fixed={}, bounds=tr.bounds,
                               data=data)


def test_split_plan_extrapolation_and_clean_numbers(chin_fit):
    fits = {"code": _spec_fit(chin_fit, 1e3), "math": _spec_fit(chin_fit, 50.0)}
    p = plan.split(fits, 1e23)
    recs = extrapolation(p, fits)
    by = {r["variable"]: r for r in recs}
    # at 1e23 FLOPs: N ~ 8.7e9 > 1e9, D ~ 3.8e11 > 1e11, both D'_k ~ 5e11, 1e12 > 1e9
    assert p.N > 1e9 and p.D > 1e11 and min(p.D_spec.values()) > 1e9
    assert set(by) == {"N", "D", "D_spec[code]", "D_spec[math]"}
    assert by["N"]["ratio"] == pytest.approx(p.N / 1e9)
    assert by["D_spec[math]"]["ratio"] == pytest.approx(p.D_spec["math"] / 1e9)
    assert by["D_spec[code]"]["data_min"] == 0.0 and by["D"]["side"] == "above"
    small = plan.split(fits, 1e15)  # N below 1e7: extrapolation below the ladder
    low = {r["variable"]: r for r in extrapolation(small, fits)}
    assert small.N < 1e7 and low["N"]["side"] == "below"
    assert low["N"]["ratio"] == pytest.approx(small.N / 1e7)
    p.extrapolation = recs
    text = p.summary()
    assert f"model N = {format_tokens(p.N)} parameters" in text
    assert f"shared pretraining D = {format_tokens(p.D)} tokens" in text
    # a sub-token specialisation is a zero share: printed and saved as 0
    import dataclasses

    q = dataclasses.replace(p, D_spec={**p.D_spec, "math": 0.0024})
    assert q.to_dict()["D_spec"]["math"] == 0.0
    assert q.to_dict()["D_spec"]["code"] == p.D_spec["code"]  # full precision otherwise
    row = [ln for ln in q.summary().splitlines() if ln.startswith("math")][0]
    assert row.split()[3] == "0"
    assert "0.0024" not in q.summary()


def test_specialisation_beyond_runs_without_any(chin_fit):
    import dataclasses

    fits = {"code": _spec_fit(chin_fit, 1e3), "math": _spec_fit(chin_fit, 50.0)}
    fits["math"] = dataclasses.replace(fits["math"], data=fits["math"].data.assign(D_spec=0.0))
    p = plan.split(fits, 1e21)
    assert p.D_spec["math"] > 0  # the plan specialises on math, which no run did
    recs = {r["variable"]: r for r in extrapolation(p, fits)}
    assert recs["D_spec[math]"]["ratio"] is None
    assert "where every run has D_spec = 0" in describe(list(recs.values()))
    json.dumps(list(recs.values()), allow_nan=False)  # strict JSON: no infinite ratio


# ------------------------------------------------------------------ filled in by the library
def test_split_from_the_library_states_its_extrapolation(chin_fit):
    fits = {"code": _spec_fit(chin_fit, 1e3), "math": _spec_fit(chin_fit, 50.0)}
    p = plan.split(fits, 1e23, baselines=False)
    by = {r["variable"]: r for r in p.extrapolation}
    assert set(by) == {"N", "D", "D_spec[code]", "D_spec[math]"}
    assert by["N"]["ratio"] == pytest.approx(p.N / 1e9, rel=1e-12)
    assert by["D"]["ratio"] == pytest.approx(p.D / 1e11, rel=1e-12)
    assert by["D_spec[code]"]["ratio"] == pytest.approx(p.D_spec["code"] / 1e9, rel=1e-12)
    assert f"{by['N']['ratio']:.3g}x the largest" in p.summary()
    assert json.loads(json.dumps(p.to_dict()))["extrapolation"][0]["variable"] == "N"
    # a run of weight 0 does not widen the range; fits as tuples: not checked
    assert plan.split({k: (f.law, f.params) for k, f in fits.items()}, 1e23,
                      baselines=False).extrapolation is None
    fr = plan.frontier(fits, [1e15, 1e23])
    at = {(r["budget"], r["variable"]): r for r in fr.extrapolation}
    assert at[(1e15, "N")]["side"] == "below"
    assert at[(1e15, "N")]["ratio"] == pytest.approx(fr.frame["N"].iloc[0] / 1e7, rel=1e-12)
    assert at[(1e23, "N")]["ratio"] == pytest.approx(fr.frame["N"].iloc[1] / 1e9, rel=1e-12)
    assert "EXTRAPOLATION" in fr.summary() and json.dumps(fr.to_dict(), allow_nan=False)


def test_best_loss_budget_for_loss_and_bootstrap_state_extrapolation(chin_fit):
    from types import SimpleNamespace

    b = plan.best_loss_at(chin_fit, 1e22, N=5e10)
    n = [r for r in b.extrapolation if r["variable"] == "N"][0]
    assert n["value"] == pytest.approx(5e10) and n["ratio"] == pytest.approx(50.0)
    t = plan.budget_for_loss(chin_fit, 2.2)
    assert t.extrapolation == extrapolation(t, chin_fit)
    # a bootstrap: the point fit carries the data; the point plan's numbers are checked
    samples = pd.DataFrame([chin_fit.params] * 3)
    boot = SimpleNamespace(law=chin_fit.law, samples=samples, fit=chin_fit)
    dist = plan.compute_optimal(boot, [1e19, 1e22])
    recs = {(r["budget"], r["variable"]): r for r in dist.extrapolation}
    assert (1e19, "N") not in recs
    assert recs[(1e22, "N")]["ratio"] == pytest.approx(dist.N[1] / 1e9, rel=1e-12)
    assert "EXTRAPOLATION" in dist.summary()
    assert dist.to_dict()["extrapolation"] == dist.extrapolation


def test_mixture_plans_state_their_extrapolation():
    fits = _mixture_fits()
    a = plan.mixture(fits, N=1e10, D=2e9, weights={"web_val": 0.0, "code_val": 1.0})
    by = {r["variable"]: r for r in a.extrapolation}
    assert by["N"]["ratio"] == pytest.approx(1e10 / 1e8) and by["N"]["side"] == "above"
    assert "D" not in by  # D = 2e9 is the largest D in the data: inside
    for dom, (lo, hi) in {"web": (0.3, 0.7), "code": (0.3, 0.7)}.items():
        w = float(a.weights[dom])
        key = f"h[{dom}]"
        assert (key in by) == (w < lo - 1e-9 or w > hi + 1e-9)
        if key in by:
            ref = lo if w < lo else hi
            assert by[key]["ratio"] == pytest.approx(w / ref, rel=1e-12)
            assert by[key]["data_min"] == pytest.approx(lo)
    assert any(k.startswith("h[") for k in by)  # this target's optimum leaves the swarm
    assert by["h[web]"]["value"] == 0.0 and by["h[web]"]["ratio"] == 0.0  # unused: below
    assert "extrapolates: N 1e+10 > largest fitted N 1e+08 (x100)" in a.summary()
    assert "weight h[code] = 1 is 1.43x the largest" in describe(a.extrapolation)
    assert json.loads(json.dumps(a.to_dict(), allow_nan=False))["extrapolation"] == \
        json.loads(json.dumps(a.extrapolation))
    # a budget plan carries its budget in each record; the path collects them
    path = plan.mixture_path(fits, [1e19, 1e21])
    assert {r["budget"] for r in path.extrapolation} <= {1e19, 1e21}
    assert "EXTRAPOLATION" in path.summary()
    tup = {k: (f.law, f.params) for k, f in fits.items()}
    assert plan.mixture(tup, N=1e10, D=2e9).extrapolation is None


def test_mixture_split_states_its_extrapolation():
    mix = _mixture_fits()
    N = np.repeat([1e7, 1e8], 3)
    d = pd.DataFrame({"N": N, "D": np.tile([1e9, 1e9, 1e10], 2),
                      "D_spec": np.tile([0.0, 1e8, 1e8], 2)})
    tr = mixopt.laws.get("transfer")
    ps = {"web_val": dict(E=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28, K=1e3, rho=0.7),
          "code_val": dict(E=1.5, A=400.0, B=900.0, alpha=0.34, beta=0.28, K=50.0, rho=0.8)}
    split = {k: _Fitted(tr, p, d.assign(loss=tr.predict(p, d))) for k, p in ps.items()}
    p = plan.mixture_split(mix, split, 1e21)
    by = {r["variable"]: r for r in p.extrapolation}
    assert p.N > 1e8 and by["N"]["ratio"] == pytest.approx(p.N / 1e8, rel=1e-12)
    for k in ps:
        if p.D_spec[k] > 1e8:
            assert by[f"D_spec[{k}]"]["ratio"] == pytest.approx(p.D_spec[k] / 1e8, rel=1e-12)
        de = p.D_eff[k]
        assert (f"D_eff[{k}]" in by) == (de > 1e10 or de < 1e9)
    assert "EXTRAPOLATION" in p.summary()
    assert p.to_dict()["extrapolation"] == p.extrapolation
