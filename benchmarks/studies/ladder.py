"""Study 4: a measured L(N, D, D') ladder and the split it implies (Seto et al. 2026, arXiv
2603.19149: pretrain one model on the general mixture for D tokens, continue a copy on each domain
for D' tokens; a law L(N, D, D') per domain decides how to split a compute budget).

Byte-level domains available offline (``common.corpus``): English prose shipped with the system,
Python standard-library source, generated arithmetic; the general mixture weighs them equally.
For each model size (TinyGPT, ``--n-layers`` layers (default 4), widths ``--widths``; N =
non-embedding parameters) one pretraining run (constant learning rate after a short warm-up)
is checkpointed at several D
(including D = 0, the fresh model: continuing it is training on the domain from scratch); each
checkpoint is continued on each domain with a fresh AdamW for ``cont_steps`` steps, and the
domain's held-out loss is recorded at several D' (including D' = 0). Tokens are steps x batch x
length. Then, per domain:

* extrapolation error of the ``additive``, ``transfer`` and ``multiplicative`` forms: fitted on
  the smaller sizes, scored on every run of the largest. Fits leave out the early transient,
  the runs whose model saw fewer than ``min_tokens`` tokens (D + D'), where the loss has not
  reached the power law the forms describe (warm-up, the first few dozen steps). The threshold
  is chosen per domain among ``MIN_TOKENS`` by a nested holdout that never sees the largest
  size (fit below the two largest, score the second largest; :func:`select_min_tokens`);
  ``--min-tokens 0`` fits every run. The error without the threshold is reported beside it;
* :func:`mixopt.plan.split` on each form's fit to every size (runs past the threshold), at a
  budget inside the grid (``--budget-frac`` of the largest grid configuration's FLOPs), against
  the measured best split on the grid (brute force over N, D and each domain's D' with 6 N (D +
  sum_k D'_k) <= budget, objective the mean domain loss). Three plans per form: N free; N fixed
  at the grid best's N; and N fixed with D and every D' capped at the grid's largest values. The
  split spends the whole budget, so it may leave the grid; each row also gives the form's
  predicted mean loss at the measured best configuration.

Writes ``ladder.csv`` (columns ``N, D, D_spec, loss, domain, run``, plus ``d_model``,
``n_layers``, ``seed``),
``ladder_compare.csv``, ``ladder_split.csv`` and ``ladder.png``.

    python benchmarks/studies/ladder.py             # default size (see --help)
    python benchmarks/studies/ladder.py --smoke
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.studies import common  # noqa: E402
from mixopt.datasets import MEASURED_BOUNDS, MEASURED_PATH  # noqa: E402

DOMAINS = ("prose", "python", "arithmetic")
LAWS = ("additive", "transfer", "multiplicative")
# Fits in natural units (nats per byte, tokens up to ~1e7) use the bounds that ship with the
# bundled measured ladder: unbounded fits can push E to 0 or S to infinity.
BOUNDS = MEASURED_BOUNDS
DEFAULTS: dict[str, Any] = dict(
    widths=(16, 24, 32, 48), n_layers=4, n_heads=4, head_dim=0, length=64, batch=16, lr=3e-3,
    warmup_steps=20, pre_steps=600, checkpoints=(0, 150, 300, 600), cont_steps=300,
    cont_evals=(0, 25, 50, 100, 200, 300), eval_batches=4, max_bytes=2_000_000)
SMOKE: dict[str, Any] = dict(
    DEFAULTS, widths=(8, 12, 16, 20), batch=4, pre_steps=6, checkpoints=(0, 3, 6),
    cont_steps=4, cont_evals=(0, 2, 4), eval_batches=1, max_bytes=100_000)


def corpora(cfg: dict[str, Any]) -> dict[str, common.ByteCorpus]:
    return {d: common.ByteCorpus(common.corpus(d, max_bytes=cfg["max_bytes"])) for d in DOMAINS}


def run_size(width: int, seed: int, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Pretrain one size on the general mix, continue every checkpoint on every domain."""
    import torch

    from mixopt.train import TinyGPT

    torch.set_num_threads(1)
    data = corpora(cfg)
    L, B = cfg["length"], cfg["batch"]
    tok = B * L
    tests = {d: c.heldout(seed, cfg["eval_batches"], 64, L) for d, c in data.items()}
    general = common.MixedBytes(list(data.values()), [1.0] * len(data))
    # head_dim > 0: heads = width / head_dim (the same head size at every width); else n_heads
    heads = width // cfg["head_dim"] if cfg.get("head_dim") else cfg["n_heads"]
    model = TinyGPT(256, context=L, n_layers=cfg["n_layers"], n_heads=heads,
                    d_model=width, seed=seed)
    N = model.num_params(non_embedding=True)
    ckpts: dict[int, Any] = {}
    if 0 in cfg["checkpoints"]:
        ckpts[0] = copy.deepcopy(model)
    rng = np.random.default_rng([seed, width, 1])

    def keep(step: int) -> None:
        if step in cfg["checkpoints"]:
            ckpts[step] = copy.deepcopy(model)

    common.train(model, lambda s: general.sample(rng, B, L), cfg["pre_steps"], lr=cfg["lr"],
                 warmup=cfg["warmup_steps"], schedule="constant", every=1, callback=keep)
    rows: list[dict[str, Any]] = []
    for step, ck in ckpts.items():
        for dom in DOMAINS:
            net = copy.deepcopy(ck)
            drng = np.random.default_rng([seed, width, 2, DOMAINS.index(dom)])
            run_id = f"w{width}-s{seed}-D{step}-{dom}"

            def evaluate(s: int, net: Any = net, dom: str = dom, run_id: str = run_id,
                         step: int = step) -> None:
                if s in cfg["cont_evals"] and not (s == 0 and step == 0):
                    rows.append(dict(N=N, D=step * tok, D_spec=s * tok,
                                     loss=common.eval_loss(net, tests[dom]), domain=dom,
                                     run=run_id, d_model=width, n_layers=cfg["n_layers"],
                                     seed=seed))

            common.train(net, lambda s, drng=drng, dom=dom: data[dom].sample(drng, B, L),
                         cfg["cont_steps"], lr=cfg["lr"], warmup=cfg["warmup_steps"],
                         schedule="constant", every=1, callback=evaluate)
    return rows


