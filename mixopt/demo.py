"""``mixopt demo``: on the bundled ladders, fit, compare, plan, and draw.

Part 1, the MEASURED L(N, D, D') ladder (real byte-level training runs,
``load_ladder("measured")``): per domain, :func:`mixopt.compare` of the three built-in
L(N, D, D') forms holding out the largest model (extrapolation error), a fit of the best form
on all runs (saved as ``<domain>.json``), a profile of the objective over the asymptote ``E``
when it sits on its bound (:func:`mixopt.fitting.profile.profile`), and
:func:`mixopt.plan.split` of a compute budget between shared pretraining and the three domain
specialists, with where it leaves the ladder's range; figures ``ladder.png`` and
``profile.png``.

Part 2, the SIMULATED Chinchilla ladder (``load_ladder("demo")``, known truth): fit, bootstrap
intervals, compute-optimal N and D for a few budgets; ``fit.json`` and figure ``fit.png``.

Part 3 writes the inputs of the ``mixopt mixture`` commands: ``tokens.json`` (tokens per domain),
a proxy swarm simulated from a known log-linear law (``ratios.csv``, ``metrics.csv``) and weight
caps (``caps.json``).

Every option is checked before any work starts. Each command of the README's "From the command
line" section runs on these outputs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mixopt.errors import FitError, MixoptError, PlanError

__all__ = ["main", "check_args"]

BUDGETS = np.array([1e19, 1e20, 1e21, 1e22, 1e23])
#: the domains and token counts of part 3 (the README's offline-mixture example)
MIXTURE_TOKENS = {"web": 500e9, "code": 80e9, "books": 30e9, "math": 5e9}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mixopt demo",
        description="Part 1: compare and fit L(N, D, D') laws on mixopt's bundled MEASURED "
        "ladder and plan a compute split between pretraining and three domains. Part 2: fit the "
        "Chinchilla law to a ladder simulated from known parameters, bootstrap intervals, and "
        "compute-optimal N, D for a few budgets. Part 3: input files for 'mixopt mixture'.",
    )
    p.add_argument("--out", default="mixopt-demo",
                   help="folder for the saved fits, the mixture files and the figures")
    p.add_argument("--no-plot", action="store_true", help="do not draw the figures")
    p.add_argument("--budget", type=float, default=None,
                   help="FLOPs to split in part 1 (default: 10%% of the ladder's largest run)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--n-jobs", type=int, default=1,
                   help="joblib workers for the bootstrap (-1: all cores)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (>= 0)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad options before any work starts (a :class:`MixoptError` naming the option)."""
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        raise PlanError(f"--budget must be finite and positive (FLOPs), got {args.budget!r}")
    if args.n_boot < 1:
        raise FitError(f"--n-boot must be a positive number of resamples, got {args.n_boot}")
    if args.n_jobs == 0:
        raise FitError("--n-jobs must be a non-zero integer (joblib: -1 means every core), "
                       "got 0")
    if args.seed < 0:
        raise FitError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MixoptError(f"--out {args.out!r} exists and is not a folder")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise MixoptError(f"--out {args.out!r}: {str(parent)!r} is not a folder")
            break


def _compute_optimal(fit, boot, budgets: np.ndarray):
    """(N, D, loss, N_lower, N_upper, extrapolation records) per budget, via
    mixopt.plan.compute_optimal."""
    from mixopt.plan import compute_optimal

    point = compute_optimal(fit, budgets)
    ci = compute_optimal(boot, budgets).conf_int(0.95)
    return (np.asarray(point.N), np.asarray(point.D), np.asarray(point.loss),
            ci["N_lower"].to_numpy(), ci["N_upper"].to_numpy(), point.extrapolation)


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


