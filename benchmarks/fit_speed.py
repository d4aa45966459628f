"""Speed of mixopt.fit against a plain multi-start L-BFGS-B loop on the Chinchilla data.

    python benchmarks/fit_speed.py            # full reference: 4,500 scipy L-BFGS-B runs
    python benchmarks/fit_speed.py --quick    # reference on a subset of starts, extrapolated

Both minimise the same objective (Hoffmann et al. 2022, approach 3: sum of Huber(1e-3) of log
residuals, log-sum-exp prediction) from the same 4,500-point grid and keep the best. The reference
is the straightforward loop: ``scipy.optimize.minimize(method="L-BFGS-B")`` per start, with an
analytic gradient written in plain numpy (a fair reference: finite-difference gradients would make
it several times slower). Also times a 1,000-resample bootstrap (n_jobs=1 and 2).
Times are CPU time of this process (``time.process_time``) beside wall time; BLAS and OpenMP
are pinned to one thread before numpy is imported; the load average is printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import mixopt  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla" / \
    "svg_extracted_data.csv"


def reference_fit(N: np.ndarray, D: np.ndarray, loss: np.ndarray, starts: np.ndarray,
                  delta: float = 1e-3) -> tuple[np.ndarray, float]:
    """One scipy L-BFGS-B run per start (parameters e, a, b, alpha, beta), keep the best."""
    logN, logD, y = np.log(N), np.log(D), np.log(loss)

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        e, a, b, al, be = t
        T = np.stack([np.full_like(logN, e), a - al * logN, b - be * logD])
        m = T.max(axis=0)
        ex = np.exp(T - m)
        s = ex.sum(axis=0)
        r = m + np.log(s) - y
        w = ex / s
        ar = np.abs(r)
        f = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)).sum()
        psi = np.clip(r, -delta, delta)
        g = np.array([psi @ w[0], psi @ w[1], psi @ w[2], -(psi * w[1]) @ logN,
                      -(psi * w[2]) @ logD])
        return float(f), g

    bounds = [(None, None)] * 3 + [(0.0, 5.0)] * 2
    best_f, best_x = np.inf, None
    for s in starts:
        res = minimize(fun, s, jac=True, method="L-BFGS-B", bounds=bounds)
        if res.fun < best_f:
            best_f, best_x = float(res.fun), res.x
    return best_x, best_f


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="run the reference on --subset starts and extrapolate its time")
    ap.add_argument("--subset", type=int, default=450)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="mixopt timing: best of this many")
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: {DATA} not found (Epoch AI's Chinchilla extraction)")
        return 0
    raw = pd.read_csv(DATA)
    data = raw.sort_values("loss").iloc[:-5]  # Epoch's protocol: drop the 5 highest losses
    law = mixopt.laws.get("chinchilla")

    mixopt.fit(law, data)  # warm-up (imports, caches)
    print(f"load average {os.getloadavg()}")
    times = []
    for _ in range(args.repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fit = mixopt.fit(law, data)
        times.append((time.process_time() - c0, time.perf_counter() - w0))
    c_mix, w_mix = min(t[0] for t in times), min(t[1] for t in times)

    frame = fit.data
    starts = law.grid()
    label = f"all {len(starts)} starts"
    if args.quick:
        idx = np.random.default_rng(0).choice(len(starts), args.subset, replace=False)
        starts_run = starts[idx]
        label = f"{args.subset} random starts of {len(starts)}, time EXTRAPOLATED to all"
    else:
        starts_run = starts
    c0, w0 = time.process_time(), time.perf_counter()
    x_ref, f_ref = reference_fit(frame["N"].to_numpy(), frame["D"].to_numpy(),
                                 frame["loss"].to_numpy(), starts_run)
    scale = len(starts) / len(starts_run)
    c_ref, w_ref = (time.process_time() - c0) * scale, (time.perf_counter() - w0) * scale
    p_ref = law.from_fit(x_ref)
    f_mix = float(fit.problem().objective().value(fit.theta()[None])[0])  # one scorer

    print("Chinchilla approach 3 on Epoch AI's 240 runs, 4,500-start grid")
    print(f"{'':<10}{'objective':>18}" + "".join(f"{k:>12}" for k in law.param_names)
          + f"{'CPU (s)':>10}{'wall (s)':>10}")
    print(f"{'mixopt':<10}{f_mix:>18.12e}"
          + "".join(f"{fit.params[k]:>12.6g}" for k in law.param_names)
          + f"{c_mix:>10.3f}{w_mix:>10.3f}")
    print(f"{'reference':<10}{f_ref:>18.12e}"
          + "".join(f"{p_ref[k]:>12.6g}" for k in law.param_names)
          + f"{c_ref:>10.2f}{w_ref:>10.2f}")
    print(f"reference: scipy L-BFGS-B per start ({label})")
    agree = all(abs(fit.params[k] / p_ref[k] - 1) < 1e-3 for k in law.param_names)
    print(f"objective: mixopt {'<=' if f_mix <= f_ref else '>'} reference "
          f"(difference {f_mix - f_ref:+.3e}); parameters agree to 0.1%: {agree}")
    print(f"speed ratio (reference / mixopt): CPU {c_ref / c_mix:.0f}x, wall {w_ref / w_mix:.0f}x"
          f" (mixopt best of {args.repeat}; CPU/wall runs "
          + ", ".join(f"{c:.3f}/{w:.3f}" for c, w in times) + ")")
    obj = fit.problem().objective()
    grid = law.grid()
    for what, fn in (("objective", obj.value), ("objective + gradient + Gauss-Newton matrix",
                                                 obj.system)):
        best = np.inf
        for _ in range(5):
            c0 = time.process_time()
            fn(grid)
            best = min(best, time.process_time() - c0)
        print(f"one pass over all {len(grid)} starts x {obj.n} runs, {what}: "
              f"{best * 1e3:.1f} ms CPU (best of 5)")
    print(f"load average {os.getloadavg()}")

    for jobs in (1, 2):
        c0, w0 = time.process_time(), time.perf_counter()
        boot = fit.bootstrap(args.n_boot, seed=0, n_jobs=jobs, progress=False)
        c_b, w_b = time.process_time() - c0, time.perf_counter() - w0
        print(f"\nbootstrap: {args.n_boot} resamples, n_jobs={jobs}: CPU {c_b:.2f} s, wall "
              f"{w_b:.2f} s ({int(boot.converged.sum())} converged)")
    ci = boot.conf_int(0.95)
    print(ci.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
