"""Fit speed and memory beyond the Chinchilla grid: the L(N, D, D') laws and 100k-run tables.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_scale.py transfer
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fit_scale.py large

``transfer`` (also ``additive``, ``multiplicative``): 300 simulated runs of the law (1% log
noise), mixopt.fit with the law's default grid against a plain scipy L-BFGS-B loop with an
analytic gradient written here in numpy, from the same starts, keeping the best.

``large``: a Chinchilla table of ``--runs`` runs (default 100,000) with the default 4,500
starts; peak traced memory (``tracemalloc``, which sees numpy's buffers) of the mixopt fit, and
the scipy loop on ``--ref-starts`` random starts of the grid, its time extrapolated to all.

Both print CPU time (``time.process_time``) and wall time, their ratios, the objectives (one
float64 scorer: mixopt's Objective.value) and whether the answers agree; and ``os.getloadavg``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _clock import Clock  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import mixopt  # noqa: E402
from mixopt.datasets import simulate  # noqa: E402
from mixopt.fitting.problem import Problem, make_starts  # noqa: E402

TRUTH = {
    "transfer": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=5.0, rho=0.8),
    "additive": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, G=0.5, S=3e8, gamma=0.5),
    "multiplicative": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, S=3e8, gamma=0.2),
    "chinchilla": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
}



def runs(law: str, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = {"N": 10 ** rng.uniform(7, 9.5, n), "D": 10 ** rng.uniform(8, 11, n)}
    if law != "chinchilla":
        X["D_spec"] = 10 ** rng.uniform(7, 10, n)
        X["D"][: n // 10] = 0.0  # some experts from scratch
        X["D_spec"][n // 10: n // 5] = 0.0  # some general models
    return simulate(law, TRUTH[law], X, noise=0.01, seed=seed)


# ---------------------------------------------------------------- reference value + gradient
def _lse_w(T: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    m = np.max(np.stack(T), axis=0)
    ex = [np.exp(t - m) for t in T]
    s = sum(ex)
    return m + np.log(s), [e / s for e in ex]


def ref_fun(name: str, X: dict[str, np.ndarray], y: np.ndarray, delta: float):
    """Objective and analytic gradient of law ``name`` in fit space, plain numpy."""
    logN = np.log(X["N"])
    with np.errstate(divide="ignore"):
        logD = np.log(X["D"])
        if "D_spec" in X:
            logS = np.log(X["D_spec"])
            logT = np.log(X["D"] + X["D_spec"])

    def huber(f: np.ndarray) -> tuple[float, np.ndarray]:
        r = f - y
        a = np.abs(r)
        return float(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum()), \
            np.clip(r, -delta, delta)

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            e, a, b, al, be = t[:5]
            ta = a - al * logN
            if name == "chinchilla":
                f, (we, wa, wb) = _lse_w([np.full_like(logN, e), ta, b - be * logD])
                cols = [we, wa, wb, -wa * logN, -wb * logD]
            elif name == "transfer":
                k, rho = t[5:]
                tk = k + rho * np.where(np.isfinite(logD), logD, -1e300)
                leff = np.logaddexp(logS, tk)
                sig = np.exp(tk - leff)
                f, (we, wa, wb) = _lse_w([np.full_like(logN, e), ta, b - be * leff])
                sl = np.where(sig > 0, sig * np.where(np.isfinite(logD), logD, 0.0), 0.0)
                cols = [we, wa, wb, -wa * logN, -wb * leff, -wb * be * sig, -wb * be * sl]
            else:
                if name == "additive":
                    g, ls, ga = t[5:]
                else:
                    ls, ga = t[5:]
                u = X["D_spec"] * np.exp(-ls)
                dec, q = np.log1p(u), u / (1 + u)
                if name == "additive":
                    f, (we, wa, wb, wg) = _lse_w([np.full_like(logN, e), ta, b - be * logT,
                                                  g - ga * dec])
                    cols = [we, wa, wb, -wa * logN, -wb * logT, wg, wg * ga * q, -wg * dec]
                else:
                    f, (we, wa, wb) = _lse_w([np.full_like(logN, e), ta,
                                              b - be * logT - ga * dec])
                    cols = [we, wa, wb, -wa * logN, -wb * logT, wb * ga * q, -wb * dec]
            val, psi = huber(f)
            grad = np.array([psi @ c for c in cols])
        if not np.isfinite(val) or not np.isfinite(grad).all():
            return np.inf, np.zeros_like(t)
        return val, grad

    return fun


def reference_fit(pb: Problem, starts: np.ndarray) -> tuple[np.ndarray, float]:
    X = {v: pb.data[v].to_numpy() for v in pb.law.variables}
    fun = ref_fun(pb.law.name, X, np.log(pb.data["loss"].to_numpy()), pb.delta)
    lo, hi = pb.fit_bounds()
    bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None)
              for a, b in zip(lo, hi)]
    best = (np.inf, None)
    for s in starts:
        res = minimize(fun, s, jac=True, method="L-BFGS-B", bounds=bounds)
        if res.fun < best[0]:
            best = (float(res.fun), res.x)
    return best[1], best[0]


def report(name: str, fit: mixopt.FitResult, cm: Clock, x_ref: np.ndarray, cr: Clock,
           scale: float, pb: Problem) -> None:
    obj = pb.objective()
    f_mix = float(obj.value(fit.theta()[None])[0])
    f_ref = float(obj.value(x_ref[None])[0])
    p_ref = pb.law.from_fit(x_ref)
    agree = all(abs(fit.params[k] / p_ref[k] - 1) < 1e-3 for k in pb.law.param_names)
    print(f"{name}: objective mixopt {f_mix:.12e}, scipy {f_ref:.12e} (mixopt - scipy "
          f"{f_mix - f_ref:+.2e}); parameters agree to 0.1%: {agree}")
    print("  mixopt " + ", ".join(f"{k}={fit.params[k]:.6g}" for k in pb.law.param_names))
    print("  scipy  " + ", ".join(f"{k}={p_ref[k]:.6g}" for k in pb.law.param_names))
    print(f"  mixopt CPU {cm.cpu:.3f} s, wall {cm.wall:.3f} s; scipy CPU {cr.cpu * scale:.2f} s, "
          f"wall {cr.wall * scale:.2f} s" + (f" (extrapolated x{scale:.0f})" if scale > 1 else ""))
    print(f"  ratio scipy / mixopt: CPU {cr.cpu * scale / cm.cpu:.1f}x, wall "
          f"{cr.wall * scale / cm.wall:.1f}x; load average {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=["transfer", "additive", "multiplicative", "large"])
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--ref-starts", type=int, default=None,
                    help="scipy loop on this many random starts, time extrapolated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    law = "chinchilla" if args.case == "large" else args.case
    n = args.runs or (100_000 if args.case == "large" else 300)
    data = runs(law, n)
    pb = Problem.build(law, data)
    starts = make_starts(pb, None, 0)
    print(f"{law}: {n} runs, {len(starts)} starts; load average {os.getloadavg()}")
    if args.case == "large":
        tracemalloc.start()
        with Clock() as cm:
            fit = mixopt.fit(law, data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  mixopt peak traced memory {peak / 2**20:.1f} MiB "
              f"(the run table itself: {data.memory_usage().sum() / 2**20:.1f} MiB)")
    else:
        mixopt.fit(law, data)  # warm-up
        best = None
        for _ in range(args.repeat):
            with Clock() as c:
                fit = mixopt.fit(law, data)
            best = c if best is None or c.cpu < best.cpu else best
        cm = best
    m = args.ref_starts or (45 if args.case == "large" else len(starts))
    sel = starts if m >= len(starts) else \
        starts[np.sort(np.random.default_rng(0).choice(len(starts), m, replace=False))]
    with Clock() as cr:
        x_ref, _ = reference_fit(pb, sel)
    report(law, fit, cm, x_ref, cr, len(starts) / len(sel), pb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
