"""The ladder study's fitting threshold (issue 20, item 4): runs in the early transient are left
out of fits, the threshold chosen by a nested holdout that never looks at the largest size."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mixopt  # noqa: E402
from benchmarks.studies import ladder  # noqa: E402

TRUTH = {"E": 1.2, "A": 30.0, "alpha": 0.35, "B": 60.0, "beta": 0.35, "G": 0.5, "S": 5e4,
         "gamma": 0.3}
SIZES = (1.3e4, 2.2e4, 3.7e4, 6.2e4, 1.13e5)


def _ladder(spoil: float = 1.0) -> pd.DataFrame:
    """A noise-free 'additive' ladder on 5 sizes; on the three smallest (fitted only, never
    scored) the runs that saw fewer than 30k tokens are multiplied by ``spoil``."""
    rows = [dict(N=N, D=D, D_spec=Ds) for N in SIZES
            for D in (0.0, 1e4, 1.5e5, 3e5, 6e5) for Ds in (0.0, 1e4, 2.5e4, 1e5, 3e5)
            if D + Ds > 0]
    d = pd.DataFrame(rows)
    d["loss"] = mixopt.laws.get("additive").predict(TRUTH, d)
    early = (d["D"] + d["D_spec"] < 3e4) & (d["N"] < SIZES[3])
    d.loc[early, "loss"] *= spoil
    return d


def test_runs_below_the_threshold_are_left_out_and_every_run_of_the_largest_is_scored():
    d = _ladder(spoil=3.0)
    chosen, scores = ladder.select_min_tokens(d, {}, laws=("additive",))
    assert set(scores) == set(map(float, ladder.MIN_TOKENS))
    # 0 and 25k keep spoilt runs (T = 10k, 20k, 25k < 30k); 50k and 100k fit clean runs only
    assert chosen >= 50_000
    assert scores[chosen] < 1e-6 and scores[0.0] > 1e-2
    Ns = sorted(d["N"].unique())
    past = ladder.extrapolation_error(d, "additive", Ns[:-1], Ns[-1], chosen, {})
    every = ladder.extrapolation_error(d, "additive", Ns[:-1], Ns[-1], 0, {})
    assert past[1] < 1e-6 < every[0]  # the clean fit predicts *every* run of the largest size
    row = ladder._compare(d, "additive", "prose", {}, chosen).iloc[0]
    assert row["min_tokens"] == chosen and row["note"] == ""
    assert row["mean_rel_error"] == past[0] and row["mean_rel_error_all_runs"] == every[0]


def test_the_choice_never_looks_at_the_largest_size():
    d = _ladder(spoil=3.0)
    other = d.copy()
    other.loc[other["N"] == SIZES[-1], "loss"] *= 2.0
    kw = dict(candidates=(0, 50_000), laws=("additive",))
    assert ladder.select_min_tokens(other, {}, **kw) == ladder.select_min_tokens(d, {}, **kw)
    # with fewer than three sizes there is no nested holdout: every run is fitted
    assert ladder.select_min_tokens(d[d["N"] < 3e4], {}) == (0.0, {})
