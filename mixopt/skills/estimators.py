"""``estimate(mixtures, evals, method=...)``: one entry point for the skill-graph estimators.

=============  ============================================================  ==================
method         runs it needs (see :func:`mixopt.skills.design`)            source
=============  ============================================================  ==================
``linear``     one run per trained skill, on that skill alone                Skill-It Sec. 2.3
``pairwise``   runs on ``{j}`` alone and on the uniform mixture ``{i, j}``  Skill-It Sec. 2.2
``demix``      at least ``k`` linearly independent mixtures                  Aioli Alg. 2
``regression`` more observations than skills, full-rank mixtures             OLS (statsmodels)
=============  ============================================================  ==================

Tables are validated by :func:`mixopt.skills.tables.load_ablations` (``DataError`` naming the
run, seed, step, skill or column at fault); a design that cannot identify the graph raises
``GraphError`` saying what is missing. Replicate seeds (a ``seed`` column, or runs sharing a
mixture) are averaged by ``linear`` and ``pairwise`` with their spread in ``edges["std"]``;
``demix`` and ``regression`` use every observation as a row of the linear system.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mixopt.errors import GraphError
from mixopt.skills.demix import estimate_demix, estimate_regression
from mixopt.skills.results import SkillEstimate
from mixopt.skills.skillit import estimate_linear, estimate_pairwise
from mixopt.skills.tables import load_ablations

__all__ = ["estimate", "METHODS"]

METHODS = ("linear", "pairwise", "demix", "regression")
_OPTIONS = {
    "linear": ("relative",),
    "pairwise": ("criterion", "margin", "target", "weights"),
    "demix": ("per_step", "relative"),
    "regression": ("per_step", "relative", "alpha"),
}
_FUNCTIONS = {"linear": estimate_linear, "pairwise": estimate_pairwise,
              "demix": estimate_demix, "regression": estimate_regression}


def estimate(mixtures: pd.DataFrame, evals: pd.DataFrame, method: str = "linear", *,
             step: float | None = None, **options: Any) -> SkillEstimate:
    """Estimate a skill graph from ablation runs.

    Parameters
    ----------
    mixtures
        DataFrame, index run, columns trained skill -> training proportion (on the simplex).
    evals
        DataFrame with columns ``run, step, skill, loss`` (optionally ``seed``).
    method
        ``"linear"``, ``"pairwise"``, ``"demix"`` or ``"regression"``.
    step
        compare losses at step 0 with this step (default: each run's last step).
    options
        method options: ``relative`` (linear; demix and regression: divide drops by
        ``L(0)``), ``per_step`` (demix, regression: divide drops by the steps), ``criterion``,
        ``margin``, ``target``, ``weights`` (pairwise), ``alpha`` (regression intervals).

    Returns
    -------
    SkillEstimate (RegressionEstimate for ``"regression"``) with ``.graph`` and ``.edges``.
    """
    if method not in METHODS:
        raise GraphError(f"unknown estimator {method!r}; choose from {METHODS}")
    unknown = sorted(set(options) - set(_OPTIONS[method]))
    if unknown:
        raise GraphError(f"estimator {method!r} does not take option(s) {unknown}; it takes "
                         f"{list(_OPTIONS[method])} (and step)")
    ab = load_ablations(mixtures, evals, step=step)
    result = _FUNCTIONS[method](ab, **options)
    result.options["step"] = step
    return result
