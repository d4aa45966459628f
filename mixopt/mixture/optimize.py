"""``mixopt.mixture.optimize``: the best mixture under a fitted surrogate, caps and floors.

Three solvers, one result type (:class:`MixturePlan`, with scipy.optimize's ``success``,
``status``, ``message``):

``"convex"`` (default for ``mixing``, ``loglinear``, ``linear``)
    The exact convex program, solved with cvxpy (Clarabel; SCS as fallback)::

        minimise   sum_m w_m (c_m + exp(t_m . x))  [or max_m ..., or w . x]  + kl * KL(x || prior)
        subject to floors <= x <= caps,  sum x = 1.

    A sum (or maximum) of exponentials of linear functions is convex, and so is the KL term; this
    is olmix's exact proposer. The solver status is checked and reported.
``"mirror"``
    Entropic mirror descent on the capped simplex (Beck and Teboulle 2003), with KL projections
    and a backtracking step, for any surrogate with a gradient (the convex ones; a cross-check).
``"search"`` (default for ``gbm``, ``gp``)
    RegMix's search (Liu et al., ICLR 2025, sec. 3): ``n_samples`` Dirichlet mixtures around the
    prior, predicted, and the mean of the ``top_k`` best; with ``rounds > 1`` olmix's simulation
    search, where each round samples around the previous round's answer with a 4x tighter
    concentration.

Caps and floors hold exactly in every case: the final mixture is projected onto
``{floors <= x <= caps, sum x = 1}`` (a convex set, so the mean of feasible samples stays in it).
With ``n_boot``, the runs are resampled, the surrogate refitted and the mixture re-optimised;
``interval`` is the percentile interval of the resampled surrogates' predicted target at the
plan's mixture, ``weights_interval`` that of the resampled optima.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import MixtureError
from mixopt.mixture._inputs import check_bounds, count, domain_vector, number, rng_from
from mixopt.mixture.model import MixtureModel
from mixopt.mixture.simplex import project_euclidean, project_kl
from mixopt.mixture.surrogates import ExpLinear, Linear

__all__ = ["MixturePlan", "optimize", "CONCENTRATIONS"]

#: Dirichlet concentrations of the search (RegMix's and olmix's 15-point log grid on [0.1, 5]).
CONCENTRATIONS = np.geomspace(0.1, 5.0, 15)


#: Most bootstrap resamples :func:`optimize` runs (each is a refit and a solve).
MAX_BOOT = 100_000


def _num(x: Any) -> Any:
    x = float(x)
    return x if np.isfinite(x) else None


@dataclass
class MixturePlan:
    """The optimal mixture under a surrogate.

    Attributes
    ----------
    weights:
        Series domain -> weight, on the simplex, within ``floors`` and ``caps`` exactly.
    loss:
        The surrogate's predicted target at ``weights`` (without the KL term).
    objective:
        ``loss + kl * KL(weights || prior)``: what was minimised.
    metrics:
        Predicted value of each metric the target reads.
    interval, level, weights_interval:
        Bootstrap interval of the predicted target at ``weights`` (``None`` without
        ``n_boot``), its level, and per-domain intervals of the resampled optima.
    success, status, message:
        ``status`` 0 = solved; 1 = solved inaccurately or iteration limit; 2 = solver failed.
    method:
        ``"convex"``, ``"mirror"`` or ``"search"``.
    support:
        DataFrame per domain: the smallest and largest weight in the fitted swarm; ``outside``
        lists the domains where the plan leaves that range (the surrogate extrapolates there).
    """

    weights: pd.Series
    loss: float
    objective: float
    metrics: pd.Series
    success: bool
    status: int
    message: str
    method: str
    model: str
    target: str
    kl: float
    prior: pd.Series | None
    caps: pd.Series
    floors: pd.Series
    support: pd.DataFrame
    interval: tuple[float, float] | None = None
    level: float | None = None
    weights_interval: pd.DataFrame | None = None
    n_boot: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def outside(self) -> list[str]:
        """Domains whose planned weight lies outside the range seen in the fitted swarm."""
        w = self.weights
        tol = 1e-9
        return [d for d in w.index if w[d] > self.support.loc[d, "max"] + tol
                or w[d] < self.support.loc[d, "min"] - tol]

    def summary(self) -> str:
        head = "Optimal mixture" + ("" if self.success else " (NOT SOLVED)")
        lines = [
            f"{head}: surrogate {self.model!r}, method {self.method!r}, target {self.target}",
            f"  predicted target {self.loss:.6g}"
            + (f"  [{self.interval[0]:.6g}, {self.interval[1]:.6g}] at {self.level:.0%}, "
               f"{self.n_boot} bootstrap resamples" if self.interval is not None else ""),
        ]
        if self.kl > 0:
            lines.append(f"  objective {self.objective:.6g} (KL weight {self.kl:g})")
        lines.append(f"  status {self.status}: {self.message}")
        wd = max(8, *(len(str(d)) for d in self.weights.index))
        lines.append(f"  {'domain':<{wd}} {'weight':>8} {'prior':>8} {'cap':>8} {'swarm max':>9}")
        for d, w in self.weights.sort_values(ascending=False).items():
            pr = f"{self.prior[d]:8.4f}" if self.prior is not None else f"{'-':>8}"
            cap = f"{self.caps[d]:8.4f}" if self.caps[d] < 1 else f"{'-':>8}"
            shown = 0.0 if abs(w) < 5e-7 else w
            lines.append(f"  {d:<{wd}} {shown:8.4f} {pr} {cap} {self.support.loc[d, 'max']:9.4f}")
        out = self.outside
        if out:
            lines.append(f"  outside the fitted swarm's range (extrapolated): {', '.join(out)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become ``None``)."""
        return {
            "weights": {d: _num(v) for d, v in self.weights.items()},
            "loss": _num(self.loss),
            "objective": _num(self.objective),
            "metrics": {m: _num(v) for m, v in self.metrics.items()},
            "success": bool(self.success),
            "status": int(self.status),
            "message": self.message,
            "method": self.method,
            "model": self.model,
            "target": self.target,
            "kl": float(self.kl),
            "prior": None if self.prior is None else {d: _num(v) for d, v in self.prior.items()},
            "caps": {d: _num(v) for d, v in self.caps.items()},
            "floors": {d: _num(v) for d, v in self.floors.items()},
            "interval": None if self.interval is None else [_num(v) for v in self.interval],
            "level": self.level,
            "weights_interval": None if self.weights_interval is None else {
                d: [_num(r["lower"]), _num(r["upper"])]
                for d, r in self.weights_interval.iterrows()},
            "n_boot": int(self.n_boot),
            "outside": self.outside,
        }


