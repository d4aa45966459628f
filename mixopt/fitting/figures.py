"""Figures of fits (matplotlib is imported inside the functions only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mixopt.errors import MixoptError

__all__ = ["plot_fit", "plot_specialisation", "plot_profile"]


def plot_fit(fit: Any, *, ax: Any = None, n_curves: int | None = None) -> Any:
    """Loss against training compute ``C = 6 N D`` for the fitted runs, with the fitted law's
    iso-N curves (one per model size in the data). Works for laws of ``(N, D)``; returns the
    matplotlib Figure."""
    import matplotlib.pyplot as plt

    data = fit.data
    if not {"N", "D"} <= set(data.columns):
        raise MixoptError("plot_fit needs a law of N and D")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    else:
        fig = ax.figure
    sizes = np.unique(data["N"].to_numpy())
    if n_curves is not None and sizes.size > n_curves:
        sizes = sizes[np.linspace(0, sizes.size - 1, n_curves).round().astype(int)]
    cmap = plt.get_cmap("viridis")
    lognorm = np.log(sizes)
    span = max(float(lognorm.max() - lognorm.min()), 1e-12)
    extra = {c: data[c].to_numpy() for c in data.columns if c not in ("N", "D", "loss")}
    d_lo, d_hi = data["D"].min() / 2, data["D"].max() * 2
    for n in sizes:
        color = cmap((np.log(n) - lognorm.min()) / span)
        rows = np.isclose(data["N"].to_numpy(), n)
        ax.scatter(6 * n * data["D"][rows], data["loss"][rows], color=color, s=18, zorder=3)
        D = np.geomspace(d_lo, d_hi, 100)
        grid = {"N": np.full_like(D, n), "D": D}
        grid.update({c: np.zeros_like(D) for c in extra if c in fit.law.variables})
        ax.plot(6 * n * D, fit.predict(grid), color=color, lw=1.2, label=f"N = {n:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6 N D (FLOPs)")
    ax.set_ylabel("loss")
    ax.set_title(f"{fit.law.name} fit: runs (dots) and iso-N curves")
    ax.legend(fontsize=7, ncols=2)
    return fig


def plot_specialisation(fit: Any, *, D: float | None = None, ax: Any = None,
                        title: str | None = None) -> Any:
    """Loss against domain tokens D' at one pretraining length ``D`` (default: the largest D in
    the data) for a fitted L(N, D, D') law: runs (dots) and the law's iso-N curves (lines), one
    per model size. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    data = fit.data
    if not {"N", "D", "D_spec"} <= set(data.columns):
        have = ", ".join(c for c in data.columns if c != "loss")
        raise MixoptError(f"plot_specialisation needs a law of N, D and D_spec, got "
                          f"{fit.law.name!r} of {have}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    else:
        fig = ax.figure
    D = float(data["D"].max()) if D is None else float(D)
    at = np.isclose(data["D"].to_numpy(dtype=float), D) & (data["D_spec"].to_numpy() > 0)
    if not at.any():
        raise MixoptError(f"no runs with D = {D:g} and D_spec > 0 to draw")
    sizes = np.unique(data["N"].to_numpy()[at])
    cmap = plt.get_cmap("viridis")
    lognorm = np.log(sizes)
    span = max(float(lognorm.max() - lognorm.min()), 1e-12)
    lo, hi = data["D_spec"][at].min() / 1.5, data["D_spec"][at].max() * 1.5
    grid_spec = np.geomspace(lo, hi, 100)
    for n in sizes:
        color = cmap((np.log(n) - lognorm.min()) / span)
        rows = at & np.isclose(data["N"].to_numpy(), n)
        ax.scatter(data["D_spec"][rows], data["loss"][rows], color=color, s=18, zorder=3)
        grid = {"N": np.full_like(grid_spec, n), "D": np.full_like(grid_spec, D),
                "D_spec": grid_spec}
        ax.plot(grid_spec, fit.predict(grid), color=color, lw=1.2, label=f"N = {n:.3g}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # decade labels only: no overlaps
    ax.set_xlabel("domain tokens D'")
    ax.set_ylabel("loss")
    ax.set_title(title or f"{fit.law.name} fit at D = {D:.3g}: runs and iso-N curves")
    ax.legend(fontsize=7)
    return fig


def plot_profile(prof: Any, *, ax: Any = None, label: str | None = None,
                 relative: bool = True) -> Any:
    """Draw a profile from :func:`mixopt.fitting.profile.profile`: the rise of the objective
    over the pinned values (in % of the best objective when ``relative``, else absolute), one
    line per call (``label`` names it; call again with the same ``ax`` to overlay domains).
    A flat line: the data hardly constrain the parameter. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    if not hasattr(prof, "index") or "delta_objective" not in getattr(prof, "columns", ()):
        raise MixoptError("plot_profile needs the DataFrame returned by "
                          "mixopt.fitting.profile.profile")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    else:
        fig = ax.figure
    x = prof.index.to_numpy(dtype=float)
    rise = np.maximum(prof["delta_objective"].to_numpy(dtype=float), 0.0)
    if relative:
        best = prof["objective"].to_numpy(dtype=float) - prof["delta_objective"].to_numpy()
        rise = 100 * rise / np.where(best > 0, best, np.nan)
    ax.plot(x, rise, marker="o", lw=1.2, label=label)
    ax.set_xlabel(f"pinned {prof.index.name or 'value'}")
    ax.set_ylabel("objective rise (% of the best fit)" if relative else "objective rise")
    ax.set_title(f"profile over {prof.index.name or 'the pinned parameter'}")
    if label is not None:
        ax.legend(fontsize=8)
    return fig