def measured_best(ladder: pd.DataFrame, budget: float) -> dict[str, Any] | None:
    """Brute-force best split on the grid: min over N, D and per-domain D' of the mean domain
    loss subject to 6 N (D + sum_k D'_k) <= budget."""
    best = None
    for (N, D), g in ladder.groupby(["N", "D"]):
        options = [g[g["domain"] == d][["D_spec", "loss"]].to_numpy() for d in DOMAINS]
        if any(len(o) == 0 for o in options):
            continue
        for combo in itertools.product(*options):
            tokens = D + sum(c[0] for c in combo)
            if 6 * N * tokens > budget * (1 + 1e-9):
                continue
            mean = float(np.mean([c[1] for c in combo]))
            if best is None or mean < best["mean_loss"]:
                best = dict(N=N, D=D, mean_loss=mean, flops=6 * N * tokens,
                            **{f"D_spec_{d}": c[0] for d, c in zip(DOMAINS, combo)},
                            **{f"loss_{d}": c[1] for d, c in zip(DOMAINS, combo)})
    return best


#: candidate thresholds on the tokens a run's model has seen (D + D'): runs below the chosen one
#: are left out of a fit (the early transient, where the loss is not yet on the power law)
MIN_TOKENS = (0, 25_000, 50_000, 100_000)


def _past(d: pd.DataFrame, min_tokens: float) -> pd.DataFrame:
    return d[d["D"] + d["D_spec"] >= min_tokens]


