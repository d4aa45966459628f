"""``mixopt mixture``: design proxy swarms and optimise a data mixture from their results.

    mixopt mixture design --prior tokens.json --runs 512 --seed 0 --out swarm/
    mixopt mixture fit ratios.csv metrics.csv --target pile_cc --caps caps.json --json

``design`` draws a RegMix / olmix swarm (:func:`mixopt.mixture.design`) around the token counts
in ``tokens.json`` (an object domain -> tokens) and writes ``ratios.csv`` (index column ``run``)
and one ``run_<id>.json`` configuration per proxy run. ``fit`` follows olmix's "bring your own
ratios.csv and metrics.csv": both tables are indexed by their first column (the run id); it fits
the surrogate on a random training split, scores it on the held-out runs, refits on every run,
optimises the mixture under the caps / floors / KL prior, prints the plan and writes
``plan.json``, ``model.json`` and (with matplotlib) ``mixture_fit.png``. Every argument is checked
before any fitting; a bad one is a one-line error and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
import pandas as pd

from mixopt._schema import read_json
from mixopt.errors import DataError, MixtureError

__all__ = ["main"]

MODELS = ("loglinear", "mixing", "linear", "gbm", "gp")


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`MixtureError` (a one-line error, exit 1) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise MixtureError(f"{self.prog.removeprefix('mixopt mixture ')}: {message}")


def _float_or_none(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    return float(text)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mixopt mixture", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", metavar="{design,fit}", parser_class=_Parser)

    d = sub.add_parser("design", help="draw a swarm of proxy-run mixtures",
                       description="Draw a RegMix/olmix swarm of mixtures around token counts.")
    d.add_argument("--prior", required=True, metavar="TOKENS.json",
                   help="JSON object domain -> token count (or prior weight)")
    d.add_argument("--runs", required=True, type=int, help="number of mixtures")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="mixopt-swarm", help="output folder (default mixopt-swarm/)")
    d.add_argument("--temperature", type=float, default=0.5,
                   help="prior = share**temperature (default 0.5, RegMix)")
    d.add_argument("--max-ratio", type=_float_or_none, default=15.0, metavar="R|none",
                   help="reject weights above R x the token share (default 15, RegMix)")
    d.add_argument("--caps", metavar="CAPS.json", help="JSON object domain -> maximum weight")
    d.add_argument("--target-tokens", type=float, metavar="T",
                   help="tokens of the target run: caps weights at tokens * E / T")
    d.add_argument("--max-epochs", type=float, metavar="E",
                   help="passes allowed over a domain at the target run (default 1)")
    d.add_argument("--min-weight", type=float, default=2e-4)
    d.add_argument("--round-to", type=_float_or_none, default=2e-4, metavar="STEP|none")
    d.add_argument("--oversample", type=int, default=100)
    d.add_argument("--min-distance", type=float, default=0.0, help="minimum L1 distance")
    d.add_argument("--groups", metavar="GROUPS.json",
                   help="JSON object group -> list of domains (hierarchical draw)")
    d.add_argument("--existing", metavar="RATIOS.csv",
                   help="an existing swarm to extend (farthest-point selection)")
    d.add_argument("--template", metavar="TEMPLATE.json",
                   help="JSON object of keys copied into every run config")
    d.add_argument("--overwrite", action="store_true",
                   help="replace ratios.csv and run_*.json already in --out")

    f = sub.add_parser("fit", help="fit a surrogate on a swarm and optimise the mixture",
                       description="Fit a mixture surrogate on ratios.csv / metrics.csv, score "
                                   "it on held-out runs and optimise the mixture.")
    f.add_argument("ratios", help="CSV, first column the run id, one column per domain")
    f.add_argument("metrics", help="CSV, first column the run id, one column per metric")
    f.add_argument("--target", action="append", required=True,
                   metavar="METRIC|worst|METRIC=WEIGHT",
                   help="metric to minimise; repeat for their mean, METRIC=WEIGHT for a weighted "
                        "mean, 'worst' for the largest (with other --target: of those)")
    f.add_argument("--model", default="loglinear", help=f"surrogate: {', '.join(MODELS)}")
    f.add_argument("--caps", metavar="CAPS.json", help="JSON object domain -> maximum weight")
    f.add_argument("--floors", metavar="FLOORS.json", help="JSON object domain -> minimum weight")
    f.add_argument("--prior", metavar="PRIOR.json",
                   help="JSON object domain -> weight or tokens (search centre, KL reference)")
    f.add_argument("--kl", type=float, default=0.0, help="weight of KL(x || prior)")
    f.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of runs held out to score the surrogate (default 0.2)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default="mixopt-mixture",
                   help="output folder (default mixopt-mixture/)")
    f.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


# --------------------------------------------------------------------------- file readers


def _read_json(path: str, flag: str) -> Any:
    if not Path(path).is_file():
        raise DataError(f"{flag}: no such file {path!r}")
    try:
        return read_json(path, DataError, f"{flag} file")
    except DataError as exc:
        raise DataError(f"{flag}: {exc}") from None


def _read_mapping(path: str | None, flag: str) -> dict[str, float] | None:
    """A JSON object domain -> finite number."""
    if path is None:
        return None
    obj = _read_json(path, flag)
    if not isinstance(obj, dict) or not obj:
        raise DataError(f"{flag}: {path!r} must hold a non-empty JSON object domain -> number")
    bad = {k: v for k, v in obj.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)}
    if bad:
        raise DataError(f"{flag}: {path!r} values must be finite numbers; bad entries "
                        f"{dict(list(bad.items())[:5])!r}")
    return {str(k): float(v) for k, v in obj.items()}


def _read_csv(path: str, what: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what}: no such file {path!r}")
    try:
        frame = pd.read_csv(p, index_col=0)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{what}: cannot read {path!r} as CSV: {exc}") from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{what}: {path!r} has no rows or no columns after the run-id column")
    return frame


def _out_dir(path: str, flag: str = "--out") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise MixtureError(f"{flag}: {path!r} exists and is not a folder")
    return p


def _jsonable(x: Any) -> Any:
    """Floats that JSON can hold (non-finite -> None), recursively."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


