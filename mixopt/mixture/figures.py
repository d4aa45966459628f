"""Figures for mixture surrogates (matplotlib, an optional dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mixopt.errors import MixoptError

__all__ = ["plot_fit"]


def plot_fit(model: Any, ratios: Any, metrics: Any, *, plan: Any = None, prior: Any = None,
             path: str | Path | None = None) -> Any:
    """Predicted vs actual target on (held-out) runs, and the planned weights beside the prior.

    The second panel is drawn when ``plan`` (a :class:`~mixopt.mixture.MixturePlan`) is given;
    ``prior`` defaults to the plan's prior, else the fitted swarm's mean mixture.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise MixoptError("figures need matplotlib: pip install 'mixopt[plot]'") from None
    from mixopt.mixture.model import MixtureModel

    if not isinstance(model, MixtureModel):
        raise MixoptError(f"plot_fit needs a MixtureModel, got {type(model).__name__}")
    pred = model.predict(ratios)
    from mixopt.mixture._inputs import align, check_metrics, check_ratios

    R, M = align(check_ratios(ratios, domains=model.domains), check_metrics(metrics))
    actual = model.target_values(M)
    sc = model.score(R, M)
    ncols = 2 if plan is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4.5), squeeze=False)
    ax = axes[0, 0]
    ax.scatter(actual, pred, s=10, alpha=0.7)
    lo, hi = float(min(actual.min(), pred.min())), float(max(actual.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_xlabel("actual target")
    ax.set_ylabel("predicted target")
    ax.set_title(f"{model.model}: Spearman {sc['spearman']:.3f}, {len(actual)} runs")
    if plan is not None:
        ax = axes[0, 1]
        w = plan.weights
        if prior is None:
            prior = plan.prior if plan.prior is not None else model.ratios.mean(axis=0)
        import pandas as pd

        prior = pd.Series(prior, dtype=float).reindex(w.index).fillna(0.0)
        prior = prior / prior.sum()
        order = np.argsort(-np.maximum(w.to_numpy(), prior.to_numpy()))
        y = np.arange(len(w))
        ax.barh(y - 0.2, w.to_numpy()[order], height=0.4, label="optimal")
        ax.barh(y + 0.2, prior.to_numpy()[order], height=0.4, label="prior")
        ax.set_yticks(y, [w.index[i] for i in order], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("weight")
        ax.set_title(f"predicted target {plan.loss:.4g}")
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
