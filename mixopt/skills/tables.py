"""Ablation tables: the training mixtures of a set of runs and their evaluation curves.

``mixtures``
    DataFrame, index = run id, one column per trained skill holding that run's training
    proportion. Rows must lie on the simplex (non-negative, summing to 1 within ``1e-6``).
``evals``
    DataFrame with columns ``run, step, skill, loss`` and optionally ``seed``: the loss on an
    evaluated skill at a training step. Repeated training seeds of one mixture are given either
    as rows with the same ``run`` and different ``seed`` values, or as distinct runs sharing the
    same mixture; either way one *observation* is one ``(run, seed)`` pair, and estimators that
    summarise replicates group observations by identical mixture (mean, with the spread reported).

Every run needs a loss for every evaluated skill at step 0 (before training) and at its final
step (its largest step, or the ``step`` asked for). Violations raise
:class:`~mixopt.errors.DataError` naming the run, seed, step, skill or column at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixopt.data import not_real
from mixopt.errors import DataError

__all__ = [
    "Ablations", "validate_mixtures", "load_ablations", "loss_drops", "EVAL_COLUMNS", "SIMPLEX_TOL"
]

EVAL_COLUMNS = ("run", "step", "skill", "loss")
SIMPLEX_TOL = 1e-6


def _py(v: Any) -> Any:
    """numpy scalar -> Python scalar, for readable messages."""
    return v.item() if isinstance(v, np.generic) else v


def _obs_name(run: Any, seed: Any) -> str:
    return f"run {_py(run)!r} (seed {_py(seed)!r})"


def validate_mixtures(mixtures: Any) -> pd.DataFrame:
    """Check a mixtures table; return a float64 copy with string skill columns."""
    if not isinstance(mixtures, pd.DataFrame):
        raise DataError("mixtures must be a pandas DataFrame (index run, columns skill -> "
                        f"proportion), got {type(mixtures).__name__}")
    if mixtures.shape[0] == 0 or mixtures.shape[1] == 0:
        raise DataError(f"mixtures is empty (shape {mixtures.shape}); it needs one row per run "
                        "and one column per trained skill")
    dup = mixtures.index[mixtures.index.duplicated()]
    if len(dup):
        raise DataError(f"mixtures has the run {_py(dup[0])!r} more than once; give each run "
                        "one row (repeat seeds in the seed column of evals)")
    cols = [str(c) for c in mixtures.columns]
    if len(set(cols)) != len(cols):
        raise DataError(f"mixtures has duplicate skill columns: {cols}")
    out = pd.DataFrame(index=mixtures.index)
    for col, name in zip(mixtures.columns, cols):
        why = not_real(mixtures[col])
        if why is not None:
            raise DataError(f"mixtures column {name!r} must hold real numbers, got {why}")
        values = pd.to_numeric(mixtures[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"mixtures column {name!r} has the non-finite or non-numeric value "
                            f"{_py(mixtures[col].iloc[i])!r} for run {_py(mixtures.index[i])!r}")
        if (values < 0).any():
            i = int(np.flatnonzero(values < 0)[0])
            raise DataError(f"mixtures column {name!r} is negative ({float(values[i])!r}) for run "
                            f"{_py(mixtures.index[i])!r}; proportions must lie on the simplex")
        out[name] = values
    sums = out.to_numpy().sum(axis=1)
    off = np.abs(sums - 1.0) > SIMPLEX_TOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"the mixture of run {_py(out.index[i])!r} sums to "
                        f"{float(sums[i])!r}, not 1; proportions must lie on the simplex")
    return out


@dataclass
class Ablations:
    """Validated ablation runs, one row per observation ``(run, seed)``.

    Attributes
    ----------
    mixtures
        validated mixtures table (float64).
    train_skills, eval_skills
        skill labels (strings).
    runs, seeds
        run id and seed of each observation (object arrays, length ``n``).
    W
        ``n x k`` training proportions of each observation.
    steps
        ``n`` final step of each observation.
    initial, final
        ``n x m`` losses at step 0 and at the final step.
    curves
        every evaluation as a wide DataFrame (index ``run, seed, step``; columns skills).
    """

    mixtures: pd.DataFrame
    train_skills: list[str]
    eval_skills: list[str]
    runs: np.ndarray
    seeds: np.ndarray
    W: np.ndarray
    steps: np.ndarray
    initial: np.ndarray
    final: np.ndarray
    curves: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.runs)

    def names(self) -> list[str]:
        return [_obs_name(r, s) for r, s in zip(self.runs, self.seeds)]

    def curve(self, i: int) -> pd.DataFrame:
        """Evaluation curve of observation ``i`` (index step, columns eval skills)."""
        return self.curves.loc[(self.runs[i], self.seeds[i])]

    def replicate_groups(self, decimals: int = 9) -> list[np.ndarray]:
        """Observations grouped by identical mixture (rounded), in first-appearance order."""
        keys = [tuple(row) for row in np.round(self.W, decimals)]
        groups: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        return [np.array(g) for g in groups.values()]


def load_ablations(mixtures: Any, evals: Any, *, step: float | None = None) -> Ablations:
    """Validate ``mixtures`` and ``evals`` and gather each observation's losses.

    ``step``: compare step 0 with this step instead of each run's last step (every run must
    have it).
    """
    mix = validate_mixtures(mixtures)
    if not isinstance(evals, pd.DataFrame):
        raise DataError(f"evals must be a pandas DataFrame with columns {list(EVAL_COLUMNS)} "
                        f"(and optionally 'seed'), got {type(evals).__name__}")
    missing = [c for c in EVAL_COLUMNS if c not in evals.columns]
    if missing:
        raise DataError(f"evals is missing column(s) {missing}; it has {list(evals.columns)}")
    if len(evals) == 0:
        raise DataError("evals has no rows")
    ev = pd.DataFrame({"run": evals["run"].to_numpy(), "skill": evals["skill"].map(str)})
    if "seed" in evals.columns:
        if evals["seed"].isna().any():
            i = int(np.flatnonzero(evals["seed"].isna().to_numpy())[0])
            raise DataError(f"evals column 'seed' is missing for run {_py(evals['run'].iloc[i])!r}")
        ev["seed"] = evals["seed"].to_numpy()
    else:
        ev["seed"] = 0
    for col in ("step", "loss"):
        why = not_real(evals[col])
        if why is not None:
            raise DataError(f"evals column {col!r} must hold real numbers, got {why}")
        values = pd.to_numeric(evals[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | ((values < 0) if col == "step" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "negative" if np.isfinite(values[i]) else "non-finite or non-numeric"
            where = f"run {_py(ev['run'].iloc[i])!r}, seed {_py(ev['seed'].iloc[i])!r}"
            if col == "loss":
                where += f", step {_py(evals['step'].iloc[i])!r}, skill {ev['skill'].iloc[i]!r}"
            value = _py(evals[col].iloc[i])
            raise DataError(f"evals column {col!r} has the {what} value {value!r} ({where})")
        ev[col] = values
    unknown = pd.unique(ev["run"][~ev["run"].isin(mix.index)])
    if len(unknown):
        names = [_py(u) for u in unknown[:10]]
        raise DataError(f"evals has runs that are not in mixtures: {names}")
    unseen = [r for r in mix.index if r not in set(ev["run"])]
    if unseen:
        raise DataError(f"run(s) {[_py(u) for u in unseen[:10]]} of mixtures have no evals")
    key = ["run", "seed", "step", "skill"]
    dup = ev.duplicated(key)
    if dup.any():
        r = ev[dup].iloc[0]
        raise DataError(f"evals has more than one loss for {_obs_name(r['run'], r['seed'])}, "
                        f"step {r['step']:g}, skill {r['skill']!r}")
    appearing = list(pd.unique(ev["skill"]))
    eval_skills = [s for s in mix.columns if s in appearing] + [
        s for s in appearing if s not in set(mix.columns)]
    wide = ev.set_index(key)["loss"].unstack("skill")[eval_skills].sort_index()

    # observations in mixture order, then seed order
    pos = {r: i for i, r in enumerate(mix.index)}
    obs = ev[["run", "seed"]].drop_duplicates()
    obs = obs.assign(_pos=obs["run"].map(pos)).sort_values(["_pos", "seed"], kind="stable")
    runs = obs["run"].to_numpy(dtype=object)
    seeds = obs["seed"].to_numpy(dtype=object)
    obs_index = pd.MultiIndex.from_arrays([runs, seeds], names=["run", "seed"])

    steps_all = wide.index.get_level_values("step").to_numpy()
    start = wide[steps_all == 0].droplevel("step").reindex(obs_index)
    if step is None:
        last = ev.groupby(["run", "seed"], sort=False)["step"].max().reindex(obs_index)
        h = last.to_numpy(dtype=np.float64)
    else:
        step = float(step)
        if not np.isfinite(step) or step <= 0:
            raise DataError(f"step must be a positive number, got {step!r}")
        h = np.full(len(runs), step)
    end = wide.reindex(pd.MultiIndex.from_arrays([runs, seeds, h], names=["run", "seed", "step"]))
    checks = (
        (start.isna().all(axis=1).to_numpy(), None, "has no evaluation at step 0"),
        (start.isna().any(axis=1).to_numpy(), start, "at step 0"),
        (h <= 0, None, "has evaluations at step 0 only; nothing was trained"),
        (end.isna().all(axis=1).to_numpy(), None, "has no evaluation at step {h:g}"),
        (end.isna().any(axis=1).to_numpy(), end, "at its final step {h:g}"),
    )
    for bad, table, text in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            text = text.format(h=h[i])
            if table is None:
                raise DataError(f"{_obs_name(runs[i], seeds[i])} {text}")
            sk = table.columns[table.iloc[i].isna().to_numpy()][0]
            raise DataError(f"{_obs_name(runs[i], seeds[i])} has no loss for skill {sk!r} "
                            f"{text}")
    W = mix.loc[runs].to_numpy(dtype=np.float64)
    return Ablations(mixtures=mix, train_skills=list(mix.columns), eval_skills=eval_skills,
                     runs=runs, seeds=seeds, W=W, steps=h,
                     initial=start.to_numpy(dtype=np.float64),
                     final=end.to_numpy(dtype=np.float64), curves=wide)


def loss_drops(ab: Ablations, *, per_step: bool = True, relative: bool = False) -> np.ndarray:
    """``B = L(0) - L(h)`` per observation (rows) and evaluated skill, optionally ``/ h`` and
    ``/ L(0)``."""
    B = ab.initial - ab.final
    if relative:
        bad = ab.initial <= 0
        if bad.any():
            r, j = np.argwhere(bad)[0]
            raise DataError(f"run {ab.runs[r]!r} (seed {ab.seeds[r]!r}) has the non-positive "
                            f"step-0 loss {float(ab.initial[r, j])!r} on skill "
                            f"{ab.eval_skills[j]!r}; "
                            "relative drops divide by it")
        B = B / ab.initial
    if per_step:
        B = B / ab.steps[:, None]
    return B
