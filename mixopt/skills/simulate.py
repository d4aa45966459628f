"""Simulated ablation runs from a known skill graph, for tests, tutorials and power analysis.

Each run trains with a fixed mixture ``p`` (a row of the design) and its evaluation losses
follow Aioli's linear dynamic mixing law (Chen et al. 2024, arXiv 2411.05735, eq. 2) with a static
interaction matrix. In mixopt's orientation (``A`` rows trained, columns evaluated):

``dynamics="linear"``        ``L^{t+1} = L^t - A^T p + eps_t``
``dynamics="proportional"``  ``L^{t+1} = L^t - L^t * (A^T p) + eps_t`` (Skill-It as an instance of
                             the law, ``A^t = diag(L^t) A_SG^T``, Aioli Sec. 3.2)

``eps_t ~ N(0, process_noise^2)`` per step and skill; every recorded loss gets independent
observation noise ``N(0, noise^2)``. Losses are recorded at step 0, every ``eval_every`` steps and
at the run's last step. The linear law is local: with large ``A`` or long runs the loss can pass
below zero; choose ``A * steps`` below the initial loss (or use ``"proportional"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import DataError, GraphError
from mixopt.skills.design import Design, generator
from mixopt.skills.graph import SkillGraph
from mixopt.skills.tables import _py, validate_mixtures

__all__ = ["SimulatedAblations", "simulate_ablations", "DYNAMICS"]

DYNAMICS = ("linear", "proportional")


@dataclass
class SimulatedAblations:
    """The two tables an estimator takes, plus the ground truth that produced them."""

    mixtures: pd.DataFrame
    evals: pd.DataFrame
    graph: SkillGraph
    runs: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"simulated {len(self.runs)} runs ({self.mixtures.shape[0]} mixtures) under "
                f"{self.options.get('dynamics')} dynamics, noise {self.options.get('noise')}: "
                f"{len(self.evals)} evaluations")

    def to_dict(self) -> dict[str, Any]:
        return {"mixtures": {"index": list(self.mixtures.index),
                             "columns": list(self.mixtures.columns),
                             "data": self.mixtures.to_numpy().tolist()},
                "evals": self.evals.to_dict(orient="list"), "graph": self.graph.to_dict(),
                "runs": self.runs.to_dict(orient="list"), "options": dict(self.options)}


def _runs_table(design: Design | pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if isinstance(design, Design):
        return design.runs.copy(), list(design.skills)
    if not isinstance(design, pd.DataFrame):
        raise DataError("design must be a mixopt.skills.Design or a DataFrame with columns "
                        f"run, steps, [seed], <skills>; got {type(design).__name__}")
    for col in ("run", "steps"):
        if col not in design.columns:
            raise DataError(f"design is missing column {col!r}; it has {list(design.columns)}")
    runs = design.copy()
    if "seed" not in runs.columns:
        runs["seed"] = 0
    skills = [c for c in runs.columns if c not in ("run", "seed", "steps")]
    if not skills:
        raise DataError("design has no skill (proportion) columns")
    return runs, skills


def _initial(initial_loss: Any, skills: list[str]) -> np.ndarray:
    if isinstance(initial_loss, Mapping):
        missing = [s for s in skills if s not in {str(k) for k in initial_loss}]
        if missing:
            raise DataError(f"initial_loss has no value for evaluated skill(s) {missing}")
        lookup = {str(k): v for k, v in initial_loss.items()}
        values = np.array([lookup[s] for s in skills], dtype=np.float64)
    else:
        try:
            arr = np.asarray(initial_loss, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"initial_loss must be numeric, got {initial_loss!r}") from None
        if arr.ndim > 1 or (arr.ndim == 1 and arr.size != len(skills)):
            raise DataError(f"initial_loss has {arr.size} values for {len(skills)} evaluated "
                            "skills")
        values = np.broadcast_to(arr, (len(skills),))
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise DataError(f"initial_loss must be finite and positive, got {values.tolist()}")
    return values.astype(np.float64)


def simulate_ablations(graph: SkillGraph, design: Design | pd.DataFrame, *,
                       initial_loss: float | Sequence[float] | Mapping[str, float] = 1.0,
                       noise: float = 0.0, process_noise: float = 0.0,
                       dynamics: str = "linear", eval_every: int | None = None,
                       seed: int | np.random.Generator | None = None) -> SimulatedAblations:
    """Simulate every training run of ``design`` under the ground-truth ``graph``.

    Parameters
    ----------
    graph
        ground truth; ``graph.matrix[i, j]`` is the per-step drop of skill ``j``'s loss when
        training only on skill ``i``. Design skills must be trained skills of the graph (trained
        skills missing from the design get proportion 0).
    design
        a :class:`Design` or a DataFrame ``run, steps, [seed], <skill>...``.
    initial_loss
        loss at step 0 of every evaluated skill (scalar, sequence or mapping).
    noise, process_noise
        standard deviations of observation and per-step noise.
    dynamics
        ``"linear"`` or ``"proportional"`` (see module docstring).
    eval_every
        evaluation interval in steps (default ``max(1, steps // 10)`` per run).
    seed
        seed or Generator for the noise; required when ``noise`` or ``process_noise`` is
        positive (randomness only from a seed), ignored otherwise.

    Returns
    -------
    SimulatedAblations with ``mixtures`` and ``evals`` (``run, seed, step, skill, loss``).
    """
    if not isinstance(graph, SkillGraph):
        raise GraphError(f"graph must be a SkillGraph, got {type(graph).__name__}")
    if dynamics not in DYNAMICS:
        raise DataError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    for name, value in (("noise", noise), ("process_noise", process_noise)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)) or not (
                np.isfinite(value) and value >= 0):
            raise DataError(f"{name} must be a finite non-negative standard deviation, "
                            f"got {value!r}")
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(
            eval_every, (int, np.integer)) or eval_every < 1):
        raise DataError(f"eval_every must be a positive integer, got {eval_every!r}")
    runs, skills = _runs_table(design)
    unknown = [s for s in map(str, skills) if s not in graph.train_skills]
    if unknown:
        raise DataError(f"design skill(s) {unknown} are not trained skills of the graph "
                        f"({graph.train_skills})")
    mix_rows = runs.drop_duplicates("run").set_index("run")[skills]
    validate_mixtures(mix_rows)
    steps = pd.to_numeric(runs["steps"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(steps) | (steps < 1) | (steps != np.round(steps))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"design column 'steps' must hold positive integers; run "
                        f"{_py(runs['run'].iloc[i])!r} has {_py(runs['steps'].iloc[i])!r}")
    steps = steps.astype(np.int64)
    rng = (generator(seed, "simulate_ablations with noise or process_noise", DataError)
           if noise > 0 or process_noise > 0 or seed is not None else None)

    R, m = len(runs), len(graph.eval_skills)
    W = np.zeros((R, len(graph.train_skills)))
    cols = [graph.train_skills.index(str(s)) for s in skills]
    W[:, cols] = runs[skills].to_numpy(dtype=np.float64)
    drift = W @ graph.matrix  # (R, m): A^T p for every run
    L0 = _initial(initial_loss, graph.eval_skills)

    # recorded (run, step) pairs
    every = np.maximum(1, steps // 10) if eval_every is None else np.full(R, eval_every)
    rec_r, rec_t = [], []
    for r in range(R):
        t = np.unique(np.append(np.arange(0, steps[r] + 1, every[r]), steps[r]))
        rec_r.append(np.full(len(t), r))
        rec_t.append(t)
    rr, tt = np.concatenate(rec_r), np.concatenate(rec_t)

    if process_noise == 0:
        if dynamics == "linear":
            values = L0[None, :] - tt[:, None] * drift[rr]
        else:
            values = L0[None, :] * (1.0 - drift[rr]) ** tt[:, None]
    else:
        T = int(steps.max())
        traj = np.empty((T + 1, R, m))
        traj[0] = L0
        L = np.broadcast_to(L0, (R, m)).copy()
        for t in range(T):
            step = drift if dynamics == "linear" else L * drift
            L = L - step + rng.normal(0.0, process_noise, size=(R, m))
            traj[t + 1] = L
        values = traj[tt, rr]
    if noise > 0:
        values = values + rng.normal(0.0, noise, size=values.shape)

    evals = pd.DataFrame({
        "run": np.repeat(runs["run"].to_numpy(dtype=object)[rr], m),
        "seed": np.repeat(runs["seed"].to_numpy(dtype=object)[rr], m),
        "step": np.repeat(tt, m),
        "skill": np.tile(np.array(graph.eval_skills, dtype=object), len(rr)),
        "loss": values.reshape(-1),
    })
    mixtures = mix_rows.copy()
    mixtures.columns = [str(c) for c in mixtures.columns]
    options = {"initial_loss": L0.tolist(), "noise": float(noise),
               "process_noise": float(process_noise), "dynamics": dynamics,
               "eval_every": eval_every}
    return SimulatedAblations(mixtures=mixtures, evals=evals, graph=graph, runs=runs,
                              options=options)