# ---------------------------------------------------------------------- solvers
def _kl(x: np.ndarray, prior: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(x > 0, x * (np.log(x) - np.log(prior)), 0.0)
    return t.sum(axis=-1)


def _objective(model: MixtureModel, X: np.ndarray, kl: float, prior: np.ndarray | None
               ) -> np.ndarray:
    f = model._predict_R(X)
    if kl > 0:
        f = f + kl * _kl(X, prior)
    return f


def _solve_convex(model: MixtureModel, lo: np.ndarray, hi: np.ndarray, kl: float,
                  prior: np.ndarray | None) -> tuple[np.ndarray, int, str]:
    import cvxpy as cp

    K = len(model.domains)
    x = cp.Variable(K)
    terms = []
    cols = list(model.target.columns)  # the model's own metrics: already validated
    scale = float(np.mean(np.abs(model.target.combine(model.metrics[cols].to_numpy()))))
    for m in model.target.columns:
        s = model.surrogates[m]
        if isinstance(s, ExpLinear):
            terms.append((s.c + cp.exp(s.t @ x)) / scale)
        elif isinstance(s, Linear):
            terms.append((s.w @ x) / scale)
        else:  # pragma: no cover - guarded by the caller
            raise MixtureError(f"surrogate {s.name!r} has no convex form")
    if model.target.worst:
        obj = cp.max(cp.hstack(terms))
    else:
        obj = sum(w * t for w, t in zip(model.target.weights, terms))
    if kl > 0:
        obj = obj + (kl / scale) * cp.sum(cp.rel_entr(x, prior))
    cons = [x >= lo, x <= hi, cp.sum(x) == 1]
    prob = cp.Problem(cp.Minimize(obj), cons)
    status, msg = 2, "no solver ran"
    # Clarabel with tight tolerances first (corner optima are flat), then with its defaults,
    # then SCS; the first OPTIMAL answer is taken, else the best inaccurate one.
    attempts = [("CLARABEL", {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11}),
                ("CLARABEL", {}), ("SCS", {"eps_abs": 1e-9, "eps_rel": 1e-9})]
    status, msg, fallback = 2, "no solver ran", None
    for solver, settings in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prob.solve(solver=solver, **settings)
        except (cp.error.SolverError, ValueError) as exc:
            status, msg = 2, f"{solver} failed: {exc}"
            continue
        if prob.status == cp.OPTIMAL and x.value is not None:
            return np.asarray(x.value, dtype=float), 0, f"{solver}: optimal"
        if prob.status == cp.OPTIMAL_INACCURATE and x.value is not None and fallback is None:
            fallback = (np.asarray(x.value, dtype=float), 1, f"{solver}: optimal_inaccurate")
        status, msg = 2, f"{solver}: {prob.status}"
    if fallback is not None:
        return fallback
    return np.full(K, np.nan), status, msg


def _gradient(model: MixtureModel, x: np.ndarray) -> np.ndarray:
    cols = model.target.columns
    if model.target.worst:
        vals = np.array([model.surrogates[m].predict(x[None])[0] for m in cols])
        return model.surrogates[cols[int(np.argmax(vals))]].gradient(x[None])[0]
    g = np.zeros_like(x)
    for w, m in zip(model.target.weights, cols):
        g += w * model.surrogates[m].gradient(x[None])[0]
    return g


def _solve_mirror(model: MixtureModel, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  kl: float, prior: np.ndarray | None, max_iter: int, tol: float
                  ) -> tuple[np.ndarray, int, str]:
    x = project_kl(x0, lo, hi)
    f = float(_objective(model, x[None], kl, prior)[0])
    eta = 1.0
    scale = max(abs(f), 1e-12)
    for it in range(1, max_iter + 1):
        g = _gradient(model, x)
        if kl > 0:
            with np.errstate(divide="ignore"):
                g = g + kl * (np.log(np.maximum(x, 1e-300)) - np.log(prior) + 1.0)
        g = g / scale
        for _ in range(60):
            y = x * np.exp(-eta * (g - g.max()))
            xn = project_kl(y, lo, hi)
            fn = float(_objective(model, xn[None], kl, prior)[0])
            if fn <= f + 1e-15 * abs(f):
                break
            eta *= 0.5
        else:
            return x, 0, f"mirror descent: no further decrease after {it} iterations"
        step = float(np.max(np.abs(xn - x)))
        x, f = xn, fn
        eta *= 1.5
        if step < tol:
            return x, 0, f"mirror descent converged in {it} iterations (step {step:.1e})"
    return x, 1, f"mirror descent: iteration limit {max_iter} reached"


def _dirichlet_rows(rng: np.random.Generator, centre: np.ndarray, alphas: np.ndarray
                    ) -> np.ndarray:
    shape = alphas[:, None] * centre[None, :] * centre.size
    G = rng.standard_gamma(np.maximum(shape, 1e-300))
    G[:, centre <= 0] = 0.0
    s = G.sum(axis=1, keepdims=True)
    ok = s[:, 0] > 0
    return G[ok] / s[ok]


def _solve_search(model: MixtureModel, centre: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  kl: float, prior: np.ndarray | None, rng: np.random.Generator,
                  n_samples: int, top_k: int, rounds: int) -> tuple[np.ndarray, int, str]:
    best = None
    conc = CONCENTRATIONS
    for _ in range(rounds):
        alphas = rng.choice(conc, size=n_samples)
        X = project_euclidean(_dirichlet_rows(rng, centre, alphas), lo, hi)
        F = _objective(model, X, kl, prior)
        F = np.where(np.isfinite(F), F, np.inf)
        k = min(top_k, X.shape[0])
        top = np.argpartition(F, k - 1)[:k]
        cand = project_euclidean(X[top].mean(axis=0), lo, hi)
        if best is None or _objective(model, cand[None], kl, prior)[0] <= \
                _objective(model, best[None], kl, prior)[0]:
            best = cand
        centre = np.maximum(best, 1e-6)
        centre = centre / centre.sum()
        conc = conc * 4.0
    rounds_txt = f"{rounds} rounds of " if rounds > 1 else ""
    return best, 0, (f"search: mean of the best {min(top_k, n_samples)} of {rounds_txt}"
                     f"{n_samples} sampled mixtures")


# ---------------------------------------------------------------------- entry point
def _solve(model: MixtureModel, method: str, lo: np.ndarray, hi: np.ndarray, kl: float,
           prior: np.ndarray | None, rng: np.random.Generator, opts: dict[str, Any]
           ) -> tuple[np.ndarray, int, str]:
    centre = prior if prior is not None else model.ratios.to_numpy().mean(axis=0)
    if method == "convex":
        x, status, msg = _solve_convex(model, lo, hi, kl, prior)
    elif method == "mirror":
        x, status, msg = _solve_mirror(model, centre, lo, hi, kl, prior, opts["max_iter"],
                                       opts["tol"])
    else:
        x, status, msg = _solve_search(model, centre, lo, hi, kl, prior, rng,
                                       opts["n_samples"], opts["top_k"], opts["rounds"])
    if np.isfinite(x).all():
        x = project_euclidean(np.clip(x, lo, hi), lo, hi)
    return x, status, msg


def optimize(
    model: MixtureModel,
    *,
    caps: Any = None,
    floors: Any = None,
    prior: Any = None,
    kl: float = 0.0,
    seed: int | np.random.Generator = 0,
    method: str = "auto",
    n_samples: int = 100_000,
    top_k: int = 128,
    rounds: int = 1,
    n_boot: int = 0,
    level: float = 0.95,
    max_iter: int = 5000,
    tol: float = 1e-10,
    n_jobs: int | None = None,
    progress: bool = False,
) -> MixturePlan:
    """The mixture that minimises ``model``'s predicted target within caps and floors.

    Parameters
    ----------
    model:
        A fitted :class:`~mixopt.mixture.MixtureModel`.
    caps, floors:
        Mapping (or Series) domain -> largest / smallest allowed weight (e.g.
        :func:`mixopt.mixture.caps` from token counts); unnamed domains are unconstrained.
        Caps summing below 1 (or floors above 1) raise
        :class:`~mixopt.errors.InfeasiblePlanError`.
    prior:
        Mapping domain -> weight (or token count; normalised): the centre of the search and the
        reference of the KL term. Default: the fitted swarm's mean mixture for the search.
    kl:
        Weight of ``KL(x || prior)`` added to the objective (needs ``prior``); it keeps the
        answer near the prior, away from the corners an unconstrained surrogate prefers.
    seed:
        Seed or Generator of the search and of the bootstrap.
    method:
        ``"auto"`` (convex for mixing / loglinear / linear, search otherwise), ``"convex"``,
        ``"mirror"`` or ``"search"``.
    n_samples, top_k, rounds:
        The search's sample size, the number of best samples averaged, and its rounds.
    n_boot, level:
        Bootstrap resamples of the runs (0: none) and the interval's level.
    max_iter, tol:
        Mirror descent's limits.
    n_jobs, progress:
        joblib workers and a tqdm bar for the bootstrap.
    """
    if not isinstance(model, MixtureModel):
        raise MixtureError(f"optimize needs a MixtureModel (from mixopt.mixture.fit), got "
                           f"{type(model).__name__}")
    domains = list(model.domains)
    cap_v = domain_vector(caps, domains, "caps", default=1.0)
    floor_v = domain_vector(floors, domains, "floors", default=0.0)
    lo, hi = check_bounds(cap_v, floor_v, domains)
    prior_v = domain_vector(prior, domains, "prior", default=None, upper=None)
    if prior_v is not None:
        if prior_v.sum() <= 0:
            raise MixtureError("prior must have a positive total")
        prior_v = prior_v / prior_v.sum()
    kl = number(kl, "kl", low=0.0)
    if kl > 0 and prior_v is None:
        raise MixtureError("kl > 0 needs a prior (the mixture the KL term pulls toward)")
    convex_ok = all(isinstance(s, (ExpLinear, Linear)) for s in model.surrogates.values())
    if method == "auto":
        method = "convex" if convex_ok else "search"
    if method not in ("convex", "mirror", "search"):
        raise MixtureError(f"method must be 'auto', 'convex', 'mirror' or 'search', got "
                           f"{method!r}")
    if method in ("convex", "mirror") and not convex_ok:
        raise MixtureError(f"method {method!r} needs a smooth parametric surrogate (mixing, "
                           f"loglinear, linear); {model.model!r} is searched by sampling")
    opts = {"n_samples": count(n_samples, "n_samples"),
            "top_k": count(top_k, "top_k"),
            "rounds": count(rounds, "rounds"),
            "max_iter": count(max_iter, "max_iter"),
            "tol": number(tol, "tol", low=0.0, low_open=True)}
    n_boot = count(n_boot, "n_boot", 0)
    if n_boot > MAX_BOOT:
        raise MixtureError(f"n_boot must be at most {MAX_BOOT:,} resamples, got {n_boot!r}")
    level = number(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    rng = rng_from(seed)
    x, status, msg = _solve(model, method, lo, hi, kl, prior_v, rng, opts)
    ok = status == 0 and bool(np.isfinite(x).all())
    if not np.isfinite(x).all():
        loss = objective = float("nan")
        mets = pd.Series({m: float("nan") for m in model.target.columns})
    else:
        loss = float(model._predict_R(x[None])[0])
        objective = float(_objective(model, x[None], kl, prior_v)[0])
        mets = pd.Series({m: float(model.surrogates[m].predict(x[None])[0])
                          for m in model.target.columns})
    R = model.ratios.to_numpy()
    support = pd.DataFrame({"min": R.min(axis=0), "max": R.max(axis=0)}, index=domains)
    plan = MixturePlan(
        weights=pd.Series(x, index=domains, name="weight"), loss=loss, objective=objective,
        metrics=mets, success=ok, status=status, message=msg, method=method, model=model.model,
        target=model.target.describe(), kl=kl,
        prior=None if prior_v is None else pd.Series(prior_v, index=domains),
        caps=pd.Series(hi, index=domains), floors=pd.Series(lo, index=domains), support=support,
    )
    if n_boot and ok:
        _bootstrap(plan, model, method, lo, hi, kl, prior_v, rng, opts, n_boot, level,
                   n_jobs, progress)
    return plan


def _one_boot(model: MixtureModel, idx: np.ndarray, x: np.ndarray, method: str, lo, hi, kl,
              prior, seed: int, opts: dict[str, Any]) -> tuple[float, np.ndarray]:
    m = model.refit(idx)
    xb, _, _ = _solve(m, method, lo, hi, kl, prior, np.random.default_rng(seed), opts)
    return float(m._predict_R(x[None])[0]), xb


def _bootstrap(plan: MixturePlan, model: MixtureModel, method: str, lo, hi, kl, prior, rng,
               opts, n_boot: int, level: float, n_jobs: int | None, progress: bool) -> None:
    import warnings

    from joblib import Parallel, delayed
    from tqdm import tqdm

    n = model.n_runs
    idx = [rng.integers(0, n, size=n) for _ in range(n_boot)]
    seeds = rng.integers(0, 2**31 - 1, size=n_boot)
    x = plan.weights.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        jobs = (delayed(_one_boot)(model, i, x, method, lo, hi, kl, prior, int(s), opts)
                for i, s in zip(idx, seeds))
        out = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=n_boot,
                        disable=not progress, desc="bootstrap"))
    preds = np.array([o[0] for o in out])
    W = np.array([o[1] for o in out])
    a = (1 - level) / 2
    plan.interval = (float(np.quantile(preds, a)), float(np.quantile(preds, 1 - a)))
    plan.level = float(level)
    plan.n_boot = n_boot
    plan.weights_interval = pd.DataFrame(
        {"lower": np.quantile(W, a, axis=0), "upper": np.quantile(W, 1 - a, axis=0)},
        index=plan.weights.index)
