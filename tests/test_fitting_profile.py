"""mixopt.fitting.profile.profile: refits with one parameter pinned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.errors import FitError
from mixopt.fitting.profile import profile

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(scope="module")
def exact_fit():
    N = np.repeat(np.logspace(7, 9, 4), 4)
    D = np.tile(np.logspace(9, 11.5, 4), 4)
    loss = mixopt.laws.get("chinchilla").predict(TRUTH, {"N": N, "D": D})
    return mixopt.fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": loss}))


def test_profile_is_the_pinned_refit(exact_fit):
    values = [1.2, 1.69, 2.0]
    big = {"N": 1e11, "D": 2e12}
    prof = profile(exact_fit, "E", values, at=big)
    assert list(prof.index) == values and prof.index.name == "E"
    assert prof["success"].all()
    # each row is mixopt.fit(..., fixed={"E": v}) on the same data
    for v in values:
        ref = mixopt.fit("chinchilla", exact_fit.data, fixed={"E": v})
        assert prof.loc[v, "objective"] == pytest.approx(ref.objective, rel=1e-6, abs=1e-12)
        assert prof.loc[v, "alpha"] == pytest.approx(ref.params["alpha"], rel=1e-5)
        far = float(np.ravel(ref.predict(big))[0])
        assert prof.loc[v, "loss_at"] == pytest.approx(far, rel=1e-6)
    # noise-free data: at the true E the refit recovers the truth and the objective is ~0; a
    # wrong E fits worse (the data do constrain E here)
    assert prof.loc[1.69, "delta_objective"] == pytest.approx(0.0, abs=1e-10)
    assert prof.loc[1.69, "beta"] == pytest.approx(TRUTH["beta"], rel=1e-4)
    assert prof.loc[1.2, "delta_objective"] > 1e-6 and prof.loc[2.0, "delta_objective"] > 1e-6
    assert prof.loc[1.69, "rmse"] < 1e-6 < prof.loc[2.0, "rmse"]
    assert "E" not in prof.columns and {"A", "B", "alpha", "beta"} <= set(prof.columns)


def test_profile_can_look_beyond_the_bounds_and_at_several_points(exact_fit):
    fit = mixopt.fit("chinchilla", exact_fit.data, bounds={"E": (1.5, 3.0)})
    prof = profile(fit, "E", [1.0, 1.69], at=pd.DataFrame({"N": [1e9, 1e11], "D": [1e10, 1e12]}))
    assert {"loss_at[0]", "loss_at[1]"} <= set(prof.columns)
    assert prof.loc[1.0, "delta_objective"] > 0  # 1.0 lies below the fit's bounds
    assert fit.bounds["E"] == (1.5, 3.0)  # the fit itself is untouched


@pytest.mark.parametrize("name, values, match", [
    ("F", [1.0], "not a parameter of law 'chinchilla'"),
    ("E", [], "non-empty 1-D sequence"),
    ("E", [1.0, float("nan")], "finite numbers"),
    ("E", "1.0", "sequence of numbers"),
    ("E", [[1.0, 2.0]], "1-D"),
])
def test_profile_refuses_bad_input(exact_fit, name, values, match):
    with pytest.raises(FitError, match=match):
        profile(exact_fit, name, values)


def test_profile_refuses_a_pinned_parameter_and_fit_options(exact_fit):
    pinned = mixopt.fit("chinchilla", exact_fit.data, fixed={"E": 1.69})
    with pytest.raises(FitError, match="already pinned"):
        profile(pinned, "E", [1.0])
    with pytest.raises(FitError, match="come from the fit itself"):
        profile(exact_fit, "E", [1.0], fixed={"A": 1.0})
    with pytest.raises(FitError, match="needs a FitResult"):
        profile(("chinchilla", TRUTH), "E", [1.0])
    with pytest.raises(FitError, match="lacks the law's variable"):
        profile(exact_fit, "E", [1.0], at={"N": 1e9})
