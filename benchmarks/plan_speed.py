"""Split-planning speed: mixopt.plan vs plain scipy SLSQP on the same problem.

Problem: K = 8 domains with transfer-form laws L_k = E + A/N^alpha + B/(D'_k + K_k D^rho_k)^beta
(varied parameters), equal weights, FLOPs 6 N (D + sum_k D'_k) = budget.

Reference: scipy SLSQP over y = (log N, log D, log D'_1..8) with the budget as an equality
constraint, finite-difference gradients, from 9 starts (single plan); for the frontier, one
SLSQP solve per budget warm-started from the previous budget's solution.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/plan_speed.py [--budgets 1000]

Times are CPU time of this process beside wall time (BLAS pinned to one thread). The reference
with analytic gradients, for K = 2 .. 128, is ``benchmarks/plan_vs_slsqp.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import optimize  # noqa: E402

from mixopt import plan  # noqa: E402

K = 8


def make_fits(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {f"d{k}": ("transfer", dict(E=1.4 + 0.1 * k, A=400.0 * (1 + 0.1 * k),
                                       B=300.0 + 100 * k, alpha=0.34, beta=0.25 + 0.01 * k,
                                       K=10 ** rng.uniform(1, 3), rho=rng.uniform(0.6, 0.85)))
            for k in range(K)}


def reference(fits: dict, budget: float, starts: list[np.ndarray]) -> tuple[float, np.ndarray]:
    P = {name: np.array([p[name] for _, p in fits.values()]) for name in
         ("E", "A", "B", "alpha", "beta", "K", "rho")}
    w = np.full(K, 1.0 / K)
    log_c = np.log(budget)

    def obj(y: np.ndarray) -> float:  # the transfer law, written out in plain numpy
        N, D, Dk = np.exp(y[0]), np.exp(y[1]), np.exp(y[2:])
        L = P["E"] + P["A"] / N ** P["alpha"] + P["B"] / (Dk + P["K"] * D ** P["rho"]) ** P["beta"]
        return float(w @ L)

    def budget_eq(y: np.ndarray) -> float:
        return np.log(6.0) + y[0] + np.logaddexp.reduce(y[1:]) - log_c

    best = (np.inf, None)
    for y0 in starts:
        res = optimize.minimize(obj, y0, method="SLSQP",
                                constraints=[{"type": "eq", "fun": budget_eq}],
                                bounds=[(np.log(1e3), log_c)] + [(-30.0, log_c)] * (K + 1),
                                options={"maxiter": 500, "ftol": 1e-12})
        if abs(budget_eq(res.x)) < 1e-8 and res.fun < best[0]:
            best = (float(res.fun), res.x)
    return best


def ref_starts(budget: float) -> list[np.ndarray]:
    out = []
    for dx in (-1.0, 0.0, 1.0):
        x = 0.5 * (np.log(budget) - np.log(120.0)) + dx
        T = budget / (6 * np.exp(x))
        for d in (0.8, 0.5, 0.2):
            out.append(np.concatenate([[x, np.log(d * T)], np.full(K, np.log((1 - d) * T / K))]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", type=int, default=1000)
    ap.add_argument("--ref-budgets", type=int, default=None,
                    help="run the reference frontier on this many budgets (default: all)")
    args = ap.parse_args()
    fits = make_fits()
    C = 1e21
    plan.split(fits, C, baselines=False)  # warm-up (imports)

    print(f"load average {os.getloadavg()}")
    t, c = time.perf_counter(), time.process_time()
    p = plan.split(fits, C, baselines=False)
    t_mix, c_mix = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    ref_obj, _ = reference(fits, C, ref_starts(C))
    t_ref, c_ref = time.perf_counter() - t, time.process_time() - c
    print(f"split plan K={K}: mixopt CPU {c_mix:.3f} s wall {t_mix:.3f} s (objective "
          f"{p.objective_value:.10f}, solver {p.solver}, {p.n_starts} starts); scipy SLSQP x9 "
          f"(finite differences) CPU {c_ref:.3f} s wall {t_ref:.3f} s (objective "
          f"{ref_obj:.10f}); speed-up CPU {c_ref / c_mix:.1f}x wall {t_ref / t_mix:.1f}x; "
          f"mixopt no worse: {p.objective_value <= ref_obj * (1 + 1e-12)}")

    budgets = np.logspace(18, 24, args.budgets)
    t, c = time.perf_counter(), time.process_time()
    f = plan.frontier(fits, budgets)
    t_mix, c_mix = time.perf_counter() - t, time.process_time() - c
    nref = args.ref_budgets or args.budgets
    sel = np.unique(np.linspace(0, len(budgets) - 1, nref).round().astype(int))
    t, c0 = time.perf_counter(), time.process_time()
    ref_vals, y, prev = [], None, None
    for c in budgets[sel]:
        # warm start: N and every token count grow like C^0.5 between neighbouring budgets
        starts = ref_starts(c) if y is None else [y + 0.5 * np.log(c / prev)]
        v, y_new = reference(fits, c, starts)
        if y_new is None:  # warm start failed: all starts
            v, y_new = reference(fits, c, ref_starts(c))
        ref_vals.append(v)
        y, prev = y_new, c
    t_ref = (time.perf_counter() - t) * len(budgets) / len(sel)
    c_ref = (time.process_time() - c0) * len(budgets) / len(sel)
    ours = f.frame["objective"].to_numpy()[sel]
    ref_vals = np.array(ref_vals)
    worse = ours > ref_vals * (1 + 1e-12)
    print(f"frontier {len(budgets)} budgets: mixopt CPU {c_mix:.3f} s wall {t_mix:.3f} s (all "
          f"success: {f.success}); scipy SLSQP warm-started CPU {c_ref:.3f} s wall {t_ref:.3f} s"
          + ("" if len(sel) == len(budgets) else f" (extrapolated from {len(sel)} budgets)")
          + f"; speed-up CPU {c_ref / c_mix:.1f}x wall {t_ref / t_mix:.1f}x")
    print(f"  objectives at {len(sel)} budgets: max relative gap mixopt - scipy "
          f"{np.max((ours - ref_vals) / ref_vals):+.2e}; mixopt worse at {int(worse.sum())}; "
          f"mean mixopt {ours.mean():.8f} vs scipy {ref_vals.mean():.8f}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
