"""Split planning against scipy SLSQP with analytic gradients, K = 2 .. 128 domains.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plan_vs_slsqp.py
    ... plan_vs_slsqp.py --K 2 8 32 128 --budgets 1000

Problem (as in ``plan_speed.py``): K domains with transfer-form laws
L_k = E_k + A_k/N^alpha + B_k/(D'_k + K_k D^rho_k)^beta_k (varied parameters), equal weights,
FLOPs 6 N (D + sum_k D'_k) = budget. Reference: SLSQP over y = (log N, log D, log D'_1..K)
with the budget as an equality constraint, the objective's and the constraint's gradients in
closed form (written here in numpy), from the same 9 starts as ``plan_speed.py``, keeping the
best feasible one; for the frontier, one SLSQP solve per budget warm-started from the previous
budget's solution (all 9 starts where that fails). Both answers are scored by one float64
function (the reference's objective at the plan's N, D, D'_k). Prints CPU and wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _clock import Clock  # noqa: E402
from scipy import optimize  # noqa: E402

from mixopt import plan  # noqa: E402


def make_fits(K: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {f"d{k}": ("transfer", dict(E=1.4 + 0.8 * k / K, A=400.0 * (1 + 0.8 * k / K),
                                       B=300.0 + 800 * k / K, alpha=0.34,
                                       beta=0.25 + 0.08 * k / K, K=10 ** rng.uniform(1, 3),
                                       rho=rng.uniform(0.6, 0.85)))
            for k in range(K)}


class Reference:
    """The weighted transfer-law objective in y = (log N, log D, log D'_k), with gradients."""

    def __init__(self, fits: dict) -> None:
        self.P = {name: np.array([p[name] for _, p in fits.values()]) for name in
                  ("E", "A", "B", "alpha", "beta", "K", "rho")}
        self.K = len(fits)
        self.w = np.full(self.K, 1.0 / self.K)

    def losses(self, y: np.ndarray) -> np.ndarray:
        P = self.P
        N, D, Dk = np.exp(y[0]), np.exp(y[1]), np.exp(y[2:])
        return P["E"] + P["A"] / N ** P["alpha"] + P["B"] / (Dk + P["K"] * D ** P["rho"]) \
            ** P["beta"]

    def fun(self, y: np.ndarray) -> float:
        return float(self.w @ self.losses(y))

    def grad(self, y: np.ndarray) -> np.ndarray:
        P = self.P
        N, D, Dk = np.exp(y[0]), np.exp(y[1]), np.exp(y[2:])
        KD = P["K"] * D ** P["rho"]
        M = Dk + KD
        t = -P["beta"] * P["B"] * M ** (-P["beta"] - 1.0) * self.w
        g = np.empty_like(y)
        g[0] = float(self.w @ (-P["alpha"] * P["A"] * N ** -P["alpha"]))
        g[1] = float(t @ (P["rho"] * KD))
        g[2:] = t * Dk
        return g

    def solve(self, budget: float, starts: list[np.ndarray]) -> tuple[float, np.ndarray | None]:
        log_c = np.log(budget)

        def eq(y: np.ndarray) -> float:
            return np.log(6.0) + y[0] + np.logaddexp.reduce(y[1:]) - log_c

        def eq_jac(y: np.ndarray) -> np.ndarray:
            s = np.exp(y[1:] - np.logaddexp.reduce(y[1:]))
            return np.concatenate([[1.0], s])

        best: tuple[float, np.ndarray | None] = (np.inf, None)
        for y0 in starts:
            res = optimize.minimize(self.fun, y0, jac=self.grad, method="SLSQP",
                                    constraints=[{"type": "eq", "fun": eq, "jac": eq_jac}],
                                    bounds=[(np.log(1e3), log_c)] + [(-30.0, log_c)]
                                    * (self.K + 1),
                                    options={"maxiter": 1000, "ftol": 1e-15})
            if abs(eq(res.x)) < 1e-8 and res.fun < best[0]:
                best = (float(res.fun), res.x)
        return best


def ref_starts(budget: float, K: int) -> list[np.ndarray]:
    out = []
    for dx in (-1.0, 0.0, 1.0):
        x = 0.5 * (np.log(budget) - np.log(120.0)) + dx
        T = budget / (6 * np.exp(x))
        for d in (0.8, 0.5, 0.2):
            out.append(np.concatenate([[x, np.log(d * T)], np.full(K, np.log((1 - d) * T / K))]))
    return out


def score(ref: Reference, p) -> float:
    """The reference objective at a plan's tokens (one float64 scorer for both answers)."""
    with np.errstate(divide="ignore"):
        y = np.log(np.concatenate([[p.N, p.D], list(p.D_spec.values())]))
    return ref.fun(y)


def one(K: int, budget: float, repeat: int) -> None:
    fits = make_fits(K)
    ref = Reference(fits)
    plan.split(fits, budget, baselines=False)  # warm-up
    best = None
    for _ in range(repeat):
        with Clock() as c:
            p = plan.split(fits, budget, baselines=False)
        best = c if best is None or c.cpu < best.cpu else best
    with Clock() as cr:
        f_ref, _ = ref.solve(budget, ref_starts(budget, K))
    f_mix = score(ref, p)
    rel = (f_mix - f_ref) / f_ref
    print(f"K={K:>3}: mixopt CPU {best.cpu * 1e3:8.1f} ms wall {best.wall * 1e3:8.1f} ms "
          f"({p.solver}, {p.n_starts} starts) | SLSQP x9 CPU {cr.cpu * 1e3:8.1f} ms wall "
          f"{cr.wall * 1e3:8.1f} ms | ratio CPU {cr.cpu / best.cpu:5.1f}x wall "
          f"{cr.wall / best.wall:5.1f}x | objective {f_mix:.13f} vs {f_ref:.13f} "
          f"(rel {rel:+.1e}, never worse by 1e-12: {rel <= 1e-12})")


def frontier(K: int, n: int, n_ref: int | None) -> None:
    fits = make_fits(K)
    ref = Reference(fits)
    budgets = np.logspace(18, 24, n)
    plan.frontier(fits, budgets[:5])
    with Clock() as cm:
        f = plan.frontier(fits, budgets)
    sel = np.arange(n) if not n_ref else \
        np.unique(np.linspace(0, n - 1, n_ref).round().astype(int))
    vals, y, prev = [], None, None
    with Clock() as cr:
        for c in budgets[sel]:
            starts = ref_starts(c, K) if y is None else [y + 0.5 * np.log(c / prev)]
            v, y_new = ref.solve(c, starts)
            if y_new is None:
                v, y_new = ref.solve(c, ref_starts(c, K))
            vals.append(v)
            y, prev = y_new, c
    scale = n / len(sel)
    fr = f.frame
    cols = [f"D_spec[d{k}]" for k in range(K)]
    with np.errstate(divide="ignore"):
        ours = np.array([ref.fun(np.log(np.concatenate([[r["N"], r["D"]], r[cols].to_numpy(
            dtype=float)]))) for _, r in fr.iloc[sel].iterrows()])
    vals = np.array(vals)
    rel = (ours - vals) / vals
    print(f"frontier K={K}, {n} budgets: mixopt CPU {cm.cpu:.3f} s wall {cm.wall:.3f} s "
          f"(solver {f.solver}, all success {bool(fr['success'].all())}) | SLSQP warm-started "
          f"CPU {cr.cpu * scale:.2f} s wall {cr.wall * scale:.2f} s"
          + (f" (extrapolated from {len(sel)} budgets)" if scale > 1 else "")
          + f" | ratio CPU {cr.cpu * scale / cm.cpu:.1f}x wall {cr.wall * scale / cm.wall:.1f}x")
    print(f"  relative gap mixopt - SLSQP: max {rel.max():+.1e}, min {rel.min():+.1e}; worse "
          f"than 1e-12 at {int((rel > 1e-12).sum())} of {len(sel)} budgets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--K", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--budget", type=float, default=1e21)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budgets", type=int, default=1000, help="frontier size (0: skip)")
    ap.add_argument("--frontier-K", type=int, default=8)
    ap.add_argument("--ref-budgets", type=int, default=None)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}")
    for K in args.K:
        one(K, args.budget, args.repeat)
    if args.budgets:
        frontier(args.frontier_K, args.budgets, args.ref_budgets)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
