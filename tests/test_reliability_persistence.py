"""Validated persistence: every saved object is checked against its schema on load.

Each tampered file or state must raise the stage's MixoptError subclass naming the field at
fault (and, for state dicts, leave the object as it was); untouched ones round-trip exactly.
Fits and bootstraps are built directly (no optimiser run), so these tests do not depend on the
fitting engine.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import online
from mixopt.errors import FitError, MixoptError, MixtureError
from mixopt.fitting import BootstrapResult, FitResult

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def make_fit() -> FitResult:
    law = mixopt.laws.get("chinchilla")
    N = np.repeat([1e7, 1e8, 1e9], 3)
    D = np.tile([1e9, 1e10, 1e11], 3)
    loss = law.predict(TRUTH, {"N": N, "D": D})
    return FitResult(law=law, params=dict(TRUTH), fixed={}, objective=0.0, status=0,
                     message="converged", n_starts=4, nit=3, nfev=9,
                     data=pd.DataFrame({"N": N, "D": D, "loss": loss}), weights=np.ones(9),
                     delta=1e-3, bounds=law.bounds)


def make_boot() -> BootstrapResult:
    fit = make_fit()
    samples = pd.DataFrame({k: v * np.array([0.99, 1.0, 1.01]) for k, v in TRUTH.items()})
    return BootstrapResult(fit=fit, samples=samples, objective=np.array([1e-4, 2e-4, np.inf]),
                           converged=np.array([True, True, False]), seed=3)


def write(tmp_path: Path, payload) -> Path:
    path = tmp_path / "x.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_untouched_fit_and_bootstrap_round_trip(tmp_path):
    fit = make_fit()
    fit.save(tmp_path / "f.json")
    back = mixopt.load(tmp_path / "f.json")
    assert back.params == fit.params and back.bounds == fit.bounds
    assert np.array_equal(back.data.to_numpy(), fit.data.to_numpy())
    boot = make_boot()
    boot.save(tmp_path / "b.json")
    again = mixopt.load(tmp_path / "b.json")
    assert np.array_equal(again.samples.to_numpy(), boot.samples.to_numpy())
    assert again.objective[-1] == np.inf and again.seed == 3


def _set(d, path, value):
    keys = path.split("/")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    last = keys[-1]
    if value is _DELETE:
        del d[last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


_DELETE = object()

# (path in the saved dict, new value, text the message must contain)
FIT_TAMPERING = [
    ("params/alpha", _DELETE, "params: expected the parameters"),
    ("params/alpha", "nan", "params.alpha: expected a finite number"),
    ("params/alpha", None, "params.alpha: expected a finite number"),
    ("params/alpha", True, "params.alpha: expected a finite number"),
    ("params/A", -5.0, "params.A: expected a value within"),
    ("params/alpha", 1e6, "params.alpha: expected a value within"),
    ("params/zeta", 1.0, "params: expected the parameters"),
    ("weights", [1.0, 1.0], "weights: expected 9 entries"),
    ("weights/0", -1.0, "weights[0]: expected a finite number >= 0"),
    ("format", 2, "format: expected an integer in [1, 1]"),
    ("format", "1", "format: expected an integer"),
    ("kind", "FitResult2", "not a saved mixopt fit"),
    ("law/name", "no-such-law", "cannot rebuild law"),
    ("law", "chinchilla", "law: expected an object"),
    ("data/N/0", -1.0, "must be positive"),
    ("data/N", [1e7], "data: expected every column to hold 9 runs"),
    ("data/D", _DELETE, "data: missing column(s) ['D']"),
    ("data/loss/3", "abc", "data.loss[3]: expected a finite number"),
    ("bounds/E", [2.0, 1.0], "bounds.E: expected lower <= upper"),
    ("bounds/E", ["nan", 1.0], "bounds.E: expected lower <= upper"),
    ("bounds/E", [0.0], "bounds.E: expected a list of length 2"),
    ("fixed/E", 1.0, "fixed.E: expected the fitted value"),
    ("fixed/q", 1.0, "fixed: ['q'] are not parameters"),
    ("status", -1, "status: expected an integer >= 0"),
    ("status", 0.5, "status: expected an integer"),
    ("delta", 0.0, "delta: expected a finite number > 0"),
    ("objective", -1.0, "objective: expected a finite number >= 0"),
    ("message", 3, "message: expected a string"),
    ("nit", _DELETE, "missing key(s) ['nit']"),
]


@pytest.mark.parametrize("path,value,message", FIT_TAMPERING)
def test_tampered_fit_is_refused_naming_the_field(tmp_path, path, value, message):
    d = make_fit().to_dict()
    _set(d, path, value)
    with pytest.raises(FitError) as info:
        mixopt.load(write(tmp_path, d))
    assert message in str(info.value)


@pytest.mark.parametrize("text,message", [
    ('{"kind": "FitResult", "objective": NaN}', "non-standard JSON token NaN"),
    ("[" * 100_000 + "]" * 100_000, "too deeply"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a saved mixopt fit"),
])
def test_unreadable_files(tmp_path, text, message):
    with pytest.raises(FitError, match=message):
        mixopt.load(write(tmp_path, text))


def test_binary_directory_and_bad_paths(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(FitError, match="UTF-8"):
        mixopt.load(tmp_path / "bin.json")
    with pytest.raises(FitError, match="cannot read"):
        mixopt.load(tmp_path)
    with pytest.raises(FitError, match="file path"):
        mixopt.load(None)
    with pytest.raises(FitError, match="no such file"):
        mixopt.load(tmp_path / "missing.json")


@pytest.mark.parametrize("path,value,message", [
    ("samples/alpha", [0.3, 0.3], "samples.alpha': 2"),
    ("samples/alpha/0", None, "samples.alpha[0]: expected a finite number"),
    ("samples/zeta", [1.0, 1.0, 1.0], "samples: expected one column per parameter"),
    ("converged/0", 1, "converged[0]: expected true or false"),
    ("objective/0", -1.0, "objective[0]: expected a number >= 0"),
    ("seed", -3, "seed: expected an integer >= 0 or null"),
    ("fit/params/E", "inf", "fit.params.E: expected a finite number"),
    ("fit/weights", [1.0], "fit.weights: expected 9 entries"),
])
def test_tampered_bootstrap_is_refused(tmp_path, path, value, message):
    d = make_boot().to_dict()
    _set(d, path, value)
    with pytest.raises(FitError) as info:
        mixopt.load(write(tmp_path, d))
    assert message in str(info.value)


def test_tampered_files_never_raise_other_exceptions(tmp_path):
    """Every single-field corruption of a saved fit gives FitError (no raw exception)."""
    base = make_fit().to_dict()
    bad_values = [None, "x", -1.0, 0, [], {}, True, 1e308, "nan", [None]]
    accepted = set()
    for key in base:
        for value in bad_values:
            d = copy.deepcopy(base)
            d[key] = value
            try:
                mixopt.load(write(tmp_path, d))
            except MixoptError:
                continue
            accepted.add((key, repr(value)))
    # only values that are valid for their field load (a count of 0, any message, ...)
    assert accepted == {
        ("fixed", "{}"), ("objective", "0"), ("objective", "1e+308"), ("status", "0"),
        ("message", "'x'"), ("message", "'nan'"), ("n_starts", "0"), ("nit", "0"),
        ("nfev", "0"), ("delta", "1e+308"), ("time", "0"), ("time", "1e+308")}


# ------------------------------------------------------------------------------ online rules
def _rules():
    return {
        "Static": online.Static([0.2, 0.3, 0.5]),
        "SkillIt": online.SkillIt(np.eye(3) * 0.5 + 0.1),
        "DoReMi": online.DoReMi([1.0, 1.0, 1.0]),
        "ODM": online.ODM(3, warmup_steps=0),
        "Aioli": online.Aioli(3),
        "EMA": online.EMA(online.ODM(3, warmup_steps=0), 0.5),
    }


def _trained(rule):
    rng = np.random.default_rng(0)
    for _ in range(4):
        rule.update(rng.uniform(1.0, 3.0, size=rule.n_eval))
    return rule


@pytest.mark.parametrize("name", list(_rules()))
@pytest.mark.parametrize("field,value,message", [
    ("weights", [None, 0.5, 0.5], "weights[0]: expected a finite number, got null"),
    ("weights", [0.5, 0.5, 0.5], "weights: expected weights summing to 1"),
    ("weights", [-0.5, 1.0, 0.5], "weights[0]: expected a number >= 0"),
    ("weights", [0.5, 0.5], "weights has shape (2,), expected (3,)"),
    ("weights", "abc", "weights: expected an array of numbers"),
    ("weights", [True, False, False], "weights: expected numbers, got a boolean"),
    ("rounds", -1, "rounds: expected an integer >= 0"),
    ("rounds", 2.5, "rounds: expected an integer >= 0"),
    ("rounds", None, "rounds: expected an integer >= 0"),
    ("history", [], "history: expected a mapping"),
    ("state", 7, "state: expected a mapping"),
])
def test_rule_state_is_validated_and_load_is_atomic(name, field, value, message):
    rule = _trained(_rules()[name])
    before = rule.state_dict()
    state = copy.deepcopy(before)
    state[field] = value
    with pytest.raises(MixtureError) as info:
        rule.load_state_dict(state)
    assert message in str(info.value)
    assert rule.state_dict() == before  # nothing changed
    assert np.all(np.isfinite(rule.weights))


@pytest.mark.parametrize("name,field,value,message", [
    ("SkillIt", "buffer", [[None] * 3] * 3, "state.buffer[0, 0]: expected a finite number"),
    ("SkillIt", "n_evals", "4", "state.n_evals: expected an integer"),
    ("DoReMi", "alpha", [0.9, 0.9, 0.9], "state.alpha: expected weights summing to 1"),
    ("DoReMi", "n", None, "state.n: expected an integer"),
    ("DoReMi", "scores", [float("inf"), 0, 0], "state.scores[0]: expected a finite number"),
    ("ODM", "rewards", [None, 0.0, 0.0], "state.rewards[0]: expected a finite number"),
    ("ODM", "eps", 2.0, "state.eps: expected a finite number in [0.0, 1.0]"),
    ("Aioli", "mixture", [1.0, 1.0, 1.0], "state.mixture: expected weights summing to 1"),
    ("Aioli", "order", "abc", "state.order: expected a list"),
    ("Aioli", "rng", {"bit_generator": "MT19937"}, "state.rng: expected a numpy bit-generator"),
])
def test_rule_specific_state_fields(name, field, value, message):
    rule = _trained(_rules()[name])
    before = rule.state_dict()
    state = copy.deepcopy(before)
    state["state"][field] = value
    with pytest.raises(MixtureError) as info:
        rule.load_state_dict(state)
    assert message in str(info.value)
    assert rule.state_dict() == before


def test_rule_state_round_trips_through_json():
    for name, rule in _rules().items():
        rule = _trained(rule)
        fresh = _rules()[name]
        fresh.load_state_dict(json.loads(json.dumps(rule.state_dict(), allow_nan=False)))
        assert np.array_equal(fresh.weights, rule.weights), name


# ------------------------------------------------------------------------------ CLI / datasets
def test_datasets_main_needs_a_path(tmp_path):
    bundled = Path(mixopt.datasets.__file__).with_name("demo_ladder.csv")
    before = bundled.stat().st_mtime_ns
    run = subprocess.run([sys.executable, "-m", "mixopt.datasets"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "give a PATH" in run.stderr
    assert bundled.stat().st_mtime_ns == before
    out = tmp_path / "demo.csv"
    run = subprocess.run([sys.executable, "-m", "mixopt.datasets", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and out.read_text() == bundled.read_text()


# ------------------------------------------------------------------ a fit's own (wider) bounds
def _wide_fit() -> FitResult:
    """A fit made with ``bounds={"alpha": (-1, 8)}`` whose alpha (6.0) lies outside the law's
    default bounds [0, 5] (a fit can reach that with fit(..., bounds=...))."""
    law = mixopt.laws.get("chinchilla")
    params = dict(TRUTH, alpha=6.0)
    N = np.repeat([1e7, 1e8, 1e9], 3)
    D = np.tile([1e9, 1e10, 1e11], 3)
    bounds = dict(law.bounds, alpha=(-1.0, 8.0))
    loss = law.predict(params, {"N": N, "D": D}, bounds=bounds)
    return FitResult(law=law, params=params, fixed={}, objective=0.0, status=0,
                     message="converged", n_starts=4, nit=3, nfev=9,
                     data=pd.DataFrame({"N": N, "D": D, "loss": loss}), weights=np.ones(9),
                     delta=1e-3, bounds=bounds)


def test_saved_fit_with_wider_bounds_loads_and_plans(tmp_path):
    fit = _wide_fit()
    assert not 0.0 <= fit.params["alpha"] <= 5.0  # outside the law's defaults
    fit.save(tmp_path / "w.json")
    back = mixopt.load(tmp_path / "w.json")
    assert back.params == fit.params and back.bounds["alpha"] == (-1.0, 8.0)
    np.testing.assert_array_equal(back.predict(back.data), fit.predict(fit.data))
    # planners check a fit against its own bounds too
    a = mixopt.plan.compute_optimal(back, 1e21)
    assert a.success and np.isfinite(a.loss)
    with pytest.raises(MixoptError, match="outside its bounds"):  # a bare tuple: the law's
        mixopt.plan.compute_optimal((back.law, back.params), 1e21)


@pytest.mark.parametrize("field, value, match", [
    ("params/alpha", 9.0, r"params.alpha: expected a value within the saved bounds \[-1.0, 8.0\]"),
    ("params/alpha", -1.5, r"params.alpha: expected a value within the saved bounds"),
    ("bounds/alpha", [6.5, 8.0], r"params.alpha: expected a value within the saved bounds "
                                 r"\[6.5, 8.0\], got 6.0"),
    ("bounds/E", [-1.0, "inf"], r"bounds.E: expected a lower bound >= 0 \(E of law "
                                r"'chinchilla' is positive\)"),
    ("params/E", -0.5, r"params.E: expected a value within the saved bounds"),
])
def test_saved_wider_bounds_still_refuse_tampering(tmp_path, field, value, match):
    d = _wide_fit().to_dict()
    key, name = field.split("/")
    d[key][name] = value
    with pytest.raises(FitError, match=match):
        mixopt.load(write(tmp_path, d))


def test_saved_bounds_that_make_the_law_unevaluable_are_refused(tmp_path):
    # alpha = -60 inside saved bounds [-100, 8]: N**60 overflows, the law predicts inf
    d = _wide_fit().to_dict()
    d["bounds"]["alpha"] = [-100.0, 8.0]
    d["params"]["alpha"] = -60.0
    with pytest.raises(FitError, match="expected a finite positive loss"):
        mixopt.load(write(tmp_path, d))
