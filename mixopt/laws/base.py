"""The :class:`Law` object: a loss surface with named parameters, bounds and a start grid.

A law maps the columns of a run table (its ``variables``, e.g. ``("N", "D")``) and a set of
parameters to a predicted loss. Fitting happens in *fit space*: each :class:`Parameter` with
``log=True`` is fitted as its natural logarithm (scales such as ``A`` or ``E`` in Hoffmann et al.
2022, approach 3), the others as they are. Grids and fit-space bounds follow that convention.

Laws are vectorised over many parameter sets at once: :meth:`Law.log_predict_raw` takes an array
``theta`` of shape ``(..., P)`` in fit space and returns log-losses of shape ``(..., n)``, which is
what lets :mod:`mixopt.fitting` advance thousands of starts together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixopt.data import as_arrays
from mixopt.errors import LawError

__all__ = ["Parameter", "Law", "FunctionLaw", "LOG_LIMIT"]

#: Largest magnitude of a log-space parameter: its value stays in [exp(-300), exp(300)].
LOG_LIMIT = 300.0


@dataclass(frozen=True)
class Parameter:
    """One parameter of a law, lmfit-style.

    Parameters
    ----------
    name:
        The public name (e.g. ``"alpha"``).
    lower, upper:
        Bounds in natural units (``log=True`` parameters need ``lower >= 0``).
    grid:
        Starting values **in fit space** (logarithms for ``log=True`` parameters); the law's start
        grid is the Cartesian product of its parameters' grids.
    log:
        Fit the natural logarithm of the value (the value must be positive).
    description:
        Human-readable meaning, shown in fit reports.
    """

    name: str
    lower: float = -np.inf
    upper: float = np.inf
    grid: tuple[float, ...] = (0.0,)
    log: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise LawError(f"parameter name {self.name!r} is not a valid identifier")
        for side in ("lower", "upper"):  # a law option such as max_exponent=True lands here
            b = getattr(self, side)
            if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, float, np.number)):
                raise LawError(f"parameter {self.name!r}: {side} bound must be a number, "
                               f"got {b!r:.60}")
        if not self.lower < self.upper:
            raise LawError(
                f"parameter {self.name!r}: lower bound {self.lower} must be below "
                f"upper bound {self.upper}"
            )
        if self.log and self.lower < 0:
            raise LawError(f"parameter {self.name!r} is fitted in log space; lower must be >= 0")
        grid = tuple(float(g) for g in np.atleast_1d(self.grid))
        if len(grid) == 0 or not all(np.isfinite(grid)):
            raise LawError(f"parameter {self.name!r}: grid must be a non-empty list of numbers")
        object.__setattr__(self, "grid", grid)
        lo, hi = self.fit_bounds
        if any(g < lo or g > hi for g in grid):
            raise LawError(
                f"parameter {self.name!r}: grid {grid} lies outside its fit-space bounds {(lo, hi)}"
            )

    @property
    def fit_bounds(self) -> tuple[float, float]:
        """Bounds in fit space (``log`` applied for ``log=True`` parameters).

        Log-space bounds are clamped to +-``LOG_LIMIT`` so that a fitted value always maps back
        to a positive, finite number (exp(-300) > 0, exp(300) < inf in float64).
        """
        if not self.log:
            return (float(self.lower), float(self.upper))
        lo = np.log(self.lower) if self.lower > 0 else -np.inf
        hi = np.log(self.upper)
        return (float(max(lo, -LOG_LIMIT)), float(min(hi, LOG_LIMIT)))

    def to_fit(self, value: Any) -> Any:
        return np.log(value) if self.log else value

    def from_fit(self, value: Any) -> Any:
        return np.exp(value) if self.log else value


@dataclass
class Law:
    """A loss surface L(variables; parameters).

    Subclasses implement :meth:`_log_loss`, which receives a dict of *fit-space* parameter arrays
    (already shaped to broadcast against the data) and a dict of data arrays, and returns the
    natural log of the predicted loss, computed stably.

    Attributes
    ----------
    name, variables, parameters, description, reference
    """

    name: str
    variables: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    description: str = ""
    reference: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    nonnegative: tuple[str, ...] = ("D_spec",)

    def __post_init__(self) -> None:
        self.variables = tuple(self.variables)
        self.parameters = tuple(self.parameters)
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise LawError(f"law {self.name!r} has duplicate parameter names {names}")
        if not self.variables:
            raise LawError(f"law {self.name!r} reads no variables")

    # ------------------------------------------------------------------ introspection
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def n_params(self) -> int:
        return len(self.parameters)

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """Natural-unit bounds, ``name -> (lower, upper)``."""
        return {p.name: (float(p.lower), float(p.upper)) for p in self.parameters}

    @property
    def fit_bounds(self) -> np.ndarray:
        """Fit-space bounds as an array of shape ``(P, 2)``."""
        return np.array([p.fit_bounds for p in self.parameters], dtype=float)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise LawError(f"law {self.name!r} has no parameter {name!r}; it has {self.param_names}")

    def grid(self) -> np.ndarray:
        """The default start grid in fit space: the Cartesian product, shape ``(G, P)``."""
        axes = [p.grid for p in self.parameters]
        return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, self.n_params)

    def check_data(self, frame: pd.DataFrame, fixed: Mapping[str, float]) -> None:
        """Law-specific checks of a validated run table before a fit (e.g. mixture columns on the
        simplex, enough distinct sizes to identify the free parameters); raise a ``DataError``.
        The default checks nothing more."""

    def data_starts(self, X: Mapping[str, np.ndarray], log_loss: np.ndarray) -> np.ndarray | None:
        """Extra starts computed from the data, ``(G, P)`` in fit space, or ``None``.

        The engine adds them to the default grid. Laws where part of the problem is linear once
        a few parameters are fixed (variable projection) override this; the default adds none.
        """
        return None

    # ------------------------------------------------------------------ parameter transforms
    def to_fit(self, params: Mapping[str, float]) -> np.ndarray:
        """Natural-unit mapping ``name -> value`` to a fit-space vector of shape ``(P,)``.

        Checks names and values as :meth:`check_params`, but not the bounds: a fit made with
        user ``bounds=`` wider than the law's keeps values outside the law's defaults.
        """
        self.check_params(params, bounds=False)
        return np.array(
            [p.to_fit(float(params[p.name])) for p in self.parameters], dtype=float
        )

    def from_fit(self, theta: np.ndarray) -> dict[str, Any]:
        """Fit-space array ``(..., P)`` to a mapping ``name -> value`` (floats for a vector)."""
        theta = np.asarray(theta, dtype=float)
        out = {p.name: p.from_fit(theta[..., i]) for i, p in enumerate(self.parameters)}
        if theta.ndim == 1:
            out = {k: float(v) for k, v in out.items()}
        return out

    def check_params(
        self,
        params: Mapping[str, float],
        bounds: Mapping[str, tuple[float, float]] | bool | None = None,
    ) -> None:
        """Check a natural-unit parameter mapping; raise :class:`~mixopt.errors.LawError`.

        Every parameter must be given (and no other), as a real number: booleans, strings and
        complex numbers are refused, as are non-finite values and non-positive values of
        log-space parameters. ``bounds`` says which bounds the values must lie in (inclusive):
        ``None`` (default) the law's own (:attr:`bounds`), a mapping ``name -> (lower,
        upper)`` those instead (names it omits keep the law's; :meth:`FitResult.predict
        <mixopt.fitting.result.FitResult.predict>` passes the bounds its fit used, which may be
        wider than the law's), ``False`` none.
        """
        if not isinstance(params, Mapping):
            raise LawError(
                f"parameters for law {self.name!r} must be a mapping name -> value, "
                f"got {type(params).__name__}"
            )
        missing = [n for n in self.param_names if n not in params]
        if missing:
            raise LawError(f"law {self.name!r} is missing parameter(s) {missing}")
        extra = [n for n in params if n not in self.param_names]
        if extra:
            raise LawError(
                f"law {self.name!r} has no parameter(s) {extra}; it has {self.param_names}"
            )
        limits: Mapping[str, tuple[float, float]] | None
        if bounds is False:
            limits = None
        elif bounds is None or bounds is True:
            limits = self.bounds
        elif isinstance(bounds, Mapping):
            limits = {**self.bounds, **{str(k): v for k, v in bounds.items()}}
        else:
            raise LawError(f"bounds must be None, False or a mapping name -> (lower, upper), "
                           f"got {type(bounds).__name__}")
        for p in self.parameters:
            v = params[p.name]
            if isinstance(v, (bool, np.bool_)) or isinstance(v, (complex, np.complexfloating)) \
                    or isinstance(v, (str, bytes)):
                raise LawError(f"parameter {p.name!r} of law {self.name!r} must be a real "
                               f"number, got {v!r} ({type(v).__name__})")
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise LawError(f"parameter {p.name!r} must be a number, got {v!r}") from None
            if not np.isfinite(v):
                raise LawError(f"parameter {p.name!r} must be finite, got {v}")
            if p.log and v <= 0:
                raise LawError(f"parameter {p.name!r} must be positive, got {v}")
            if limits is not None:
                lo, hi = (float(x) for x in limits[p.name])
                if not lo <= v <= hi:
                    raise LawError(
                        f"parameter {p.name!r} of law {self.name!r} = {v!r} is outside its "
                        f"bounds [{lo}, {hi}]; a fit made with wider bounds= predicts through "
                        "FitResult.predict, or pass bounds= to predict"
                    )

    # ------------------------------------------------------------------ prediction
    def data_arrays(self, data: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The law's variables from ``data`` as float64 arrays (validated)."""
        return as_arrays(
            data, self.variables, nonnegative=self.nonnegative, what=f"data for law {self.name!r}"
        )

    def log_predict_raw(self, theta: np.ndarray, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log predicted loss for fit-space parameters ``theta`` ``(..., P)``; returns ``(..., n)``.

        ``X`` maps each variable to a 1-D array of length ``n`` (no validation here: this is the
        hot path of the fitting engine).
        """
        theta = np.asarray(theta, dtype=float)
        p = {par.name: theta[..., i, None] for i, par in enumerate(self.parameters)}
        return self._log_loss(p, X)

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log prediction and its Jacobian w.r.t. fit-space parameters.

        Returns ``(f, J)`` with ``f`` of shape ``(..., n)`` and ``J`` of shape ``(..., n, P)``.
        The default uses central differences, vectorised over all parameters at once; laws with a
        closed-form gradient override it.
        """
        theta = np.asarray(theta, dtype=float)
        P = theta.shape[-1]
        f = self.log_predict_raw(theta, X)
        h = 1e-6 * np.maximum(1.0, np.abs(theta))  # (..., P)
        step = h[..., :, None] * np.eye(P)  # (..., P, P): row i perturbs parameter i
        plus = self.log_predict_raw(theta[..., None, :] + step, X)  # (..., P, n)
        minus = self.log_predict_raw(theta[..., None, :] - step, X)
        J = (plus - minus) / (2.0 * h[..., :, None])
        return f, np.swapaxes(J, -1, -2)

    def predict(
        self,
        params: Mapping[str, float],
        data: pd.DataFrame | Mapping[str, Any],
        *,
        bounds: Mapping[str, tuple[float, float]] | bool | None = None,
    ) -> np.ndarray:
        """Predicted loss for natural-unit ``params`` at the rows (or arrays) of ``data``.

        ``params`` are checked by :meth:`check_params`: booleans and values outside the law's
        bounds (or ``bounds``, e.g. those of a fit made with wider ``bounds=``; ``False``: no
        bound check) raise :class:`~mixopt.errors.LawError`.
        """
        self.check_params(params, bounds=bounds)
        theta = self.to_fit(params)
        X = self.data_arrays(data)
        shape = next(iter(X.values())).shape
        flat = {k: v.reshape(-1) for k, v in X.items()}
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            out = np.exp(self.log_predict_raw(theta, flat))
        return out.reshape(shape)

    def _log_loss(self, p: dict[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ misc
    def get_params(self) -> dict[str, Any]:
        """The options this law was built with (scikit-learn style introspection)."""
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        """Enough to rebuild a registered law with :func:`mixopt.laws.get`."""
        return {"name": self.name, "options": _jsonable(self.options)}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"<Law {self.name}({opts}) variables={self.variables} params={self.param_names}>"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class FunctionLaw(Law):
    """A user-defined law from a plain function (see :func:`mixopt.laws.custom`).

    ``fn(params, X)`` receives natural-unit parameter arrays (broadcastable against the data) and
    the data arrays, and returns the predicted loss (positive). It must use numpy operations only,
    so that it broadcasts over many parameter sets at once.

    ``jac(params, X)``, optional, returns the derivatives of the loss with respect to each
    natural-unit parameter (a mapping name -> array broadcastable to the loss); the engine then
    uses it instead of central differences (chain rule to fit space:
    ``d log L / d theta = (dL/dp) (dp/dtheta) / L``, with ``dp/dtheta = p`` for log-space
    parameters).
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], np.ndarray],
        variables: Sequence[str],
        parameters: Sequence[Parameter],
        *,
        description: str = "",
        reference: str = "",
        log_fn: bool = False,
        jac: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
                      Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        super().__init__(
            name=name,
            variables=tuple(variables),
            parameters=tuple(parameters),
            description=description or (fn.__doc__ or "").strip(),
            reference=reference,
        )
        if jac is not None and not callable(jac):
            raise LawError("jac must be a callable jac(params, X) -> {name: dL/dparam}")
        if jac is not None and log_fn:
            raise LawError("jac is for laws whose fn returns the loss (log_fn=False)")
        self.fn = fn
        self.log_fn = log_fn
        self.jac = jac

    def log_predict_raw_jac(self, theta: np.ndarray, X: Mapping[str, np.ndarray]
                            ) -> tuple[np.ndarray, np.ndarray]:
        if self.jac is None:
            return super().log_predict_raw_jac(theta, X)
        theta = np.asarray(theta, dtype=float)
        natural = {par.name: par.from_fit(theta[..., i, None])
                   for i, par in enumerate(self.parameters)}
        L = np.asarray(self.fn(natural, X), dtype=float)
        grads = self.jac(natural, X)
        missing = [p.name for p in self.parameters if p.name not in grads]
        if missing:
            raise LawError(f"law {self.name!r}: jac returned no derivative for {missing}")
        cols = []
        for par in self.parameters:
            g = np.broadcast_to(np.asarray(grads[par.name], dtype=float), L.shape)
            if par.log:
                g = g * natural[par.name]
            cols.append(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(L), np.stack(cols, axis=-1) / L[..., None]

    def _log_loss(self, p: dict[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        natural = {par.name: par.from_fit(p[par.name]) for par in self.parameters}
        out = np.asarray(self.fn(natural, X), dtype=float)
        if self.log_fn:
            return out
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(out)
