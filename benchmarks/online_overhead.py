"""Time per ``update`` of every mixopt.online rule for 8, 64 and 512 skills.

Times are the best of 5 runs of ``--updates`` updates each (ADO's include its refits, every
10 updates on the last 64 steps; its per-domain refit time per fitter is printed last).
Reference: a plain numpy Skill-It update (ring buffer + matrix-vector product + softmax) on the
same losses; the script checks that mixopt's SkillIt gives the same weights and prints the
overhead ratio. Target: under 50 microseconds per SkillIt update at 64 skills.

    .venv/bin/python benchmarks/online_overhead.py [--updates 300] [--sizes 8 64 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mixopt.online as mo


def reference_skillit(A: np.ndarray, losses: np.ndarray, eta: float, window: int) -> np.ndarray:
    """Plain numpy Skill-It (Chen et al. 2023, Algorithm 1): returns the last mixture."""
    buf = np.zeros((window, A.shape[1]))
    w = None
    for t, L in enumerate(losses):
        buf[t % window] = L
        z = eta * (A @ buf[: min(t + 1, window)].sum(axis=0))
        e = np.exp(z - z.max())
        w = e / e.sum()
    return w


def rules(k: int, A: np.ndarray) -> dict:
    return {
        "Static": lambda: mo.Stratified(k),
        "SkillIt": lambda: mo.SkillIt(A, eta=0.5, window=3),
        "DoReMi": lambda: mo.DoReMi(np.ones(k)),
        "ODM": lambda: mo.ODM(k),
        "Aioli": lambda: mo.Aioli(k, lp_rounds=1, lp_steps=1, update_every=k + 10),
        # refits included: every 10 updates on the last 64 steps, from the first update on
        "ADO grid (refit /10)": lambda: mo.ADO(k, refit_every=10, max_points=64, floor=0.1 / k,
                                              start_step=0, ignore_steps=0, fit_stride=1,
                                              fitter="grid"),
        "ADO ref. (refit /10)": lambda: mo.ADO(k, refit_every=10, max_points=64, floor=0.1 / k,
                                              start_step=0, ignore_steps=0, fit_stride=1),
        "EMA(Floor(SkillIt))": lambda: mo.EMA(mo.Floor(mo.SkillIt(A), 0.1 / k), 0.9),
    }


def time_fitters(points: int = 100, repeats: int = 3) -> dict[str, float]:
    """Seconds per domain and refit of ADO's fitters on ``points`` points of one curve."""
    from mixopt.online.ado_fit import fit_laws, fit_mixopt, fit_reference

    n = np.geomspace(1e3, 1e6, points)
    y = 2.5 + 5.0 * n**-0.3 * (1 + 0.01 * np.random.default_rng(1).standard_normal(points))
    out = {}
    for name, fn in (("reference", lambda: fit_reference(n, y)),
                     ("mixopt", lambda: fit_mixopt(n, y)),
                     ("grid", lambda: fit_laws(n[None], y[None]))):
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    return out


def time_rule(factory, losses: np.ndarray, repeats: int = 5) -> tuple[float, np.ndarray]:
    """Best over ``repeats`` fresh runs of the mean time per update."""
    best = np.inf
    for _ in range(repeats):
        rule = factory()
        t0 = time.perf_counter()
        for L in losses:
            w = rule.update(L)
        best = min(best, (time.perf_counter() - t0) / len(losses))
    return best, w


def time_reference(A: np.ndarray, losses: np.ndarray, repeats: int = 5) -> tuple[float, np.ndarray]:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = reference_skillit(A, losses, 0.5, 3)
        best = min(best, (time.perf_counter() - t0) / len(losses))
    return best, ref


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512])
    args = parser.parse_args(argv)
    sizes = args.sizes
    rng = np.random.default_rng(0)
    print(f"{'rule':<22}" + "".join(f"{f'k={k} (us)':>14}" for k in sizes))
    table: dict[str, list[float]] = {}
    checks = []
    for k in sizes:
        A = rng.uniform(0, 1, (k, k)) / k
        # losses decreasing like a training run, with noise
        steps = np.arange(1, args.updates + 1)[:, None]
        losses = 2.0 + 3.0 * steps ** -0.3 * rng.uniform(0.8, 1.2, (1, k))
        losses = losses + 0.01 * rng.standard_normal(losses.shape)
        for name, factory in rules(k, A).items():
            if name.startswith("ADO ref.") and k > 8:  # linear in k: see the per-domain time
                table.setdefault(name, []).append(float("nan"))
                continue
            sec, w = time_rule(factory, losses)
            table.setdefault(name, []).append(sec * 1e6)
            if name == "SkillIt":
                ref_sec, ref = time_reference(A, losses)
                table.setdefault("numpy reference SkillIt", []).append(ref_sec * 1e6)
                agree = np.allclose(w, ref, rtol=1e-12, atol=0)
                checks.append((k, agree, sec / ref_sec, float(np.abs(w - ref).max())))
    for name, vals in table.items():
        print(f"{name:<22}" + "".join(f"{v:>14.1f}" if np.isfinite(v) else f"{'n/a':>14}"
                                      for v in vals))
    print()
    for k, agree, ratio, err in checks:
        print(f"SkillIt k={k}: agrees with numpy reference: {agree} (max |diff| {err:.1e}); "
              f"mixopt / reference time = {ratio:.2f}x")
    if 64 in sizes:
        us64 = table["SkillIt"][sizes.index(64)]
        print(f"SkillIt at 64 skills: {us64:.1f} us per update "
              f"({'meets' if us64 < 50 else 'MISSES'} the 50 us target)")
    fits = time_fitters()
    print("ADO refit, seconds per domain and refit on 100 points: "
          + ", ".join(f"{name} {sec:.4f} s" for name, sec in fits.items()))


if __name__ == "__main__":
    main()
