"""Figures for planning results (matplotlib is imported inside each function)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_frontier", "plot_mixture_path"]


def plot_frontier(frontier: Any, *, baseline: bool = True, ax: Any = None) -> Any:
    """Loss vs compute (plan and, when present, the pretrain-only baseline) and the split
    fraction D / (D + sum D'_k) vs compute, side by side. Returns the Figure."""
    import matplotlib.pyplot as plt

    frame = frontier.frame
    if ax is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    else:
        a1, a2 = ax
        fig = a1.figure
    b = frame["budget"].to_numpy()
    a1.plot(b, frame["objective"], label=f"split plan ({frontier.objective})")
    if baseline and "pretrain_only" in frame and np.isfinite(frame["pretrain_only"]).any():
        a1.plot(b, frame["pretrain_only"], "--", label="pretrain only")
    for d in frontier.domains:
        a1.plot(b, frame[f"loss[{d}]"], lw=0.8, alpha=0.6, label=f"loss {d}")
    a1.set_xscale("log")
    a1.set_xlabel("budget (FLOPs)")
    a1.set_ylabel("predicted loss")
    a1.legend(fontsize=8)
    a2.plot(b, frame["split_fraction"])
    a2.set_xscale("log")
    a2.set_ylim(0, 1)
    a2.set_xlabel("budget (FLOPs)")
    a2.set_ylabel("split fraction D / (D + sum D')")
    return fig


def plot_mixture_path(path: Any, *, ax: Any = None) -> Any:
    """Optimal training weights (stacked) and the optimal N against the budget, from
    :func:`mixopt.plan.mixture_path`. Returns the Figure."""
    import matplotlib.pyplot as plt

    from mixopt.errors import MixoptError

    W = path.weights
    if len(W) < 2:
        raise MixoptError("a mixture path needs at least 2 budgets to draw")
    if ax is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    else:
        a1, a2 = ax
        fig = a1.figure
    b = W.index.to_numpy(dtype=float)
    a1.stackplot(b, W.to_numpy().T, labels=list(W.columns))
    a1.set_xscale("log")
    a1.set_ylim(0, 1)
    a1.set_xlabel("budget (FLOPs)")
    a1.set_ylabel("optimal weight")
    a1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    a2.loglog(b, [p.N for p in path.plans], "o-")
    a2.set_xlabel("budget (FLOPs)")
    a2.set_ylabel("optimal N")
    return fig