# --------------------------------------------------------------------------- design


def _design(args: argparse.Namespace, out: IO[str]) -> int:
    from mixopt.mixture.configs import write_configs
    from mixopt.mixture.design import caps as caps_from_tokens
    from mixopt.mixture.design import design

    prior = _read_mapping(args.prior, "--prior")
    caps = _read_mapping(args.caps, "--caps")
    if args.max_epochs is not None and args.target_tokens is None:
        raise MixtureError("--max-epochs needs --target-tokens (the target run's tokens)")
    if args.target_tokens is not None:
        rep = caps_from_tokens(prior, args.target_tokens,
                               1.0 if args.max_epochs is None else args.max_epochs).to_dict()
        for d, v in (caps or {}).items():
            rep[d] = min(v, rep.get(d, math.inf))
        caps = rep
    groups = None
    if args.groups is not None:
        groups = _read_json(args.groups, "--groups")
        if not isinstance(groups, dict):
            raise DataError(f"--groups: {args.groups!r} must hold a JSON object group -> list")
    existing = _read_csv(args.existing, "--existing") if args.existing else None
    template = None
    if args.template is not None:
        template = _read_json(args.template, "--template")
        if not isinstance(template, dict):
            raise DataError(f"--template: {args.template!r} must hold a JSON object")
    out_dir = _out_dir(args.out)
    stale = sorted(out_dir.glob("run_*.json")) if out_dir.is_dir() else []
    if (stale or (out_dir / "ratios.csv").exists()) and not args.overwrite:
        raise MixtureError(f"--out: {args.out!r} already holds a swarm (ratios.csv / run_*.json); "
                           f"pass --overwrite to replace it")

    swarm = design(prior, args.runs, seed=args.seed, temperature=args.temperature,
                   min_weight=args.min_weight, round_to=args.round_to, max_ratio=args.max_ratio,
                   caps=caps, groups=groups, existing=existing, oversample=args.oversample,
                   min_distance=args.min_distance)
    for p in stale:
        p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    swarm.to_csv(out_dir / "ratios.csv", index_label="run")
    paths = write_configs(swarm, out_dir, template=template)

    share = pd.Series(prior) / sum(prior.values())
    lines = [
        f"Swarm of {len(swarm)} mixtures over {swarm.shape[1]} domains (seed {args.seed}, "
        f"temperature {args.temperature:g}, max_ratio "
        f"{'none' if args.max_ratio is None else f'{args.max_ratio:g}'}"
        + (f", extending {len(existing)} existing runs" if existing is not None else "") + ")",
        f"  {'domain':<24} {'share':>8} {'mean':>8} {'min':>8} {'max':>8} {'cap':>8} "
        f"{'nonzero':>7}",
    ]
    for dom in swarm.columns:
        col = swarm[dom]
        cap = (caps or {}).get(dom)
        cap_s = f"{cap:8.4f}" if cap is not None and cap < 1 else f"{'-':>8}"
        lines.append(f"  {dom:<24} {share[dom]:8.4f} {col.mean():8.4f} {col.min():8.4f} "
                     f"{col.max():8.4f} {cap_s} {(col > 0).mean():7.0%}")
    lines.append(f"  wrote {out_dir / 'ratios.csv'} and {len(paths)} run configs "
                 f"({paths[0].name} ... {paths[-1].name})")
    out.write("\n".join(lines) + "\n")
    return 0


# --------------------------------------------------------------------------- fit


def _target(specs: list[str]) -> Any:
    """``--target`` values -> a target for :func:`mixopt.mixture.fit`."""
    weighted = [s for s in specs if "=" in s]
    if weighted and len(weighted) != len(specs):
        raise MixtureError("--target: give every target as METRIC=WEIGHT or none of them, got "
                           f"{specs!r}")
    if weighted:
        out: dict[str, float] = {}
        for s in specs:
            name, _, w = s.rpartition("=")
            try:
                out[name] = float(w)
            except ValueError:
                raise MixtureError(f"--target {s!r}: expected METRIC=WEIGHT") from None
            if not name:
                raise MixtureError(f"--target {s!r}: expected METRIC=WEIGHT")
        if len(out) != len(specs):
            raise MixtureError(f"--target: a metric is given twice in {specs!r}")
        return out
    if "worst" in specs:
        rest = [s for s in specs if s != "worst"]
        return {"worst": rest} if rest else "worst"
    return specs[0] if len(specs) == 1 else list(specs)


