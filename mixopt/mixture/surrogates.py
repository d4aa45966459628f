"""Per-metric surrogates of the loss as a function of the mixture: one regressor per metric.

Each surrogate maps mixtures ``R`` ``(n, K)`` (rows on the simplex) to one metric. Five models:

``"mixing"``
    Ye et al. (2024), "Data Mixing Laws", eq. (1): ``L = c + k exp(t . r)``; on the simplex ``k``
    is absorbed into the slopes (:mod:`mixopt.laws.mixing`), so ``L = c + exp(t . r)``. Fitted
    with mixopt's engine (:func:`mixopt.fit`): Huber (``delta``, default 1e-3) on log residuals,
    multi-start from variable-projection starts.
``"loglinear"``
    olmix's log-linear regression ``L = exp(log c) + exp(t . r)``, the same surface, fitted as
    olmix does on the loss scale: Huber (delta 0.02) on residuals, here relative to the metric's
    mean so that the fit does not depend on the units of the loss; scipy's trust-region least
    squares with the analytic Jacobian from the same starts.
``"linear"``
    RegMix's linear baseline (Liu et al., ICLR 2025, sec. 3): ``L = w . r`` by least squares
    (an intercept is redundant on the simplex).
``"gbm"``
    Gradient-boosted trees, RegMix's main surrogate (LightGBM in its code). mixopt uses
    scikit-learn's ``HistGradientBoostingRegressor``: the same histogram GBDT algorithm, and the
    same optional dependency also gives the Gaussian process, with deterministic results for a
    seed and no extra native library; ``benchmarks/mixture_regmix.py`` runs LightGBM with RegMix's
    settings beside it.
``"gp"``
    A Gaussian process (olmix): constant x ARD-RBF kernel plus white noise, targets normalised,
    with a predictive standard deviation.

The two parametric exponential surfaces and the linear model expose their parameters so that
:func:`mixopt.mixture.optimize` can solve the exact convex program; trees and GPs are searched by
sampling.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from mixopt.errors import DataError, FitError, MixtureError

__all__ = ["Surrogate", "ExpLinear", "Linear", "GBM", "GP", "SURROGATES", "make"]


class Surrogate:
    """One metric as a function of the mixture. Subclasses set ``name`` and implement the API."""

    name: ClassVar[str] = ""
    convex: ClassVar[bool] = False  # exact convex program available
    smooth: ClassVar[bool] = False  # gradient available (mirror descent)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise MixtureError(
                f"unknown option(s) {sorted(unknown)} for surrogate {self.name!r}; it takes "
                f"{sorted(self.defaults)}"
            )
        self.options = {**self.defaults, **options}
        self.state: dict[str, Any] = {}

    @classmethod
    def n_params(cls, K: int) -> int:
        return K + 1

    def get_params(self) -> dict[str, Any]:
        return dict(self.options)

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> Surrogate:
        raise NotImplementedError

    def predict(self, R: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, R: np.ndarray) -> np.ndarray:
        raise MixtureError(f"surrogate {self.name!r} has no gradient")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options, "state": _jsonable(self.state)}

    #: state entries that must be finite vectors of one value per domain (parametric models)
    vector_state: ClassVar[tuple[str, ...]] = ()
    scalar_state: ClassVar[tuple[str, ...]] = ()

    def restore(self, state: dict[str, Any], R: np.ndarray, y: np.ndarray, seed: int) -> None:
        """Rebuild from :meth:`to_dict`'s state (and the training data, for non-parametric ones);
        a tampered state is refused with a DataError naming the entry."""
        if not isinstance(state, dict):
            raise DataError(f"surrogate {self.name!r}: state must be a mapping")
        out = dict(state)
        if "converged" in state and not isinstance(state["converged"], bool):
            raise DataError(f"surrogate {self.name!r} state 'converged' must be true or false, "
                            f"got {state['converged']!r:.40}")
        K = R.shape[1]
        for key in self.vector_state:
            v = _finite(state.get(key), f"surrogate {self.name!r} state {key!r}")
            if v.shape != (K,):
                raise DataError(f"surrogate {self.name!r} state {key!r} has shape {v.shape}, "
                                f"expected ({K},) (one value per domain)")
            out[key] = v
        for key in self.scalar_state:
            v = _finite(state.get(key), f"surrogate {self.name!r} state {key!r}")
            if v.shape != ():
                raise DataError(f"surrogate {self.name!r} state {key!r} must be a number")
            out[key] = float(v)
        self.state = out

    def describe(self, domains: list[str]) -> str:
        return ""


def _finite(value: Any, what: str) -> np.ndarray:
    if value is None or isinstance(value, (bool, str)):
        raise DataError(f"{what} is missing or not numeric: {value!r:.60}")
    raw = np.asarray(value, dtype=object)
    if any(isinstance(x, (bool, np.bool_, str, bytes)) for x in raw.reshape(-1)):
        raise DataError(f"{what} is not numeric: {value!r:.60}")
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{what} is not numeric: {value!r:.60}") from None
    if not np.isfinite(v).all():
        raise DataError(f"{what} has non-finite values")
    return v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


class ExpLinear(Surrogate):
    """``L = c + exp(t . r)`` (Ye et al. 2024 eq. 1 on the simplex; olmix's log-linear form)."""

    convex = True
    smooth = True
    vector_state = ("t",)
    scalar_state = ("c",)

    @property
    def c(self) -> float:
        return float(self.state["c"])

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self.state["t"], dtype=float)

    def predict(self, R: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return self.c + np.exp(np.asarray(R, dtype=float) @ self.t)

    def gradient(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, dtype=float)
        return np.exp(R @ self.t)[..., None] * self.t

    def _starts(self, R: np.ndarray, y: np.ndarray) -> np.ndarray:
        from mixopt.laws.mixing import MixingLaw

        law = MixingLaw([f"r{j}" for j in range(R.shape[1])],
                        max_slope=self.options["max_slope"])
        return law.data_starts({f"r{j}": R[:, j] for j in range(R.shape[1])}, np.log(y))

    def describe(self, domains: list[str]) -> str:
        order = np.argsort(self.t)
        best = ", ".join(f"{domains[j]} {self.t[j]:+.3g}" for j in order[:3])
        return f"c = {self.c:.4g}; most loss-lowering slopes t: {best}"


class Mixing(ExpLinear):
    name = "mixing"
    defaults: ClassVar[dict[str, Any]] = {"delta": 1e-3, "max_slope": 50.0}

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> Mixing:
        import pandas as pd

        from mixopt.fitting import fit as fit_law
        from mixopt.laws.mixing import MixingLaw

        K = R.shape[1]
        comps = [f"r{j}" for j in range(K)]
        law = MixingLaw(comps, max_slope=self.options["max_slope"])
        data = pd.DataFrame(R, columns=comps)
        data["loss"] = y
        res = fit_law(law, data, delta=self.options["delta"], allow_unconverged=True, seed=seed)
        self.state = {"c": res.params["c"],
                      "t": np.array([res.params[f"t_{c}"] for c in comps]),
                      "converged": bool(res.success)}
        if not res.success:
            warnings.warn(f"mixing-law surrogate: {res.message}", UserWarning, stacklevel=4)
        return self


class LogLinear(ExpLinear):
    name = "loglinear"
    defaults: ClassVar[dict[str, Any]] = {"delta": 0.02, "max_slope": 50.0}

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> LogLinear:
        from scipy.optimize import least_squares

        K = R.shape[1]
        scale = float(np.mean(y))
        ys = y / scale
        starts = self._starts(R, y)
        starts[:, 0] -= np.log(scale)
        m = self.options["max_slope"]
        lo = np.concatenate([[-300.0], np.full(K, -m)])
        hi = np.concatenate([[300.0], np.full(K, m)])

        def fun(p: np.ndarray) -> np.ndarray:
            return np.exp(p[0]) + np.exp(R @ p[1:]) - ys

        def jac(p: np.ndarray) -> np.ndarray:
            return np.column_stack([np.full(len(ys), np.exp(p[0])),
                                    np.exp(R @ p[1:])[:, None] * R])

        best = None
        for s in starts:
            s = np.clip(s, lo + 1e-9, hi - 1e-9)
            with np.errstate(over="ignore", invalid="ignore"):
                r = least_squares(fun, s, jac=jac, bounds=(lo, hi), loss="huber",
                                  f_scale=self.options["delta"], method="trf", x_scale="jac",
                                  xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
            if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
                best = r
        if best is None:
            raise FitError("log-linear surrogate: no start gave a finite fit")
        # scale (e^{x0} + e^{t . r}) = scale e^{x0} + e^{(t + log scale) . r} on the simplex
        self.state = {"c": float(np.exp(best.x[0]) * scale), "t": best.x[1:] + np.log(scale),
                      "converged": bool(best.success)}
        return self


class Linear(Surrogate):
    """``L = w . r`` by least squares (RegMix's linear baseline; intercept redundant on the
    simplex)."""

    name = "linear"
    convex = True
    smooth = True
    vector_state = ("w",)
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def n_params(cls, K: int) -> int:
        return K

    @property
    def w(self) -> np.ndarray:
        return np.asarray(self.state["w"], dtype=float)

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> Linear:
        w, *_ = np.linalg.lstsq(R, y, rcond=None)
        self.state = {"w": w}
        return self

    def predict(self, R: np.ndarray) -> np.ndarray:
        return np.asarray(R, dtype=float) @ self.w

    def gradient(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, dtype=float)
        return np.broadcast_to(self.w, R.shape).copy()

    def describe(self, domains: list[str]) -> str:
        order = np.argsort(self.w)
        return "lowest-loss domains: " + ", ".join(f"{domains[j]} {self.w[j]:.4g}"
                                                   for j in order[:3])


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise MixtureError(
            "surrogates 'gbm' and 'gp' need scikit-learn: pip install 'mixopt[mixture]'"
        ) from None


class GBM(Surrogate):
    """Gradient-boosted regression trees (scikit-learn's histogram GBDT) on the log loss.

    The trees model ``log L`` (squared error on log loss: relative errors, as the exponential
    laws and the GP): 5-fold cross-validation on RegMix's 512 training runs ranks held-out
    mixtures slightly better than on the raw loss (mean Spearman over 13 domains 0.9868 vs
    0.9866; pile_cc 0.9831 vs 0.9826).

    The state holds no trees: they are refitted from the stored runs on load, which is exact
    because the fit is deterministic for a seed.
    """

    name = "gbm"
    # LightGBM's tree defaults (31 leaves, 20 runs a leaf). RegMix runs 1,000 rounds at learning
    # rate 0.01 and stops early on its test set; 500 rounds at 0.02 rank RegMix's test mixtures
    # as well (mean Spearman 0.9892 over 13 domains either way) at half the prediction cost, and
    # every round is kept (early_stopping=True holds out 10% of the runs instead).
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.02, "max_iter": 500, "max_leaf_nodes": 31, "min_samples_leaf": 20,
        "l2_regularization": 0.0, "early_stopping": False,
    }

    @classmethod
    def n_params(cls, K: int) -> int:
        return 2

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> GBM:
        _sklearn()
        from sklearn.ensemble import HistGradientBoostingRegressor

        o = self.options
        n = len(y)
        es = o["early_stopping"]
        if es == "auto":
            es = n >= 200
        self._model = HistGradientBoostingRegressor(
            learning_rate=o["learning_rate"], max_iter=o["max_iter"],
            max_leaf_nodes=o["max_leaf_nodes"], min_samples_leaf=min(o["min_samples_leaf"],
                                                                     max(1, n // 4)),
            l2_regularization=o["l2_regularization"], early_stopping=bool(es),
            validation_fraction=0.1 if es else None, n_iter_no_change=20,
            random_state=int(seed) % (2**32),
        ).fit(R, np.log(y))
        self.state = {"n_iter": int(self._model.n_iter_)}
        return self

    def restore(self, state: dict[str, Any], R: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.fit(R, y, seed)

    def predict(self, R: np.ndarray) -> np.ndarray:
        return np.exp(self._model.predict(np.asarray(R, dtype=float)))

    def describe(self, domains: list[str]) -> str:
        return f"{self.state['n_iter']} boosting rounds"


class GP(Surrogate):
    """Gaussian process: ``C * RBF(ARD) + White`` on the log loss, normalised (olmix's GP).

    The GP models ``log L`` (the loss is positive and its mixture effects are multiplicative,
    and the kernel optimiser converges in about half the iterations); predictions are
    ``exp`` of the posterior mean, and :meth:`predict_std` is the delta-method standard
    deviation ``L sd(log L)``.

    The fitted kernel hyperparameters are saved; on load the GP is rebuilt from the stored runs
    with those hyperparameters and no re-optimisation, which reproduces its predictions.
    """

    name = "gp"
    defaults: ClassVar[dict[str, Any]] = {"n_restarts": 0, "length_scale_bounds": (1e-2, 1e3),
                                          "noise_bounds": (1e-8, 1.0)}

    @classmethod
    def n_params(cls, K: int) -> int:
        return K + 2

    def _gpr(self, K: int, seed: int, kernel: Any = None) -> Any:
        _sklearn()
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        o = self.options
        if kernel is None:
            kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                      * RBF(np.full(K, 0.3), tuple(o["length_scale_bounds"]))
                      + WhiteKernel(1e-2, tuple(o["noise_bounds"])))
            return GaussianProcessRegressor(kernel, normalize_y=True,
                                            n_restarts_optimizer=int(o["n_restarts"]),
                                            random_state=int(seed) % (2**32))
        return GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)

    def fit(self, R: np.ndarray, y: np.ndarray, seed: int) -> GP:
        gpr = self._gpr(R.shape[1], seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of the kernel optimiser
            self._model = gpr.fit(R, np.log(y))
        self.state = {"theta": self._model.kernel_.theta}
        return self

    def restore(self, state: dict[str, Any], R: np.ndarray, y: np.ndarray, seed: int) -> None:
        gpr = self._gpr(R.shape[1], seed)
        theta = _finite(state.get("theta"), "surrogate 'gp' state 'theta'")
        if theta.shape != gpr.kernel.theta.shape:
            raise DataError(f"surrogate 'gp' state 'theta' has shape {theta.shape}, expected "
                            f"{gpr.kernel.theta.shape}")
        kernel = gpr.kernel.clone_with_theta(theta)
        self._model = self._gpr(R.shape[1], seed, kernel).fit(R, np.log(y))
        self.state = {"theta": np.asarray(state["theta"], dtype=float)}

    def predict(self, R: np.ndarray) -> np.ndarray:
        return np.exp(self._model.predict(np.asarray(R, dtype=float)))

    def predict_std(self, R: np.ndarray) -> np.ndarray:
        mean, sd = self._model.predict(np.asarray(R, dtype=float), return_std=True)
        return np.exp(mean) * sd

    def describe(self, domains: list[str]) -> str:
        return f"kernel {self._model.kernel_}"


SURROGATES: dict[str, type[Surrogate]] = {
    "mixing": Mixing, "loglinear": LogLinear, "linear": Linear, "gbm": GBM, "gp": GP,
}


def make(name: Any, options: dict[str, Any] | None = None) -> Surrogate:
    if not isinstance(name, str) or name not in SURROGATES:
        raise MixtureError(f"unknown mixture model {name!r}; choose one of {sorted(SURROGATES)}")
    return SURROGATES[name](**(options or {}))
