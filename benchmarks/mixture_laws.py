"""L(N, D, h) laws on RegMix's released runs: fit at 1M and 60M parameters, predict 1B.

    python benchmarks/mixture_laws.py            # 13 domains, 3 laws (a few minutes)
    python benchmarks/mixture_laws.py --quick    # pile_cc only

RegMix's release has the same 256 test mixtures trained at 1M and 60M parameters (1B tokens), the
512 training mixtures at 1M, and 64 other mixtures at 1B parameters with 25B tokens. Each law is
fitted per evaluation domain on the 1,024 small runs and predicts the 64 1B runs; reported are
the mean relative error (MRE) and the Spearman of predicted vs actual 1B losses, beside the
Spearman of the 1M-only surrogates of ``mixopt.mixture`` (loglinear, gbm) on the same 64 runs.

Identification. The small runs have two model sizes and one token count. With two sizes the
asymptote E and the size exponent cannot be told apart, and with one token count the data term
is a constant; so the exponents are pinned to Hoffmann et al.'s (alpha 0.34, beta 0.28; B 410.7
for the additive law, gamma_D 1 for the joint law) and the rest is fitted. The MRE therefore
measures those assumptions as much as the laws. The column ``MRE% lvl4`` splits the error: it
is the MRE on the other 60 1B runs once the predictions are shifted by their mean error on 4
random 1B runs (20 draws), i.e. what remains when only the level comes from the target scale.
Model sizes are RegMix's nominal ones (1e6,
6e7, 1e9 parameters).

Second part: ladders simulated from each law on 17 domains with known parameters, fitted back
(largest relative parameter error), timed against a scipy L-BFGS-B fit with the analytic
gradient from the same starts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import mixopt  # noqa: E402
import mixopt.mixture as mm  # noqa: E402
from mixopt.fitting.objective import huber  # noqa: E402
from mixopt.fitting.problem import Problem, make_starts  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "regmix"
PINNED = {
    "mixing_chinchilla": {"alpha": 0.34, "beta": 0.28},
    "mixture_additive": {"alpha": 0.34, "beta": 0.28, "B": 410.7},
    "mixture_joint": {"alpha": 0.34, "beta": 0.28, "gamma_D": 1.0},
}


def small_runs(d: Path, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = []
    for split, scale, N in (("train", "1m", 1e6), ("test", "1m", 1e6), ("test", "60m", 6e7)):
        R, M = mm.read_regmix(d, split=split, scale=scale)
        f = R.copy()
        f["N"], f["D"], f["loss"] = N, 1e9, M[metric].to_numpy()
        rows.append(f)
    R1b, M1b = mm.read_regmix(d, split="test", scale="1B")
    big = R1b.copy()
    big["N"], big["D"] = 1e9, 25e9
    return pd.concat(rows, ignore_index=True), big, M1b


def level_calibrated_mre(pred: np.ndarray, actual: np.ndarray, k: int = 4,
                         draws: int = 20) -> float:
    """MRE (%) on the other 1B runs after shifting the predictions by their mean error on ``k``
    random 1B runs (``draws`` draws, seed 0): what is left once the level, which the small runs
    cannot identify, is taken from a few target-scale runs. A diagnosis, not the issue's target
    (that one uses no 1B run)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        idx = rng.permutation(len(actual))
        cal, ev = idx[:k], idx[k:]
        shift = np.mean(actual[cal] - pred[cal])
        out.append(np.mean(np.abs(pred[ev] + shift - actual[ev]) / actual[ev]))
    return 100 * float(np.mean(out))