def _bound_note(best: dict[str, Any], runs: Any, plan: Any) -> dict[str, Any]:
    """Explain asymptotes on a bound: what they do to extrapolation, how to pin them, and the
    profile of the objective over the pinned value; returns ``{domain: profile}``."""
    import pandas as pd

    from mixopt.fitting.profile import profile

    on = {dom: fit for dom, fit in best.items() if "E" in fit.at_bounds()}
    if not on:
        return {}
    lows = sorted({fit.bounds["E"][0] for fit in on.values()})
    print(f"\nThe asymptote E (the loss no amount of N or D goes below) sits on its lower bound "
          f"({', '.join(f'{b:g}' for b in lows)}) for {', '.join(on)}: these runs are far "
          "from the irreducible loss, so the fit lets E fall to the bound and lets the "
          "power-law terms carry the curvature. The plan and every loss predicted beyond the "
          "ladder then rest on that bound, not on the data: with a larger E, losses fall more "
          "slowly with scale. Pin it, mixopt.fit(law, runs, fixed={\"E\": value}), or widen "
          "its bounds, bounds={\"E\": (low, high)}, and compare the plans. Profile of the fit "
          "over pinned E (mixopt.fitting.profile.profile; objective rise = how much worse the "
          "best fit gets):")
    big = {"N": 10 * runs["N"].max(), "D": 10 * runs["D"].max(), "D_spec": runs["D_spec"].max()}
    tables, profiles = [], {}
    for dom, fit in on.items():
        lo = fit.bounds["E"][0]
        top = float(fit.data["loss"].min())
        values = np.unique(np.round(lo + (top - lo) * np.array([0.0, 0.25, 0.5, 0.75]), 2))
        values[0] = lo
        at = pd.DataFrame([{"N": plan.N, "D": plan.D, "D_spec": plan.D_spec[dom]}, big])
        prof = profiles[dom] = profile(fit, "E", values, at=at)
        tables.append(pd.DataFrame({
            "domain": dom, "E": prof.index,
            "objective rise": [f"{100 * max(r, 0.0):+.2f} %" for r in
                               prof["delta_objective"] / fit.objective],
            "loss at the plan": prof["loss_at[0]"].round(4),
            "loss at 10x N, D": prof["loss_at[1]"].round(4),
        }))
    print(pd.concat(tables).to_string(index=False))
    print("A flat objective means the ladder cannot tell these E apart; the spread of the last "
          "column is the extrapolation's uncertainty from E alone.")
    _pinned_plan(best, on, profiles, plan)
    return profiles


