"""Bootstrap speed: FitResult.bootstrap against a warm-started, tightly converged scipy loop.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_speed.py
    ... bootstrap_speed.py --n 1000 --jobs 1 2

Data: Epoch AI's Chinchilla extraction (240 runs after dropping the 5 highest losses), the
mixopt fit of ``chinchilla``. Reference: for each of the same resamples (the multinomial counts
mixopt draws, read back from its seed), scipy L-BFGS-B with an analytic gradient of the
count-weighted objective, started from the full-data optimum, ``ftol=1e-15, gtol=1e-12``.
Prints CPU and wall time, the ratio, the 95% percentile intervals of both and their largest
difference relative to the interval width.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _clock import Clock  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import mixopt  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla" / \
    "svg_extracted_data.csv"



def reference(fit: mixopt.FitResult, n: int, seed: int) -> pd.DataFrame:
    pb = fit.problem()
    pos = np.flatnonzero(pb.weights > 0)
    m = pos.size
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n).astype(float)  # as mixopt draws
    logN, logD = np.log(pb.data["N"].to_numpy()), np.log(pb.data["D"].to_numpy())
    y = np.log(pb.data["loss"].to_numpy())
    d = pb.delta
    theta0 = fit.theta()
    out = np.empty((n, 5))
    for i in range(n):
        w = np.zeros(len(y))
        w[pos] = counts[i] * pb.weights[pos]

        def fun(t: np.ndarray, w: np.ndarray = w) -> tuple[float, np.ndarray]:
            e, a, b, al, be = t
            T = np.stack([np.full_like(logN, e), a - al * logN, b - be * logD])
            mx = T.max(axis=0)
            ex = np.exp(T - mx)
            s = ex.sum(axis=0)
            r = mx + np.log(s) - y
            W = ex / s
            ar = np.abs(r)
            f = float(w @ np.where(ar <= d, 0.5 * r * r, d * (ar - 0.5 * d)))
            psi = w * np.clip(r, -d, d)
            g = np.array([psi @ W[0], psi @ W[1], psi @ W[2], -(psi * W[1]) @ logN,
                          -(psi * W[2]) @ logD])
            return f, g

        res = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                       bounds=[(None, None)] * 3 + [(0.0, 5.0)] * 2,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
        out[i] = res.x
    full = fit.law.from_fit(out)
    return pd.DataFrame(full, columns=list(fit.law.param_names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return 0
    data = pd.read_csv(DATA).sort_values("loss").iloc[:-5]
    fit = mixopt.fit("chinchilla", data)
    print(f"load average {os.getloadavg()}")
    fit.bootstrap(20, seed=1, progress=False)  # warm-up
    boots = {}
    for j in args.jobs:
        with Clock() as c:
            boots[j] = fit.bootstrap(args.n, seed=args.seed, n_jobs=j, progress=False)
        print(f"mixopt bootstrap n={args.n} n_jobs={j}: CPU {c.cpu:.2f} s (this process), wall "
              f"{c.wall:.2f} s, {int(boots[j].converged.sum())} converged")
        boots[j].clock = c
    with Clock() as cr:
        ref = reference(fit, args.n, args.seed)
    print(f"scipy L-BFGS-B x {args.n} (warm start, ftol 1e-15, gtol 1e-12): CPU {cr.cpu:.2f} s, "
          f"wall {cr.wall:.2f} s")
    q = [0.025, 0.975]
    ci_ref = ref.quantile(q).T
    for j, b in boots.items():
        ci = b.conf_int(0.95)
        width = (ci_ref[q[1]] - ci_ref[q[0]]).to_numpy()
        diff = np.max(np.abs(ci.to_numpy() - ci_ref.to_numpy()) / width[:, None])
        print(f"n_jobs={j}: ratio CPU {cr.cpu / b.clock.cpu:.1f}x, wall "
              f"{cr.wall / b.clock.wall:.1f}x; intervals differ by at most {diff:.1e} of "
              "their width")
        if j == args.jobs[0]:
            print(pd.concat({"mixopt": ci, "scipy": ci_ref.set_axis(["lower", "upper"],
                                                                    axis=1)}, axis=1)
                  .to_string(float_format=lambda v: f"{v:.6g}"))
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
