"""``mixopt demo``: on the bundled ladders, fit, compare, plan, and draw.

Part 1, the MEASURED L(N, D, D') ladder (real byte-level training runs,
``load_ladder("measured")``): per domain, :func:`mixopt.compare` of the three built-in
L(N, D, D') forms holding out the largest model (extrapolation error), a fit of the best form
on all runs, and :func:`mixopt.plan.split` of a compute budget between shared pretraining and
the three domain specialists; figure ``ladder.png``.

Part 2, the SIMULATED Chinchilla ladder (``load_ladder("demo")``, known truth): fit, bootstrap
intervals, compute-optimal N and D for a few budgets; ``fit.json`` and figure ``fit.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]

BUDGETS = np.array([1e19, 1e20, 1e21, 1e22, 1e23])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mixopt demo",
        description="Part 1: compare and fit L(N, D, D') laws on mixopt's bundled MEASURED "
        "ladder and plan a compute split between pretraining and three domains. Part 2: fit the "
        "Chinchilla law to a ladder simulated from known parameters, bootstrap intervals, and "
        "compute-optimal N, D for a few budgets.",
    )
    p.add_argument("--out", default="mixopt-demo", help="folder for fit.json and the figures")
    p.add_argument("--no-plot", action="store_true", help="do not draw the figures")
    p.add_argument("--budget", type=float, default=None,
                   help="FLOPs to split in part 1 (default: 10%% of the ladder's largest run)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--n-jobs", type=int, default=1, help="joblib workers for the bootstrap")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def _compute_optimal(fit, boot, budgets: np.ndarray):
    """(N, D, loss, N_lower, N_upper) per budget, via mixopt.plan.compute_optimal."""
    from mixopt.plan import compute_optimal

    point = compute_optimal(fit, budgets)
    ci = compute_optimal(boot, budgets).conf_int(0.95)
    return (np.asarray(point.N), np.asarray(point.D), np.asarray(point.loss),
            ci["N_lower"].to_numpy(), ci["N_upper"].to_numpy())


SPEC_LAWS = ("additive", "transfer", "multiplicative")


def _pyplot(no_plot: bool):
    if no_plot:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'mixopt[plot]')")
        return None
    return plt


def measured_part(args: argparse.Namespace, out: Path) -> dict:
    """Compare, fit and plan on the measured ladder; returns ``{domain: best fit}``."""
    import pandas as pd

    import mixopt
    from mixopt.datasets import MEASURED_BOUNDS, load_ladder
    from mixopt.plan import split

    runs = load_ladder("measured")
    sizes = sorted(runs["N"].unique())
    domains = list(dict.fromkeys(runs["domain"]))
    print(f"Part 1. Bundled MEASURED ladder: {len(runs)} evaluations of real byte-level training "
          f"runs, {len(sizes)} model sizes (N = {sizes[0]:,} to {sizes[-1]:,}), domains "
          f"{', '.join(domains)}; pretrain D tokens on the mix, continue D' tokens on a domain.\n")
    rows, best = [], {}
    for dom in domains:
        d = runs[runs["domain"] == dom][["N", "D", "D_spec", "loss"]]
        errors = {}
        for law in SPEC_LAWS:
            c = mixopt.compare([law], d, holdout="N", bounds=MEASURED_BOUNDS[law])
            errors[law] = float(c["mean_rel_error"].iloc[0])
            rows.append(dict(domain=dom, law=law, error=errors[law]))
        law = min(errors, key=errors.get)
        best[dom] = mixopt.fit(law, d, bounds=MEASURED_BOUNDS[law])
    table = pd.DataFrame(rows).pivot(index="law", columns="domain", values="error")[domains]
    print("Extrapolation to the largest model (fit on the smaller sizes; mean relative error "
          "on the held-out size):")
    print((100 * table).round(2).astype(str).add(" %").to_string())
    print("\nBest form per domain, refitted on all sizes:")
    for dom, fit in best.items():
        ps = ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items())
        edge = fit.at_bounds()
        note = f"  (on a bound: {', '.join(edge)})" if edge else ""
        print(f"  {dom:<11}{fit.law.name:<15}{ps}{note}")
    top = 6 * runs["N"].max() * (runs["D"].max() + len(domains) * runs["D_spec"].max())
    budget = args.budget if args.budget is not None else 0.1 * top
    plan = split(best, budget)
    print(f"\nSplit of {budget:.3g} FLOPs (C = 6 N (D + sum D'), equal domain weights):")
    print(plan.summary())
    plt = _pyplot(args.no_plot)
    if plt is not None:
        from mixopt.fitting.figures import plot_specialisation

        fig, axes = plt.subplots(1, len(best), figsize=(5.2 * len(best), 4),
                                 layout="constrained")
        for ax, (dom, fit) in zip(np.atleast_1d(axes), best.items()):
            plot_specialisation(fit, ax=ax, title=f"{dom}: {fit.law.name} fit, D = max")
        fig.savefig(out / "ladder.png", dpi=100)
        plt.close(fig)
        print(f"saved the figure to {out / 'ladder.png'}")
    return best


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import mixopt
    from mixopt.datasets import DEMO_TRUTH, load_ladder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    measured_part(args, out)
    print()

    runs = load_ladder("demo")
    truth = ", ".join(f"{k}={v:g}" for k, v in DEMO_TRUTH.items())
    print(f"Part 2. Bundled ladder of {len(runs)} SIMULATED runs (no real training), from the "
          f"Chinchilla law with {truth} and 1% log-normal noise.\n")
    fit = mixopt.fit("chinchilla", runs)
    print(fit.summary())
    print()
    boot = fit.bootstrap(args.n_boot, seed=args.seed, n_jobs=args.n_jobs, progress=args.progress)
    print(boot.summary())
    ci = boot.conf_int(0.95)
    inside = [k for k, v in DEMO_TRUTH.items() if ci.loc[k, "lower"] <= v <= ci.loc[k, "upper"]]
    print(f"true value inside the 95% interval for: {', '.join(inside) or 'none'} "
          f"({len(inside)}/{len(DEMO_TRUTH)})\n")

    N, D, loss, n_lo, n_hi = _compute_optimal(fit, boot, BUDGETS)
    print("Compute-optimal allocation (C = 6 N D; Hoffmann et al. 2022, eq. 4), with bootstrap "
          "95% intervals on N:")
    print(f"{'budget':>10}{'N':>12}{'N 95% interval':>26}{'D':>12}{'D/N':>8}{'loss':>8}")
    for i, c in enumerate(BUDGETS):
        print(f"{c:>10.0e}{N[i]:>12.3e}{f'[{n_lo[i]:.2e}, {n_hi[i]:.2e}]':>26}"
              f"{D[i]:>12.3e}{D[i] / N[i]:>8.1f}{loss[i]:>8.3f}")

    fit.save(out / "fit.json")
    print(f"\nsaved the fit to {out / 'fit.json'}")
    plt = _pyplot(args.no_plot)
    if plt is not None:
        from mixopt.fitting.figures import plot_fit

        fig = plot_fit(fit)
        fig.savefig(out / "fit.png", dpi=120)
        plt.close(fig)
        print(f"saved the figure to {out / 'fit.png'}")
    sys.stdout.flush()
    return 0
