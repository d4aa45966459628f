"""compare: unidentified training fits are recorded in the table, one warning per call."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.fitting.result import IdentifiabilityWarning

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _d_is_20n():
    """Issue 16, item 4: D = 20 N on every run, so B and beta are not identified."""
    N = np.geomspace(1e7, 1e10, 12)
    D = 20 * N
    loss = mixopt.laws.get("chinchilla").predict(TRUTH, {"N": N, "D": D})
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def test_compare_aggregates_identifiability_into_one_warning_and_the_table():
    data = _d_is_20n()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = mixopt.compare({"first": "chinchilla", "second": "chinchilla"}, data,
                               holdout="N", grid=20)
    ident = [w for w in caught if issubclass(w.category, IdentifiabilityWarning)]
    assert len(ident) == 1  # one per call, not one per fitted law
    text = str(ident[0].message)
    assert "2 law(s)" in text and "first" in text and "second" in text
    assert not table["identified"].any()
    assert table["note"].str.contains("do not identify").all()
    # the note names what the training fit itself reports (the runs below the largest N)
    with pytest.warns(IdentifiabilityWarning):
        train = mixopt.fit("chinchilla", data[data["N"] < data["N"].max()], grid=20)
    what = ", ".join(train.identifiability()["unidentified"])
    assert what and (table["note"] == f"the training runs do not identify {what}").all()
    assert np.isfinite(table["mean_rel_error"]).all()  # errors still measured


def test_compare_on_an_identified_design_is_quiet():
    N = np.repeat([1e7, 1e8, 1e9, 3e9], 3)
    D = np.tile([1e9, 1e10, 1e11], 4)
    loss = mixopt.laws.get("chinchilla").predict(TRUTH, {"N": N, "D": D})
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        table = mixopt.compare(["chinchilla"], pd.DataFrame({"N": N, "D": D, "loss": loss}),
                               holdout="N", grid=20)
    assert table["identified"].all() and (table["note"] == "").all()


def test_a_direct_fit_still_warns():
    with pytest.warns(IdentifiabilityWarning):
        res = mixopt.fit("chinchilla", _d_is_20n(), grid=20)
    assert res.status == 3 and not res.identified