def _fit(args: argparse.Namespace, out: IO[str]) -> int:
    import mixopt.mixture as mm
    from mixopt.mixture._inputs import (
        align,
        check_bounds,
        check_metrics,
        check_ratios,
        domain_vector,
        number,
        parse_target,
    )

    # ---- every argument checked before any work
    R = check_ratios(_read_csv(args.ratios, "ratios"), what=f"ratios ({args.ratios})")
    M = check_metrics(_read_csv(args.metrics, "metrics"), what=f"metrics ({args.metrics})")
    R, M = align(R, M)
    target = _target(args.target)
    parse_target(target, M.columns)
    if args.model not in mm.SURROGATES:
        raise MixtureError(f"--model: unknown mixture model {args.model!r}; choose one of "
                           f"{', '.join(m for m in MODELS if m in mm.SURROGATES)}")
    domains = list(R.columns)
    caps = _read_mapping(args.caps, "--caps")
    floors = _read_mapping(args.floors, "--floors")
    prior = _read_mapping(args.prior, "--prior")
    check_bounds(domain_vector(caps, domains, "--caps", default=1.0),
                 domain_vector(floors, domains, "--floors", default=0.0), domains)
    prior_v = domain_vector(prior, domains, "--prior", default=None, upper=None)
    if prior_v is not None and not prior_v.sum() > 0:
        raise MixtureError(f"--prior: {args.prior!r} must have a positive total")
    kl = number(args.kl, "--kl", low=0.0)
    if kl > 0 and prior is None:
        raise MixtureError("--kl > 0 needs --prior (the mixture the KL term pulls toward)")
    holdout = number(args.holdout, "--holdout", low=0.0, high=1.0, low_open=True,
                     high_open=True)
    if args.seed < 0:
        raise MixtureError(f"--seed must be >= 0, got {args.seed}")
    n = len(R)
    n_test = max(1, int(round(holdout * n)))
    n_train = n - n_test
    need = mm.SURROGATES[args.model].n_params(len(domains))
    if n_train < max(need, 2):
        raise DataError(f"--holdout {holdout:g} leaves {n_train} of {n} runs to fit a "
                        f"{args.model!r} surrogate with {need} parameters; lower --holdout or add "
                        f"runs")
    out_dir = _out_dir(args.out)
    with_figure = importlib.util.find_spec("matplotlib") is not None

    # ---- held-out score, final fit, plan
    perm = np.random.default_rng(args.seed).permutation(n)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    trial = mm.fit(R.iloc[train], M.iloc[train], target=target, model=args.model, seed=args.seed)
    held = trial.score(R.iloc[test], M.iloc[test])
    model = mm.fit(R, M, target=target, model=args.model, seed=args.seed)
    plan = mm.optimize(model, caps=caps, floors=floors, prior=prior, kl=kl, seed=args.seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"plan": out_dir / "plan.json", "model": out_dir / "model.json"}
    model.save(files["model"])
    if with_figure:
        from mixopt.mixture.figures import plot_fit

        files["figure"] = out_dir / "mixture_fit.png"
        norm_prior = None if prior_v is None else pd.Series(prior_v / prior_v.sum(), domains)
        fig = plot_fit(trial, R.iloc[test], M.iloc[test], plan=plan, prior=norm_prior,
                       path=files["figure"])
        import matplotlib.pyplot as plt

        plt.close(fig)
    result = dict(plan.to_dict())
    result["holdout"] = _jsonable({**held, "n_train": n_train, "n_test": n_test,
                                   "seed": args.seed})
    result["files"] = {k: str(v) for k, v in files.items()}
    text = json.dumps(_jsonable(result), indent=1, allow_nan=False)
    files["plan"].write_text(text + "\n", encoding="utf-8")
    if args.json:
        out.write(text + "\n")
        return 0

    def fmt(x: Any, spec: str) -> str:
        return "n/a" if x is None or not math.isfinite(x) else format(x, spec)

    out.write(plan.summary() + "\n")
    out.write(f"  held-out {n_test} of {n} runs (surrogate fitted on the other {n_train}): "
              f"Spearman {fmt(held['spearman'], '.4f')}, Pearson {fmt(held['pearson'], '.4f')}, "
              f"MAE {fmt(held['mae'], '.4g')}, mean relative error "
              f"{fmt(100 * held['mre'], '.3f')}%\n")
    out.write(f"  wrote {', '.join(str(p) for p in files.values())}\n")
    return 0


def main(argv: list[str]) -> int:
    """Run ``mixopt mixture design|fit ...``; bad arguments raise a MixoptError subclass."""
    parser = _parser()
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command == "design":
        return _design(args, sys.stdout)
    return _fit(args, sys.stdout)
