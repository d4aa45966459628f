"""The data mixing law of Ye et al. (2024), "Data Mixing Laws" (their multi-domain mixing law).

For one evaluation domain i, the loss of a model trained on mixture proportions r = (r_1..r_m) is

    L_i(r) = c_i + k_i exp(sum_j t_ij r_j).

Fit one law per evaluation domain from runs at several mixtures (columns: one per training
component, holding its proportion, plus ``loss``). ``c`` (and ``k``) are fitted as logs;
``t_<component>`` are bounded by ``max_slope`` (negative where more of component j lowers the loss
on i).

**The scale k.** When the proportions sum to one (a mixture on the simplex), ``k`` is not
identified: ``k exp(sum_j t_j r_j) = exp(sum_j (t_j + log k) r_j)``, so any ``k`` can be traded
against a common shift of the slopes, and a fit that keeps it has a singular Jacobian. The law
therefore drops it by default (``scale=False``: ``L = c + exp(sum_j t_j r_j)``, the same surface
with one parameter fewer). Pass ``scale=True`` when the components do not sum to one, e.g. a
subset of the domains.

**Starts.** The default start grid grows linearly with the number of components (the product of
per-parameter grids would hold 3 x 2 x 2**m points: 786k for 17 domains). The law also proposes
data-driven starts (:meth:`MixingLaw.data_starts`): for a few values of the asymptote
``c = q min(L)``, ``log(L - c)`` is linear in ``r`` and the slopes follow by least squares (a
variable-projection start), which lands next to the optimum for any number of domains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mixopt.errors import LawError
from mixopt.laws.base import LOG_LIMIT, Law, Parameter

__all__ = ["MixingLaw"]

#: Fractions q of the smallest observed loss tried as asymptote c in the data-driven starts.
START_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)


class MixingLaw(Law):
    """L(r) = c + k exp(sum_j t_j r_j) (Ye et al. 2024, multi-domain law), for one domain.

    Parameters
    ----------
    components:
        Column names of the mixture proportions.
    max_slope:
        Bound on ``|t_j|``.
    scale:
        Keep the scale ``k`` (only identified when the proportions do not sum to one; see the
        module docstring). Default ``False``: ``L = c + exp(sum_j t_j r_j)``.
    """

    def __init__(
        self, components: Sequence[str] = (), *, max_slope: float = 50.0, scale: bool = False
    ) -> None:
        if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
            raise LawError("mixing law components must be a list of column names, got "
                           f"{components!r:.60}")
        components = tuple(str(c) for c in components)
        if len(components) < 1:
            raise LawError("mixing law needs components=[...] (the mixture's column names)")
        if len(set(components)) != len(components):
            raise LawError(f"mixing law components must be distinct, got {components}")
        try:
            max_slope = float(max_slope)
        except (TypeError, ValueError):
            raise LawError(f"max_slope must be a positive number, got {max_slope!r}") from None
        if not np.isfinite(max_slope) or max_slope <= 0:
            raise LawError(f"max_slope must be a positive number, got {max_slope!r}")
        params = [
            Parameter("c", 0.0, np.inf, (-1.0, 0.0, 1.0), log=True, description="asymptote"),
        ]
        if scale:
            params.append(
                Parameter("k", 0.0, np.inf, (-2.0, 0.0), log=True, description="scale")
            )
        for comp in components:
            name = f"t_{comp}"
            if not name.isidentifier():
                raise LawError(f"mixing law component {comp!r} must be usable in an identifier")
            if comp in ("loss",):
                raise LawError(f"mixing law component {comp!r} clashes with the loss column")
            params.append(
                Parameter(name, -max_slope, max_slope, (0.0,),
                          description=f"log-linear effect of the proportion of {comp}")
            )
        super().__init__(
            name="mixing",
            variables=components,
            parameters=tuple(params),
            description="L = c + k exp(sum_j t_j r_j)" if scale else "L = c + exp(sum_j t_j r_j)",
            reference="Ye et al. 2024, Data Mixing Laws (multi-domain mixing law)",
            options={"components": list(components), "max_slope": max_slope, "scale": bool(scale)},
            nonnegative=components,
        )
        self.components = components
        self.scale = bool(scale)
        self._t0 = 2 if scale else 1  # index of the first slope

    # ------------------------------------------------------------------ starts
    def grid(self) -> np.ndarray:
        """Starts that grow linearly with the number of components m: ``3 s (2 m + 1)`` rows.

        Asymptote ``log c`` in {-1, 0, 1} (times ``log k`` in {-2, 0} with ``scale``), slopes at 0
        or with one component at +-1.
        """
        m = len(self.components)
        slopes = np.vstack([np.zeros(m), np.eye(m), -np.eye(m)])
        heads = [(-1.0,), (0.0,), (1.0,)]
        if self.scale:
            heads = [(c, k) for c in (-1.0, 0.0, 1.0) for k in (-2.0, 0.0)]
        rows = [np.concatenate([h, s]) for h in heads for s in slopes]
        return np.asarray(rows, dtype=float)

    def data_starts(self, X: Mapping[str, np.ndarray], log_loss: np.ndarray) -> np.ndarray:
        """Variable-projection starts: for ``c = q min(L)``, least squares of log(L - c) on r."""
        y = np.exp(np.asarray(log_loss, dtype=float))
        R = np.column_stack([np.asarray(X[c], dtype=float) for c in self.components])
        if self.scale:
            R = np.column_stack([np.ones(len(y)), R])
        ymin = float(np.min(y))
        out = []
        for q in START_FRACTIONS:
            c = q * ymin
            z = np.log(np.maximum(y - c, 1e-12 * ymin))
            coef, *_ = np.linalg.lstsq(R, z, rcond=None)
            logc = np.log(c) if c > 0 else np.log(1e-6 * ymin)
            slopes = np.clip(coef, -self.options["max_slope"], self.options["max_slope"])
            if self.scale:
                slopes[0] = np.clip(coef[0], -LOG_LIMIT, LOG_LIMIT)
            out.append(np.concatenate([[np.clip(logc, -LOG_LIMIT, LOG_LIMIT)], slopes]))
        return np.asarray(out, dtype=float)

    # ------------------------------------------------------------------ prediction
    def _log_loss(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        lin = p["k"] if self.scale else 0.0
        for comp in self.components:
            lin = lin + p[f"t_{comp}"] * X[comp]
        return np.logaddexp(p["c"], lin)

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form Jacobian: d/d log c = sigmoid(log c - z), d/dt_j = (1 - that) r_j."""
        theta = np.asarray(theta, dtype=float)
        R = np.column_stack([np.asarray(X[c], dtype=float) for c in self.components])  # (n, m)
        t = theta[..., self._t0:]  # (..., m)
        lin = t @ R.T  # (..., n)
        if self.scale:
            lin = lin + theta[..., 1, None]
        logc = theta[..., 0, None]
        f = np.logaddexp(logc, lin)
        s = np.exp(logc - f)  # c / L, in [0, 1]
        u = 1.0 - s
        cols = [s[..., None]]
        if self.scale:
            cols.append(u[..., None])
        cols.append(u[..., None] * R)
        return f, np.concatenate(cols, axis=-1)