def _pinned_plan(best: dict[str, Any], on: dict[str, Any], profiles: dict[str, Any],
                 plan: Any) -> None:
    """The same split with E pinned at the middle of each domain's profile."""
    import mixopt
    from mixopt.errors import MixoptError
    from mixopt.plan import split
    from mixopt.plan.result import format_tokens

    pins = {dom: float(prof.index[len(prof) // 2]) for dom, prof in profiles.items()}
    fits = dict(best)
    import warnings

    from mixopt.fitting.result import IdentifiabilityWarning

    loose = []
    try:
        for dom, E in pins.items():
            f = on[dom]
            with warnings.catch_warnings():  # pinned refits: summarised in one line below
                warnings.simplefilter("ignore", IdentifiabilityWarning)
                fits[dom] = mixopt.fit(f.law, f.data, weights=f.weights, delta=f.delta,
                                       bounds=f.bounds, fixed={**f.fixed, "E": E})
            if fits[dom].status == 3:
                what = fits[dom].identifiability()["unidentified"]
                loose.append(f"{dom} ({', '.join(what) or 'a combination'})")
        other = split(fits, plan.budget)
    except MixoptError as exc:  # pragma: no cover - shown, not fatal
        print(f"(the plan with E pinned could not be made: {exc})")
        return
    said = ", ".join(f"{d} {v:g}" for d, v in pins.items())
    print(f"The same budget with E pinned ({said}): N = {format_tokens(other.N)} (was "
          f"{format_tokens(plan.N)}), D = {format_tokens(other.D)} (was {format_tokens(plan.D)}),"
          f" split fraction {other.split_fraction:.3f} (was {plan.split_fraction:.3f}).")
    if loose:
        print("With E pinned the ladder still leaves some parameters unidentified: "
              f"{'; '.join(loose)} (FitResult.identifiability()).")


def measured_part(args: argparse.Namespace, out: Path) -> dict:
    """Compare, fit and plan on the measured ladder; saves ``<domain>.json`` per domain and
    returns ``{domain: best fit}``."""
    import pandas as pd

    import mixopt
    from mixopt.datasets import MEASURED_BOUNDS, MEASURED_MIN_TOKENS, load_ladder
    from mixopt.plan import split

    runs = load_ladder("measured")
    sizes = sorted(runs["N"].unique())
    domains = list(dict.fromkeys(runs["domain"]))
    print(f"Part 1. Bundled MEASURED ladder: {len(runs)} evaluations of real byte-level training "
          f"runs, {len(sizes)} model sizes (N = {sizes[0]:,} to {sizes[-1]:,}), domains "
          f"{', '.join(domains)}; pretrain D tokens on the mix, continue D' tokens on a domain.\n")
    import warnings

    from mixopt.fitting.result import IdentifiabilityWarning

    early = runs["D"] + runs["D_spec"] < MEASURED_MIN_TOKENS
    print(f"Fits leave out the {int(early.sum() / len(domains))} runs per domain that saw fewer "
          f"than {MEASURED_MIN_TOKENS:,} tokens (D + D'): the early transient, which the laws "
          "do not describe.\n")
    rows, best, loose = [], {}, []
    for dom in domains:
        d = runs[(runs["domain"] == dom) & ~early][["N", "D", "D_spec", "loss"]]
        errors = {}
        for law in SPEC_LAWS:
            with warnings.catch_warnings():  # recorded in the table, summarised below
                warnings.simplefilter("ignore", IdentifiabilityWarning)
                c = mixopt.compare([law], d, holdout="N", bounds=MEASURED_BOUNDS[law])
            errors[law] = float(c["mean_rel_error"].iloc[0])
            rows.append(dict(domain=dom, law=law, error=errors[law]))
            if not bool(c["identified"].iloc[0]) and c["note"].iloc[0]:
                loose.append(f"{dom}/{law} ({c['note'].iloc[0].split('identify ')[-1]})")
        law = min(errors, key=errors.get)
        best[dom] = mixopt.fit(law, d, bounds=MEASURED_BOUNDS[law])
    table = pd.DataFrame(rows).pivot(index="law", columns="domain", values="error")[domains]
    print("Extrapolation to the largest model (fit on the smaller sizes; mean relative error "
          "on the held-out size's runs):")
    print((100 * table).round(2).astype(str).add(" %").to_string())
    if loose:
        print("Held-out folds whose smaller sizes leave parameters unidentified (expected with "
              f"the largest model held out; errors still measured): {'; '.join(loose)}")
    print("\nBest form per domain, refitted on all sizes:")
    for dom, fit in best.items():
        ps = ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items())
        edge = fit.at_bounds()
        note = f"  (on a bound: {', '.join(edge)})" if edge else ""
        print(f"  {dom:<11}{fit.law.name:<15}{ps}{note}")
    for dom, fit in best.items():
        fit.save(out / f"{dom}.json")
    print(f"saved the fits to {', '.join(str(out / f'{dom}.json') for dom in best)}")
    top = 6 * runs["N"].max() * (runs["D"].max() + len(domains) * runs["D_spec"].max())
    budget = args.budget if args.budget is not None else 0.1 * top
    plan = split(best, budget)
    print(f"\nSplit of {budget:.3g} FLOPs (C = 6 N (D + sum D'), equal domain weights):")
    print(plan.summary())
    profiles = _bound_note(best, runs, plan)
    plt = _pyplot(args.no_plot)
    if plt is not None:
        from mixopt.fitting.figures import plot_profile, plot_specialisation

        fig, axes = plt.subplots(1, len(best), figsize=(5.2 * len(best), 4),
                                 layout="constrained")
        for ax, (dom, fit) in zip(np.atleast_1d(axes), best.items()):
            plot_specialisation(fit, ax=ax, title=f"{dom}: {fit.law.name} fit, D = max")
        fig.savefig(out / "ladder.png", dpi=100)
        plt.close(fig)
        print(f"saved the figure to {out / 'ladder.png'}")
        if profiles:
            fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
            for dom, prof in profiles.items():
                plot_profile(prof, ax=ax, label=dom)
            fig.savefig(out / "profile.png", dpi=100)
            plt.close(fig)
            print(f"saved the profile over E to {out / 'profile.png'}")
    return best


def mixture_part(out: Path) -> None:
    """Write ``tokens.json``, a simulated proxy swarm (``ratios.csv``, ``metrics.csv``) and
    ``caps.json`` (:func:`mixopt.mixture.caps` at 200B tokens, one epoch)."""
    import pandas as pd

    import mixopt.mixture as mm

    tokens = pd.Series(MIXTURE_TOKENS)
    (out / "tokens.json").write_text(json.dumps(MIXTURE_TOKENS, indent=1) + "\n")
    swarm = mm.design(tokens, 64, seed=0)
    t = np.array([-0.4, -1.0, -0.6, 0.3])  # the known law: val = 2 + exp(h . t), 0.2% noise
    noise = np.exp(0.002 * np.random.default_rng(0).standard_normal(len(swarm)))
    metrics = pd.DataFrame({"val": (2.0 + np.exp(swarm.to_numpy() @ t)) * noise},
                           index=swarm.index)
    swarm.to_csv(out / "ratios.csv")
    metrics.to_csv(out / "metrics.csv")
    caps = mm.caps(tokens, target_tokens=200e9, max_epochs=1)  # no domain repeated at 200B
    (out / "caps.json").write_text(json.dumps(caps.to_dict(), indent=1) + "\n")
    print(f"Part 3. Inputs of 'mixopt mixture': {out / 'tokens.json'} (tokens per domain), a "
          f"swarm of {len(swarm)} proxy mixtures with a SIMULATED validation loss 'val' "
          f"({out / 'ratios.csv'}, {out / 'metrics.csv'}) and the weight caps of a 200B-token "
          f"run that repeats no domain ({out / 'caps.json'}).")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_args(args)
    import mixopt
    from mixopt.datasets import DEMO_TRUTH, load_ladder
    from mixopt.plan.extrapolation import describe
    from mixopt.plan.result import format_size, format_tokens

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

    N, D, loss, n_lo, n_hi, outside = _compute_optimal(fit, boot, BUDGETS)
    print("Compute-optimal allocation (C = 6 N D; Hoffmann et al. 2022, eq. 4), with bootstrap "
          "95% intervals on N (N rounded to the precision its interval supports, D to whole "
          "tokens):")
    rows = []
    for i, c in enumerate(BUDGETS):
        lo, hi = (format_size(x, n_lo[i], n_hi[i]) for x in (n_lo[i], n_hi[i]))
        rows.append((f"{c:.0e}", format_size(N[i], n_lo[i], n_hi[i]), f"[{lo}, {hi}]",
                     format_tokens(D[i]), f"{D[i] / N[i]:.1f}", f"{loss[i]:.3f}"))
    head = ("budget", "N", "N 95% interval", "D", "D/N", "loss")
    widths = [max(len(h), *(len(r[j]) for r in rows)) + 2 for j, h in enumerate(head)]
    print("".join(h.rjust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("".join(x.rjust(w) for x, w in zip(r, widths)))
    print(describe(outside))

    fit.save(out / "fit.json")
    print(f"\nsaved the fit to {out / 'fit.json'}")
    plt = _pyplot(args.no_plot)
    if plt is not None:
        from mixopt.fitting.figures import plot_fit

        fig = plot_fit(fit)
        fig.savefig(out / "fit.png", dpi=120)
        plt.close(fig)
        print(f"saved the figure to {out / 'fit.png'}")
    print()
    mixture_part(out)
    sys.stdout.flush()
    return 0
