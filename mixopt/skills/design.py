"""Ablation planner: the training runs each skill-graph estimator needs.

``design(skills, method=..., steps=...)`` returns a :class:`Design`, one row per training run
(``run, seed, steps`` and one proportion column per skill). Its ``mixtures`` property is the
``mixtures`` table :func:`mixopt.skills.estimate` takes; launch every row (the torch adapter or
:func:`mixopt.skills.simulate_ablations` can), record ``run, seed, step, skill, loss`` at step 0
and along training, and pass both tables to the estimator.

Designs
-------
``"linear"``  one run per skill trained on it alone (Skill-It, Sec. 2.3 linear approximation).
``"pairwise"``  the single-skill runs plus the uniform mixture of every pair ``{i, j}``
(Skill-It's brute-force graph, Sec. 2.2); ``pairs=`` restricts to chosen pairs.
``"demix"``  ``structure="aioli"`` (default): ``k`` runs, run ``j`` putting ``one_hot_factor``
(0.625, Aioli's default, Chen et al. 2024, Alg. 2) on skill ``j`` and the rest evenly elsewhere,
a full-rank system; ``structure="dirichlet"``: ``n_runs`` mixtures drawn from a symmetric
Dirichlet(``alpha``) with ``seed``; ``structure="both"``: the two together.
``"regression"``  like ``"demix"`` but ``structure="dirichlet"`` by default with
``n_runs = max(3 k, k + 5)`` so the per-skill regressions keep residual degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import GraphError

__all__ = ["Design", "design", "DESIGNS"]

DESIGNS = ("linear", "pairwise", "demix", "regression")
_OPTIONS = {
    "linear": set(),
    "pairwise": {"pairs"},
    "demix": {"structure", "one_hot_factor", "n_runs", "alpha"},
    "regression": {"structure", "one_hot_factor", "n_runs", "alpha"},
}


@dataclass
class Design:
    """A list of training runs. ``runs``: DataFrame ``run, seed, steps, <skill>...``."""

    method: str
    skills: list[str]
    runs: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def mixtures(self) -> pd.DataFrame:
        """One row per run id (index ``run``), columns skills: the estimators' ``mixtures``."""
        return self.runs.drop_duplicates("run").set_index("run")[self.skills].copy()

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each training run as ``{"run", "seed", "steps", "mixture": {skill: p}}``."""
        W = self.runs[self.skills].to_numpy()
        for row, w in zip(self.runs.itertuples(index=False), W):
            yield {"run": row.run, "seed": row.seed, "steps": int(row.steps),
                   "mixture": dict(zip(self.skills, map(float, w)))}

    def to_frame(self) -> pd.DataFrame:
        return self.runs.copy()

    def summary(self) -> str:
        n_mix = self.runs["run"].nunique()
        return (f"{self.method} design over {len(self.skills)} skills: {n_mix} mixtures x "
                f"{self.runs['seed'].nunique()} seeds = {len(self)} training runs, "
                f"{int(self.runs['steps'].sum())} steps in all")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "skills": list(self.skills),
                "options": dict(self.options), "runs": self.runs.to_dict(orient="list")}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Design:
        runs = pd.DataFrame(state["runs"])
        return cls(state["method"], list(state["skills"]), runs, dict(state.get("options", {})))


#: Most skills (and most seeds per mixture) a design may plan: one or more training runs per
#: skill each, so larger designs are mistakes (10**12 skills hung; 10**4 build 800 MB).
MAX_SKILLS = 1_000


def _skills(skills: int | Sequence[Any]) -> list[str]:
    if isinstance(skills, (int, np.integer)) and not isinstance(skills, bool):
        if skills < 1 or skills > MAX_SKILLS:
            raise GraphError(f"skills must be a positive count (at most {MAX_SKILLS}) or a list "
                             f"of labels, got {skills}")
        return [f"skill{i}" for i in range(int(skills))]
    if isinstance(skills, (str, bytes)) or not isinstance(skills, Sequence):
        raise GraphError(f"skills must be a count or a list of labels, got {skills!r}")
    labels = [str(s) for s in skills]
    if not labels:
        raise GraphError("skills is empty")
    if len(set(labels)) != len(labels):
        raise GraphError(f"skills has duplicate labels: {labels}")
    return labels


def _mixed(k: int, structure: str, one_hot_factor: float, n_runs: int | None, alpha: float,
           rng: np.random.Generator | None, default_n: int, min_n: int
           ) -> tuple[np.ndarray, list[str]]:
    blocks, names = [], []
    if structure not in ("aioli", "dirichlet", "both"):
        raise GraphError(f"structure must be 'aioli', 'dirichlet' or 'both', got {structure!r}")
    if structure in ("aioli", "both"):
        if k < 2:
            raise GraphError("the 'aioli' structure needs at least 2 skills")
        f = float(one_hot_factor)
        if not (1.0 / k < f <= 1.0):
            raise GraphError(f"one_hot_factor must lie in (1/k, 1] = ({1.0 / k:.4g}, 1] for a "
                             f"full-rank design, got {one_hot_factor!r}")
        c = (1.0 - f) / (k - 1)
        blocks.append(np.full((k, k), c) + (f - c) * np.eye(k))
        names += [f"aioli:{j}" for j in range(k)]
    if structure in ("dirichlet", "both"):
        n = default_n if n_runs is None else n_runs
        if not isinstance(n, (int, np.integer)) or n < min_n:
            raise GraphError(f"n_runs must be an integer >= {min_n} for {k} skills, got {n!r}")
        if not (np.isfinite(alpha) and alpha > 0):
            raise GraphError(f"alpha must be a positive Dirichlet concentration, got {alpha!r}")
        assert rng is not None  # design() requires a seed for Dirichlet blocks
        blocks.append(rng.dirichlet(np.full(k, float(alpha)), size=int(n)))
        names += [f"mix:{i}" for i in range(int(n))]
    elif n_runs is not None:
        raise GraphError("n_runs applies to structure='dirichlet' or 'both' only")
    return np.vstack(blocks), names


def generator(seed: Any, what: str, error: type[Exception] = GraphError) -> np.random.Generator:
    """``seed`` (a non-negative int or a ``numpy.random.Generator``) as a Generator.

    ``None`` is refused: randomness in mixopt always comes from a seed the caller chose, so a
    call that draws random numbers needs ``seed=``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise error(f"{what} draws random numbers: pass seed= (a non-negative int or a "
                    "numpy.random.Generator); mixopt takes randomness only from a seed")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise error(f"seed must be a non-negative int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def design(skills: int | Sequence[Any], method: str = "linear", steps: int = 1000,
           seeds: int | Sequence[Any] = 1, *, seed: int | np.random.Generator | None = None,
           **options: Any) -> Design:
    """Plan the ablation runs that ``estimate(..., method=method)`` needs.

    Parameters
    ----------
    skills
        number of skills, or their labels.
    method
        ``"linear"``, ``"pairwise"``, ``"demix"`` or ``"regression"``.
    steps
        training steps of every run (positive integer).
    seeds
        number of training seeds per mixture (ids ``0..seeds-1``), or the seed ids.
    seed
        seed or Generator for random (Dirichlet) designs (``"demix"``, ``"regression"``):
        required by them (no hidden randomness); the deterministic designs ignore it.
    options
        per method, see the module docstring (``pairs``; ``structure``, ``one_hot_factor``,
        ``n_runs``, ``alpha``).
    """
    if method not in DESIGNS:
        raise GraphError(f"unknown design method {method!r}; choose from {DESIGNS}")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise GraphError(f"design method {method!r} does not take option(s) {sorted(unknown)}; "
                         f"it takes {sorted(_OPTIONS[method])}")
    labels = _skills(skills)
    k = len(labels)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise GraphError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1 or seeds > MAX_SKILLS:
            raise GraphError(f"seeds must be a positive count (at most {MAX_SKILLS}) or a list "
                             f"of seed ids, got {seeds}")
        seed_ids: list[Any] = list(range(int(seeds)))
    elif isinstance(seeds, (str, bytes, Mapping)) or not isinstance(seeds, (Sequence, np.ndarray)):
        raise GraphError(f"seeds must be a positive count or a list of seed ids, got {seeds!r}")
    else:
        seed_ids = list(seeds)
        try:
            distinct = len(set(seed_ids)) == len(seed_ids)
        except TypeError:
            raise GraphError(f"seed ids must be integers or strings, got {seeds!r}") from None
        if not seed_ids or not distinct:
            raise GraphError(f"seeds must be distinct and non-empty, got {seeds!r}")
    eye = np.eye(k)
    if method in ("linear", "pairwise"):
        W, names = eye, [f"one:{s}" for s in labels]
        if method == "pairwise":
            if k < 2:
                raise GraphError("the pairwise design needs at least 2 skills")
            pairs = options.get("pairs")
            if pairs is None:
                idx = list(combinations(range(k), 2))
            else:
                idx = []
                for p in pairs:
                    a, b = (str(x) for x in p)
                    for s in (a, b):
                        if s not in labels:
                            raise GraphError(f"pair {tuple(p)!r} names the unknown skill {s!r}")
                    if a == b:
                        raise GraphError(f"pair {tuple(p)!r} must name two different skills")
                    idx.append(tuple(sorted((labels.index(a), labels.index(b)))))
                idx = list(dict.fromkeys(idx))
            P = np.zeros((len(idx), k))
            for r, (a, b) in enumerate(idx):
                P[r, [a, b]] = 0.5
            W = np.vstack([W, P])
            names = names + [f"pair:{labels[a]}+{labels[b]}" for a, b in idx]
    else:
        structure = options.get("structure", "aioli" if method == "demix" else "dirichlet")
        rng = (generator(seed, f"design(method={method!r}, structure={structure!r})")
               if structure in ("dirichlet", "both") or seed is not None else None)
        min_n = k if method == "demix" else k + 2
        default_n = 2 * k if method == "demix" else max(3 * k, k + 5)
        W, names = _mixed(k, structure, options.get("one_hot_factor", 0.625),
                          options.get("n_runs"), options.get("alpha", 1.0), rng, default_n,
                          min_n)
    n = len(names)
    runs = pd.DataFrame({
        "run": np.repeat(np.array(names, dtype=object), len(seed_ids)),
        "seed": seed_ids * n,
        "steps": np.full(n * len(seed_ids), int(steps)),
    })
    runs[labels] = np.repeat(W, len(seed_ids), axis=0)
    opts = {k_: (list(map(list, v)) if k_ == "pairs" else v) for k_, v in options.items()}
    return Design(method=method, skills=labels, runs=runs, options=opts)