def extrapolation_error(d: pd.DataFrame, law: str, fit_sizes: Sequence[float],
                        test_size: float, min_tokens: float, fit_options: dict[str, Any]
                        ) -> tuple[float, float, bool]:
    """Fit ``law`` on the runs of ``fit_sizes`` that saw at least ``min_tokens`` tokens and
    return the mean and largest relative error on every run of ``test_size`` (all of them,
    whatever their tokens: the threshold chooses the fitting data, never the scored runs), and
    whether the fit converged (an unconverged fit, typically stopped by the iteration limit in
    a flat valley, is still scored; :func:`_compare` notes it)."""
    import mixopt

    train = _past(d[d["N"].isin(list(fit_sizes))], min_tokens)
    test = d[d["N"] == test_size]
    fit = mixopt.fit(law, train[["N", "D", "D_spec", "loss"]], bounds=BOUNDS[law],
                     allow_unconverged=True, **fit_options)
    rel = np.abs(fit.predict(test) - test["loss"].to_numpy()) / test["loss"].to_numpy()
    return float(np.mean(rel)), float(np.max(rel)), bool(fit.success or fit.status == 3)


def select_min_tokens(d: pd.DataFrame, fit_options: dict[str, Any],
                      candidates: Sequence[float] = MIN_TOKENS, laws: Sequence[str] = LAWS
                      ) -> tuple[float, dict[float, float]]:
    """Choose the fitting threshold on tokens seen by a nested holdout that never looks at the
    largest size: for each candidate, each of ``laws`` is fitted on the sizes below the two
    largest and scored on the second largest (all its runs); the candidate with the lowest
    error averaged over the laws wins (ties: the smaller threshold). With fewer than three sizes: 0.

    Returns the threshold and the nested error (mean over laws) of every candidate."""
    Ns = sorted(d["N"].unique())
    if len(Ns) < 3:
        return 0.0, {}
    scores: dict[float, float] = {}
    for c in candidates:
        errs = []
        for law in laws:
            try:
                errs.append(extrapolation_error(d, law, Ns[:-2], Ns[-2], c, fit_options)[0])
            except Exception:  # too few runs left, or the fit failed: this candidate loses
                errs.append(np.inf)
        scores[float(c)] = float(np.mean(errs))
    best = min(scores, key=lambda c: (scores[c], c))
    return best, scores


def _compare(d: pd.DataFrame, law: str, domain: str, fit_options: dict[str, Any],
             min_tokens: float = 0.0) -> pd.DataFrame:
    """Extrapolation error of one law on one domain: fitted on every size but the largest (runs
    with at least ``min_tokens`` tokens seen), scored on all runs of the largest; also the error
    without the threshold. A failure becomes a row with its message."""
    Ns = sorted(d["N"].unique())
    row: dict[str, Any] = dict(domain=domain, law=law, min_tokens=min_tokens, note="")
    try:
        row["mean_rel_error"], row["max_rel_error"], converged = extrapolation_error(
            d, law, Ns[:-1], Ns[-1], min_tokens, fit_options)
        if not converged:
            row["note"] = "fit stopped before converging (iteration limit); scored as it stands"
        row["mean_rel_error_all_runs"] = (
            row["mean_rel_error"] if min_tokens == 0 else
            extrapolation_error(d, law, Ns[:-1], Ns[-1], 0, fit_options)[0])
    except Exception as exc:
        row.update(mean_rel_error=np.nan, max_rel_error=np.nan, mean_rel_error_all_runs=np.nan,
                   note=f"{type(exc).__name__}: {exc}")
    return pd.DataFrame([row])


def _threshold(d: pd.DataFrame, min_tokens: float | None, fit_options: dict[str, Any]
               ) -> float:
    return select_min_tokens(d, fit_options)[0] if min_tokens is None else float(min_tokens)


