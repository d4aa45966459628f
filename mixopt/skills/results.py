"""Result objects of the skill-graph estimators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import GraphError
from mixopt.skills.graph import SkillGraph

__all__ = ["SkillEstimate", "RegressionEstimate", "CORRECTIONS"]

#: multiple-testing corrections accepted by :meth:`RegressionEstimate.significant`
#: (the methods of ``statsmodels.stats.multitest.multipletests``)
CORRECTIONS = ("bonferroni", "sidak", "holm-sidak", "holm", "simes-hochberg", "hommel",
               "fdr_bh", "fdr_by", "fdr_tsbh", "fdr_tsbky")


def _json_value(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def frame_to_dict(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Column-wise, JSON-safe (NaN -> None) dump of a DataFrame."""
    return {str(c): [_json_value(v) for v in frame[c].tolist()] for c in frame.columns}


def frame_from_dict(state: Mapping[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(dict(state))
    for c in frame.columns:
        if frame[c].dtype == object and all(v is None or isinstance(v, (int, float))
                                            and not isinstance(v, bool) for v in frame[c]):
            frame[c] = frame[c].astype(np.float64)
    return frame


@dataclass
class SkillEstimate:
    """A skill graph estimated from ablation runs.

    Attributes
    ----------
    graph
        the estimated :class:`SkillGraph`.
    method
        the estimator (``"linear"``, ``"pairwise"``, ``"demix"``, ``"regression"``).
    edges
        per-entry statistics, one row per ``(source, target)`` (source trained, target
        evaluated): at least ``estimate``, ``std`` (spread over replicate seeds; NaN with one)
        and ``n`` (replicates), plus method-specific columns.
    n_runs, n_observations
        distinct runs and ``(run, seed)`` observations used.
    options
        the estimator's options.
    success, status, message
        scipy-style outcome; ``message`` notes ignored runs.
    """

    graph: SkillGraph
    method: str
    edges: pd.DataFrame
    n_runs: int
    n_observations: int
    options: dict[str, Any] = field(default_factory=dict)
    success: bool = True
    status: int = 0
    message: str = "ok"

    def matrix(self, column: str) -> pd.DataFrame:
        """A column of ``edges`` laid out as a trained x evaluated DataFrame."""
        if column not in self.edges.columns:
            raise GraphError(f"no edge statistic {column!r}; have {list(self.edges.columns)}")
        table = self.edges.pivot(index="source", columns="target", values=column)
        rows = [s for s in self.graph.train_skills if s in table.index]
        cols = [s for s in self.graph.eval_skills if s in table.columns]
        return table.loc[rows, cols].astype(np.float64)

    def summary(self) -> str:
        lines = [f"Skill graph estimate ({self.method}): {self.n_runs} runs, "
                 f"{self.n_observations} observations; {self.message}",
                 self.graph.to_frame().round(4).to_string()]
        off = self.edges[self.edges["source"] != self.edges["target"]]
        if len(off):
            lines.append("off-diagonal edge statistics:")
            lines.append(off.round(4).to_string(index=False))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "method": self.method,
                "graph": self.graph.to_dict(), "edges": frame_to_dict(self.edges),
                "n_runs": int(self.n_runs), "n_observations": int(self.n_observations),
                "options": {k: _json_value(v) for k, v in self.options.items()},
                "success": bool(self.success), "status": int(self.status),
                "message": self.message}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> SkillEstimate:
        kind = {"SkillEstimate": SkillEstimate, "RegressionEstimate": RegressionEstimate}.get(
            state.get("kind", "SkillEstimate"), SkillEstimate)
        return kind(graph=SkillGraph.from_dict(state["graph"]), method=state["method"],
                    edges=frame_from_dict(state["edges"]), n_runs=state["n_runs"],
                    n_observations=state["n_observations"], options=dict(state["options"]),
                    success=state["success"], status=state["status"], message=state["message"])


@dataclass
class RegressionEstimate(SkillEstimate):
    """Regression estimate: ``edges`` also has ``std_err``, ``t``, ``p_value``, ``ci_lower``,
    ``ci_upper`` (OLS, per evaluated skill)."""

    def p_values(self) -> pd.DataFrame:
        return self.matrix("p_value")

    def significant(self, alpha: float = 0.05, correction: str | None = None) -> SkillGraph:
        """Graph keeping only the coefficients whose (adjusted) p-value is below ``alpha``.

        ``correction``: None (per-test level), or a multiple-testing method of
        ``statsmodels.stats.multitest.multipletests`` (e.g. ``"bonferroni"``, ``"holm"``,
        ``"fdr_bh"``) applied over every coefficient of the graph.
        """
        if not (0 < alpha < 1):
            raise GraphError(f"alpha must lie in (0, 1), got {alpha!r}")
        p = self.matrix("p_value").to_numpy()
        if correction is not None:
            if correction not in CORRECTIONS:
                raise GraphError(f"unknown correction {correction!r}; choose from {CORRECTIONS}")
            from statsmodels.stats.multitest import multipletests

            reject = multipletests(p.ravel(), alpha=alpha, method=correction)[0].reshape(p.shape)
        else:
            reject = p < alpha
        A = np.where(reject, self.graph.matrix, 0.0)
        return SkillGraph(A, self.graph.train_skills, self.graph.eval_skills)
