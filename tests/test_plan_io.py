"""Saved plans: every plan type round-trips through save/load; tampered files are refused.

``mixopt.plan.load`` checks a payload against its kind's schema and the rules that tie its fields
together; a tampered file raises PlanError naming the field.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixopt
from mixopt import plan
from mixopt.errors import MixoptError, PlanError
from mixopt.plan.io import _encode, check_plan_dict

sys.path.insert(0, str(Path(__file__).parent))
from plan_fixtures import Fitted as _Fitted  # noqa: E402
from plan_fixtures import mixture_fits as _mix  # noqa: E402
from reliability_helpers import paths  # noqa: E402

HOFF = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _chin():
    law = mixopt.laws.get("chinchilla")
    N = np.repeat(np.logspace(7, 9, 3), 3)
    D = np.tile(np.logspace(9, 11, 3), 3)
    data = pd.DataFrame({"N": N, "D": D})
    return _Fitted(law, HOFF, data.assign(loss=law.predict(HOFF, data)))


def _spec(E, K):
    law = mixopt.laws.get("transfer")
    p = dict(E=E, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=K, rho=0.75)
    N = np.repeat(np.logspace(7, 9, 3), 3)
    data = pd.DataFrame({"N": N, "D": np.tile(np.logspace(9, 11, 3), 3),
                         "D_spec": np.tile([0.0, 1e8, 1e9], 3)})
    return _Fitted(law, p, data.assign(loss=law.predict(p, data)))


@pytest.fixture(scope="module")
def plans():
    chin = _chin()
    samples = pd.DataFrame({k: v * np.array([0.97, 1.0, 1.02, 1.05]) for k, v in HOFF.items()})
    boot = SimpleNamespace(law=chin.law, samples=samples, fit=chin)
    spec = {"code": _spec(1.6, 1e3), "math": _spec(1.4, 50.0)}
    mix = _mix()
    return {
        "Allocation": plan.compute_optimal(chin, [1e18, 1e22], max_N=1e11),
        "Allocation(scalar)": plan.best_loss_at(chin, 1e21, N=1e9),
        "AllocationDistribution": plan.compute_optimal(boot, [1e19, 1e22]),
        "SplitPlan": plan.split(spec, 1e22, weights=[0.3, 0.7], caps={"math": 1e9}),
        "SplitPlan(worst)": plan.split(spec, 1e21, objective="worst", baselines=False),
        "Frontier": plan.frontier(spec, [1e19, 1e21]),
        "MixtureAllocation": plan.mixture(mix, N=1e10, D=2e9),
        "MixturePath": plan.mixture_path(mix, [1e19, 1e20]),
        "MixtureSplitPlan": _mixture_split_plan(mix),
    }


def _mixture_split_plan(mix):
    """A MixtureSplitPlan with consistent numbers, built directly (the planner takes ~15 s;
    its own tests solve it): 6 N (D + sum D') = budget, extrapolation attached."""
    from mixopt.plan.extrapolation import attach
    from mixopt.plan.mixture_split import MixtureSplitPlan

    N, budget = 1e9, 1e21
    T = budget / (6 * N)
    p = MixtureSplitPlan(
        weights=pd.Series({"web": 0.25, "code": 0.75}, name="weight"), N=N, D=0.8 * T,
        D_spec={"web_val": 0.05 * T, "code_val": 0.15 * T},
        D_eff={"web_val": 2e11, "code_val": 5e10}, loss={"web_val": 2.1, "code_val": 1.7},
        objective=1.9, budget=budget, success=True, message="SLSQP: converged",
        notes=["a note"])
    return attach(p, (mix, {"web_val": _spec(1.8, 1e3), "code_val": _spec(1.5, 50.0)}))


def _json(p) -> str:
    return json.dumps(_encode(p.to_dict()), sort_keys=True)


@pytest.mark.parametrize("name", ["Allocation", "Allocation(scalar)", "AllocationDistribution",
                                  "SplitPlan", "SplitPlan(worst)", "Frontier",
                                  "MixtureAllocation", "MixturePath", "MixtureSplitPlan"])
def test_every_plan_round_trips_through_a_file(plans, tmp_path, name):
    p = plans[name]
    path = tmp_path / "p.json"
    p.save(path)
    json.loads(path.read_text(), parse_constant=lambda t: pytest.fail(f"token {t}"))
    back = plan.load(path)
    assert type(back) is type(p)
    assert _json(back) == _json(p)  # bit for bit
    assert back.summary() == p.summary()
    assert plan.load(p.to_dict()).summary() == p.summary()  # a dict loads too
    if hasattr(p, "extrapolation") and name != "MixturePath":
        assert back.extrapolation == p.extrapolation


def test_round_trip_keeps_what_users_read(plans, tmp_path):
    d = plans["AllocationDistribution"]
    d.save(tmp_path / "d.json")
    back = plan.load(tmp_path / "d.json")
    pd.testing.assert_frame_equal(back.conf_int(), d.conf_int())
    s = plans["SplitPlan"]
    s.save(tmp_path / "s.json")
    back = plan.load(tmp_path / "s.json")
    pd.testing.assert_frame_equal(back.baselines, s.baselines)
    pd.testing.assert_frame_equal(back.to_frame(), s.to_frame())
    m = plans["MixturePath"]
    pd.testing.assert_frame_equal(plan.load(m.to_dict()).weights, m.weights)


def test_the_cli_json_output_loads(plans, tmp_path):
    from mixopt.plan.command import _report

    d = _report(plans["SplitPlan"].to_dict())
    assert d["json_status"] == "ok"
    assert plan.load(d).summary() == plans["SplitPlan"].summary()


def _tampered(plans, name, path, value):
    d = copy.deepcopy(plans[name].to_dict())
    ref = d
    for k in path[:-1]:
        ref = ref[k]
    ref[path[-1]] = value(ref[path[-1]]) if callable(value) else value
    return d


TAMPER = [
    ("Allocation", ("kind",), "Plan", r"kind: expected one of"),
    ("Allocation", ("format",), 2, r"format: expected an integer in \[1, 1\]"),
    ("Allocation", ("N",), lambda v: [v[0] * 2, v[1]], r"N, D: expected 6 N D = budget"),
    ("Allocation", ("N",), lambda v: [-1.0, v[1]], r"N: expected a finite number > 0"),
    ("Allocation", ("D",), lambda v: v[:1], r"expected budget, N, D and loss of one shape"),
    ("Allocation", ("loss",), lambda v: ["nan", v[1]], r"loss: expected finite positive values"),
    ("Allocation", ("status",), "failed", r"status: expected 'optimal' exactly when success"),
    ("Allocation", ("constraints", "max_N"), 1e9, r"N: expected N <= constraints.max_N"),
    ("Allocation", ("constraints", "bogus"), 1.0, r"constraints: unknown key"),
    ("Allocation", ("extrapolation", 0, "ratio"), 3.0, r"extrapolation\[0\].ratio: expected"),
    ("Allocation", ("extrapolation", 0, "side"), "below", r"side 'below' needs value"),
    ("Allocation", ("extrapolation", 0, "budget"), 5e20, r"budget: expected one of the plan"),
    ("Allocation", ("extrapolation",), "x", r"extrapolation: expected a list"),
    ("AllocationDistribution", ("lower", "N"), lambda v: [v[0] * 0.5, v[1]],
     r"lower.N: expected the 0.95 percentile interval of samples.N"),
    ("AllocationDistribution", ("samples", "N"), lambda v: v[:2],
     r"samples.N: expected 4 \(n_samples\) rows"),
    ("AllocationDistribution", ("level",), 1.5, r"level: expected a finite number in \(0, 1\)"),
    ("SplitPlan", ("weights", "code"), 0.9, r"weights: expected weights summing to 1"),
    ("SplitPlan", ("D_spec", "math"), 5e9, r"D_spec.math: expected at most caps.math"),
    ("SplitPlan", ("N",), lambda v: v * 1.5, r"flops: expected 6 N \(D \+ sum D_spec\)"),
    ("SplitPlan", ("split_fraction",), 0.5, r"split_fraction: expected D / \(D \+ sum"),
    ("SplitPlan", ("objective_value",), lambda v: v * 0.9, r"objective_value: expected the "
                                                           r"weighted objective"),
    ("SplitPlan", ("loss", "code"), -1.0, r"loss: expected finite positive values"),
    ("SplitPlan", ("laws",), {"code": "transfer"}, r"laws: expected the domains"),
    ("SplitPlan", ("caps", "bio"), 1.0, r"caps: unknown domain"),
    ("SplitPlan", ("baselines", 0, "baseline"), "magic", r"baselines\[0\].baseline: expected"),
    ("SplitPlan", ("objective",), "best", r"objective: expected one of"),
    ("Frontier", ("frame", "N"), lambda v: v[:1], r"frame: expected every column to hold 2"),
    ("Frontier", ("frame", "budget"), lambda v: [0.0] + v[1:], r"frame.budget\[0\]: expected"),
    ("Frontier", ("domains",), ["code", "bio"], r"frame: missing column"),
    ("MixtureAllocation", ("weights", "web"), 0.7, r"weights: expected weights summing to 1"),
    ("MixtureAllocation", ("weights", "web"), None, r"weights: expected a weight for every"),
    ("MixtureAllocation", ("status",), 7, r"status: expected an integer in \[0, 1\]"),
    ("MixtureAllocation", ("outside",), [1], r"outside\[0\]: expected a string"),
    ("MixtureAllocation", ("objective",), -1.0, r"objective: expected a value between the "
                                                r"smallest and the largest predicted loss"),
    ("MixturePath", ("plans", 0, "budget"), None, r"plans: expected a budget in every plan"),
    ("MixturePath", ("plans", 1, "flops"), 1.0, r"plans\[1\]\.flops: expected the budget"),
    ("MixtureSplitPlan", ("N",), lambda v: v * 2, r"expected 6 N \(D \+ sum D_spec\) = budget"),
    ("MixtureSplitPlan", ("D_eff",), {}, r"D_eff: expected the domains"),
]


@pytest.mark.parametrize("name, path, value, match", TAMPER)
def test_tampered_plans_are_refused_naming_the_field(plans, tmp_path, name, path, value, match):
    d = _tampered(plans, name, path, value)
    f = tmp_path / "t.json"
    f.write_text(json.dumps(_encode(d)))
    with pytest.raises(PlanError, match=match):
        plan.load(f)


def test_unreadable_sources_are_plan_errors(tmp_path):
    for text in ("{", '{"kind": "SplitPlan", "x": NaN}', "[]", "null"):
        (tmp_path / "t.json").write_text(text)
        with pytest.raises(PlanError):
            plan.load(tmp_path / "t.json")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe")
    for bad in (tmp_path / "b.json", tmp_path / "missing.json", tmp_path, None, 3):
        with pytest.raises(PlanError):
            plan.load(bad)
    with pytest.raises(PlanError, match="needs a plan"):
        plan.save(object(), tmp_path / "x.json")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                               max_size=2),
    max_leaves=4)
NAMES = ["Allocation", "AllocationDistribution", "SplitPlan", "Frontier", "MixtureAllocation",
         "MixturePath", "MixtureSplitPlan"]


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_corrupted_field_is_refused_or_loads_a_consistent_plan(plans, data):
    name = data.draw(st.sampled_from(NAMES))
    base = plans[name].to_dict()
    path = data.draw(st.sampled_from(paths(base)))
    d = _tampered(plans, name, path, data.draw(JSON))
    try:
        p = plan.load(json.loads(json.dumps(_encode(d))))
    except MixoptError as exc:
        assert isinstance(exc, PlanError)
        return
    # what loads re-checks cleanly and prints
    again = check_plan_dict(json.loads(json.dumps(_encode(p.to_dict()))))
    assert again["kind"] == name
    assert isinstance(p.summary(), str)
    for key in ("N", "budget"):
        v = getattr(p, key, None)
        if v is not None and not isinstance(v, pd.Series):
            assert np.all(np.isfinite(np.asarray(v, dtype=float)))
    assert not isinstance(getattr(p, "success", False), float) or math.isfinite(p.success)