def per_seed(ladder: pd.DataFrame, min_tokens: float | None = None, **fit_options: Any
             ) -> pd.DataFrame:
    """Extrapolation error of every law on every domain, fitted on each seed's runs alone, the
    fitting threshold chosen on that seed's runs (``min_tokens=None``) or given (columns
    ``seed, domain, law, min_tokens, mean_rel_error, max_rel_error, mean_rel_error_all_runs``,
    and ``note`` for a fit that failed): the spread over seeds."""
    rows = []
    for seed, runs in ladder.groupby("seed"):
        for dom in DOMAINS:
            d = runs[runs["domain"] == dom][["N", "D", "D_spec", "loss"]]
            c_min = _threshold(d, min_tokens, fit_options)
            for law in LAWS:
                c = _compare(d, law, dom, fit_options, c_min)
                c.insert(0, "seed", seed)
                rows.append(c)
    cols = ["seed", "domain", "law", "min_tokens", "mean_rel_error", "max_rel_error",
            "mean_rel_error_all_runs", "note"]
    out = pd.concat(rows, ignore_index=True)
    return out[[c for c in cols if c in out]]


def analyse(ladder: pd.DataFrame, budget_frac: float = 0.1, min_tokens: float | None = None,
            **fit_options: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-domain extrapolation error (fit on the smaller sizes, score every run of the largest
    N) and, per law, the planned split at a budget against the measured best on the grid. Fits
    use the runs that saw at least ``min_tokens`` tokens (``None``: chosen per domain by
    :func:`select_min_tokens`, which never looks at the largest size). ``fit_options`` go to
    :func:`mixopt.fit` (e.g. ``grid=64`` starts drawn from each law's default grid)."""
    import mixopt
    import mixopt.plan

    comps = []
    fits: dict[str, dict[str, Any]] = {law: {} for law in LAWS}
    for dom in DOMAINS:
        d = ladder[ladder["domain"] == dom][["N", "D", "D_spec", "loss"]]
        c_min = _threshold(d, min_tokens, fit_options)
        for law in LAWS:  # one law at a time: a failing law must not hide the others
            comps.append(_compare(d, law, dom, fit_options, c_min))
            try:
                fits[law][dom] = mixopt.fit(law, _past(d, c_min), bounds=BOUNDS[law],
                                            **fit_options)
                fits[law][dom].predict(d)  # a fit whose parameters over/underflow fails here
            except Exception as exc:  # reported in the split table
                fits[law][dom] = exc
    comp = pd.concat(comps, ignore_index=True)
    # budget: a fraction of the largest grid configuration's FLOPs
    top = 6 * ladder["N"].max() * (ladder["D"].max() + len(DOMAINS) * ladder["D_spec"].max())
    budget = budget_frac * top
    best = measured_best(ladder, budget)
    rows = []
    if best is not None:
        rows.append(dict(source="measured grid best", budget=budget, **best))
    for law in LAWS:
        if any(isinstance(f, Exception) for f in fits[law].values()):
            rows.append(dict(source=f"plan ({law})", budget=budget, note="fit failed: " + "; ".join(
                f"{d}: {f}" for d, f in fits[law].items() if isinstance(f, Exception))))
            continue
        Ns = sorted(ladder["N"].unique())
        variants: list[tuple[str, dict[str, Any]]] = [("free N", {})]
        if best is not None:  # the same N, and then also the grid's token ranges
            caps = {d: float(ladder["D_spec"].max()) for d in DOMAINS}
            variants += [("N of grid best", {"N": best["N"]}),
                         ("N of grid best, grid caps",
                          {"N": best["N"], "max_D": float(ladder["D"].max()), "caps": caps})]
        for label, kw in variants:
            try:
                plan = mixopt.plan.split(fits[law], budget, **kw)
            except Exception as exc:
                rows.append(dict(source=f"plan ({law}, {label})", budget=budget, note=str(exc)))
                continue
            row = dict(source=f"plan ({law}, {label})", budget=budget, N=plan.N, D=plan.D,
                       mean_loss=float(np.mean(list(plan.loss.values()))), flops=plan.flops,
                       **{f"D_spec_{d}": plan.D_spec[d] for d in DOMAINS},
                       **{f"loss_{d}": plan.loss[d] for d in DOMAINS},
                       success=plan.success, in_grid_N=bool(Ns[0] <= plan.N <= Ns[-1]))
            if best is not None:  # the law's prediction at the measured best configuration
                pred = [float(fits[law][dd].predict(pd.DataFrame(
                    {"N": [best["N"]], "D": [best["D"]], "D_spec": [best[f"D_spec_{dd}"]]}))[0])
                    for dd in DOMAINS]
                row["predicted_loss_at_grid_best"] = float(np.mean(pred))
            rows.append(row)
    return comp, pd.DataFrame(rows)


def run(cfg: dict[str, Any], seeds: Sequence[int], n_jobs: int = 2) -> pd.DataFrame:
    jobs = [(w, s, cfg) for s in seeds for w in cfg["widths"]]
    out = common.run_seeds(run_size, jobs, n_jobs)
    return pd.DataFrame([r for rows in out for r in rows])


def figure(ladder: pd.DataFrame, comp: pd.DataFrame) -> Any:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(DOMAINS) + 1, figsize=(5 * (len(DOMAINS) + 1), 4))
    m = ladder.groupby(["domain", "N", "D", "D_spec"], as_index=False)["loss"].mean()
    Dmax = m["D"].max()
    for ax, dom in zip(axes, DOMAINS):
        g = m[(m["domain"] == dom) & (m["D"] == Dmax)]
        for N, h in g.groupby("N"):
            h = h[h["D_spec"] > 0]
            ax.plot(h["D_spec"], h["loss"], "o-", label=f"N={N:,}")
        ax.set(xscale="log", xlabel="D' (domain tokens)", ylabel="held-out loss",
               title=f"{dom}, D={Dmax:,}")
        ax.legend(fontsize=7)
    if comp is None or comp.empty:
        axes[-1].set_axis_off()
        return fig
    piv = comp.pivot(index="law", columns="domain", values="mean_rel_error")
    x = np.arange(len(piv))
    for i, dom in enumerate(piv.columns):
        axes[-1].bar(x + 0.25 * i - 0.25, 100 * piv[dom], width=0.25, label=dom)
    axes[-1].axhline(2, color="k", lw=0.8, ls="--")
    axes[-1].set(xticks=x, xticklabels=list(piv.index), ylabel="mean rel. error on largest N (%)",
                 title="extrapolation error")
    axes[-1].legend(fontsize=7)
    return fig


def main(argv: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    p = common.parser(__doc__.splitlines()[0], seeds=1)
    p.add_argument("--widths", type=int, nargs="+", default=None)
    for k in ("pre_steps", "cont_steps", "batch", "eval_batches", "n_layers", "n_heads",
              "head_dim", "length", "warmup_steps"):
        p.add_argument(f"--{k.replace('_', '-')}", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--checkpoints", type=int, nargs="+", default=None, help="pretraining steps")
    p.add_argument("--cont-evals", type=int, nargs="+", default=None, help="continuation steps")
    p.add_argument("--budget-frac", type=float, default=0.1,
                   help="split budget as a fraction of the largest grid configuration's FLOPs")
    p.add_argument("--fit-grid", type=int, default=None,
                   help="starts per fit, drawn from each law's default grid (default: the whole "
                   "grid; 16 starts missed the optimum of noise-free additive ladders)")
    p.add_argument("--min-tokens", type=float, default=None,
                   help="fit only runs with D + D' >= this many tokens (default: chosen per "
                   f"domain among {list(MIN_TOKENS)} by a nested holdout of the second-largest N)")
    p.add_argument("--no-fit", action="store_true", help="measure the ladder only")
    p.add_argument("--from-csv", default=None, help="analyse an existing ladder.csv")
    p.add_argument("--bundle", nargs="?", const=str(MEASURED_PATH), default=None,
                   help="also write the measured ladder as the dataset `mixopt demo` uses "
                   f"(default path {MEASURED_PATH.relative_to(common.ROOT)})")
    args = p.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else DEFAULTS)
    cfg.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items()
                if k in cfg and v is not None})
    timer = common.Timer()
    ladder = (pd.read_csv(args.from_csv) if args.from_csv
              else run(cfg, common.seed_list(args), args.n_jobs))
    if args.bundle:
        ladder.to_csv(args.bundle, index=False, float_format="%.6g")
        print(f"wrote the bundled ladder {args.bundle}")
    if args.no_fit:
        csv, png = common.write(ladder, figure(ladder, None), Path(args.out), "ladder")
        print(f"ladder study, {len(ladder)} rows, {timer():.0f} s (no fits); wrote {csv}, {png}")
        return ladder, pd.DataFrame(), pd.DataFrame()
    comp, plan = analyse(ladder, args.budget_frac, args.min_tokens, grid=args.fit_grid)
    out = Path(args.out)
    csv, png = common.write(ladder, figure(ladder, comp), out, "ladder")
    comp.to_csv(out / "ladder_compare.csv", index=False, float_format="%.6g")
    plan.to_csv(out / "ladder_split.csv", index=False, float_format="%.6g")
    source = f"read from {args.from_csv}" if args.from_csv else f"config {cfg}"
    print(f"ladder study, {ladder['seed'].nunique()} seed(s), {len(ladder)} rows, "
          f"{timer():.0f} s; {source}")
    thr = comp.groupby("domain")["min_tokens"].first()
    print("  fitting threshold on D + D' (tokens): "
          + ", ".join(f"{dom} {int(v):,}" for dom, v in thr.items()))
    for col, what in (("mean_rel_error", "fits past the threshold"),
                      ("mean_rel_error_all_runs", "fits on every run")):
        print(f"  extrapolation to the largest N, {what} (mean relative error on all its runs, %;"
              " target < 2%):")
        piv = comp.pivot(index="law", columns="domain", values=col)
        piv["mean"] = piv.mean(axis=1)
        print("  " + (100 * piv).round(2).to_string().replace("\n", "\n  "))
    for r in comp[comp["note"].fillna("") != ""].itertuples():
        print(f"  note: {r.law} on {r.domain}: {r.note}")
    cols = ["source", "N", "D"] + [f"D_spec_{d}" for d in DOMAINS] + ["mean_loss"]
    if "predicted_loss_at_grid_best" in plan:
        cols.append("predicted_loss_at_grid_best")
    if ladder["seed"].nunique() > 1:  # the same fits on each seed's runs alone
        seeds = per_seed(ladder, args.min_tokens, grid=args.fit_grid)
        seeds.to_csv(out / "ladder_compare_seeds.csv", index=False, float_format="%.6g")
        sp = common.spread(seeds, ["law", "domain"], "mean_rel_error")
        print("  per seed (mean relative error, %: mean +- std, min-max over seeds):")
        for r in sp.itertuples():
            print(f"    {r.law:15s} {r.domain:11s} {100 * r.mean:5.2f} +- {100 * (r.std or 0):.2f}"
                  f" ({100 * r.min:.2f}-{100 * r.max:.2f}, n={r.count})")
        print("  thresholds chosen per seed: " + ", ".join(
            f"seed {int(k[0])} {k[1]} {int(v):,}"
            for k, v in seeds.groupby(["seed", "domain"])["min_tokens"].first().items()))
    print(f"  split at budget {plan['budget'].iloc[0]:.3g} FLOPs:")
    print("  " + plan[[c for c in cols if c in plan]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}").replace("\n", "\n  "))
    print(f"  wrote {csv}, {png}, ladder_compare.csv, ladder_split.csv")
    return ladder, comp, plan


if __name__ == "__main__":
    main()