def regmix_part(d: Path, quick: bool) -> None:
    R, M = mm.read_regmix(d)
    metrics = ["pile_cc"] if quick else list(M.columns)
    domains = list(R.columns)
    rows = []
    for metric in metrics:
        data, big, M1b = small_runs(d, metric)
        actual = M1b[metric].to_numpy()
        row = {"metric": metric}
        for name, fixed in PINNED.items():
            law = mixopt.laws.get(name, domains=domains)
            c0 = time.process_time()
            res = mixopt.fit(law, data, fixed=fixed, allow_unconverged=True)
            pred = res.predict(big)
            row[f"{name} MRE%"] = 100 * float(np.mean(np.abs(pred - actual) / actual))
            row[f"{name} rho"] = float(spearmanr(pred, actual).statistic)
            row[f"{name} MRE% lvl4"] = level_calibrated_mre(pred, actual)
            row[f"{name} s"] = time.process_time() - c0
        for model in ("loglinear", "gbm"):
            sur = mm.fit(R, M, target=metric, model=model)
            row[f"1M {model} rho"] = float(spearmanr(sur.predict(big[domains]), actual).statistic)
        rows.append(row)
        print(f"  {metric}: done", file=sys.stderr)
    out = pd.DataFrame(rows).set_index("metric")
    if len(out) > 1:
        out.loc["mean"] = out.mean()
    print(out.T.to_string(float_format=lambda v: f"{v:.4f}"))


def simulated_part() -> None:
    rng = np.random.default_rng(0)
    K = 17
    doms = [f"d{j}" for j in range(K)]
    rows = []
    for N in np.geomspace(1e7, 1e9, 4):
        for D in np.geomspace(1e9, 1e11, 3):
            for h in rng.dirichlet(np.full(K, 0.5), 20):
                rows.append({"N": N, "D": D, **dict(zip(doms, h))})
    X = pd.DataFrame(rows)
    truths = {
        "mixing_chinchilla": {"E": 1.7, "alpha": 0.34, "beta": 0.28,
                              **{f"ta_{d}": v for d, v in zip(doms, rng.uniform(5, 7, K))},
                              **{f"tb_{d}": v for d, v in zip(doms, rng.uniform(5, 7, K))}},
        "mixture_additive": {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28,
                             **{f"C_{d}": v for d, v in zip(doms, rng.uniform(0.2, 2, K))},
                             **{f"gamma_{d}": v for d, v in zip(doms, rng.uniform(0.2, 0.9, K))}},
    }
    print("\n== simulated 17-domain ladders (240 runs, no noise): recovery and fit time")
    for name, truth in truths.items():
        law = mixopt.laws.get(name, domains=doms)
        data = X.copy()
        data["loss"] = law.predict(truth, data)
        c0, w0 = time.process_time(), time.perf_counter()
        res = mixopt.fit(law, data)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        err = max(abs(res.params[k] - v) / abs(v) for k, v in truth.items())
        pb = Problem.build(law, data)
        starts = make_starts(pb, None, 0)
        Xd = {c: data[c].to_numpy() for c in law.variables}
        y = np.log(data["loss"].to_numpy())
        lo, hi = pb.fit_bounds()

        def fun(t, Xd=Xd, y=y, law=law):
            f, J = law.log_predict_raw_jac(t[None], Xd)
            r = f[0] - y
            return huber(r, 1e-3).sum(), np.clip(r, -1e-3, 1e-3) @ J[0]

        c1, w1 = time.process_time(), time.perf_counter()
        best = np.inf
        for s in starts:
            r = minimize(fun, s, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)))
            best = min(best, r.fun)
        rcpu, rwall = time.process_time() - c1, time.perf_counter() - w1
        print(f"{name:<18} {law.n_params} params, {starts.shape[0]} starts: mixopt {cpu:.2f} s "
              f"CPU {wall:.2f} s wall, objective {res.objective:.2e}, max rel. param error "
              f"{err:.1e} | scipy L-BFGS-B loop {rcpu:.2f} s CPU {rwall:.2f} s wall, best "
              f"objective {best:.2e} | ratio {rcpu / max(cpu, 1e-9):.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    if (Path(args.data) / "test_mixture_1B.csv").exists():
        print("== RegMix: fit on 1M + 60M runs (1B tokens), predict the 64 1B-parameter runs "
              "(25B tokens)")
        regmix_part(Path(args.data), args.quick)
    else:
        print(f"RegMix data not found under {args.data}; skipping that part", file=sys.stderr)
    simulated_part()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
