"""Training curves: token equivalence between a baseline and a treated run.

The procedural-pretraining paper (Jiang et al. 2026, arXiv 2601.21725, sec. 5) summarises a warm-up
by the fraction of a baseline's natural tokens that the warmed-up model needs to reach the
baseline's final loss (55% / 67% / 86% on C4 / CodeParrot / DeepMind-Math). This module computes
that number from two loss curves, with and without counting the warm-up tokens.

Two estimators:

``"interpolate"``
    Make each curve monotone with its running minimum (the best loss reached so far), then find
    the first point where the treated curve reaches the target loss, interpolating the loss
    linearly in log tokens between the two evaluations that bracket it.
``"fit"``
    Fit L(D) = E + B / D**beta to the treated curve with :func:`mixopt.fit` (Huber on log
    residuals, as for any law) and solve L(D) = target in closed form,
    D = (B / (target - E))**(1 / beta). This smooths noisy curves and extrapolates when the
    treated run stops before reaching the target (flagged with ``extrapolated=True``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mixopt.errors import DataError

__all__ = ["TokenEquivalence", "token_equivalence", "tokens_to_reach", "curve_law"]


@dataclass(frozen=True)
class TokenEquivalence:
    """Result of :func:`token_equivalence`.

    Attributes
    ----------
    target_loss
        the baseline's final loss (or the target given).
    baseline_tokens
        tokens the baseline used to reach it.
    treated_tokens
        natural tokens the treated run needed (NaN when never reached).
    warmup_tokens
        warm-up tokens spent before the treated run's curve starts.
    fraction
        ``treated_tokens / baseline_tokens`` (warm-up not counted).
    fraction_with_warmup
        ``(treated_tokens + warmup_tokens) / baseline_tokens``.
    reached
        whether the treated curve (or its fit) reaches the target.
    extrapolated
        the fit's answer lies beyond the treated run's last evaluation.
    method
        ``"interpolate"`` or ``"fit"``.
    """

    target_loss: float
    baseline_tokens: float
    treated_tokens: float
    warmup_tokens: float
    fraction: float
    fraction_with_warmup: float
    reached: bool
    extrapolated: bool
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if not self.reached:
            return (
                f"treated run never reaches the target loss {self.target_loss:.4g} "
                f"(method={self.method})"
            )
        note = " (extrapolated)" if self.extrapolated else ""
        return (
            f"target loss {self.target_loss:.4g}: baseline {self.baseline_tokens:.4g} tokens, "
            f"treated {self.treated_tokens:.4g}{note} -> {100 * self.fraction:.1f}% of the "
            f"baseline's tokens ({100 * self.fraction_with_warmup:.1f}% counting "
            f"{self.warmup_tokens:.4g} warm-up tokens)"
        )


def _curve(tokens: Any, loss: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        t = np.asarray(tokens, dtype=float).reshape(-1)
        y = np.asarray(loss, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{what}: tokens and loss must be numeric arrays") from None
    if t.shape != y.shape:
        raise DataError(f"{what}: tokens ({t.size}) and loss ({y.size}) differ in length")
    if t.size < 2:
        raise DataError(f"{what}: need at least 2 evaluations, got {t.size}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise DataError(f"{what}: tokens and loss must be finite")
    if np.any(t <= 0):
        raise DataError(f"{what}: tokens must be positive")
    if np.any(y <= 0):
        raise DataError(f"{what}: losses must be positive")
    if np.any(np.diff(t) <= 0):
        raise DataError(f"{what}: tokens must be strictly increasing")
    return t, y


def tokens_to_reach(tokens: Any, loss: Any, target: float) -> float:
    """First token count at which a curve reaches ``target`` (NaN if never).

    The curve is made monotone by its running minimum, and the crossing is interpolated linearly
    in log tokens between the bracketing evaluations.
    """
    t, y = _curve(tokens, loss, "curve")
    if isinstance(target, (bool, np.bool_)) or not isinstance(
            target, (int, float, np.integer, np.floating)) or not np.isfinite(target) \
            or target <= 0:
        raise DataError(f"target must be a finite positive loss, got {target!r:.60}")
    best = np.minimum.accumulate(y)
    hit = np.flatnonzero(best <= target)
    if hit.size == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(t[0])
    y0, y1 = best[i - 1], best[i]  # y0 > target >= y1
    frac = (y0 - target) / (y0 - y1)
    out = np.exp(np.log(t[i - 1]) + frac * (np.log(t[i]) - np.log(t[i - 1])))
    return float(np.clip(out, t[i - 1], t[i]))  # round-off must not leave the bracket


def curve_law():
    """The law L(D) = E + B / D**beta used by the ``"fit"`` estimator (variables: ``D``)."""
    from mixopt.laws import Parameter, custom

    return custom(
        "token_curve",
        lambda p, X: p["E"] + p["B"] * X["D"] ** (-p["beta"]),
        ("D",),
        [
            Parameter("E", 0.0, np.inf, (-1.0, 0.0, 1.0), log=True),
            Parameter("B", 0.0, np.inf, (0.0, 3.0, 6.0, 10.0), log=True),
            Parameter("beta", 0.0, 3.0, (0.1, 0.3, 0.6, 1.0)),
        ],
        description="L(D) = E + B / D^beta",
    )


def token_equivalence(
    baseline_tokens: Any,
    baseline_loss: Any,
    treated_tokens: Any,
    treated_loss: Any,
    *,
    warmup_tokens: float = 0.0,
    target: float | None = None,
    method: str = "interpolate",
) -> TokenEquivalence:
    """Fraction of the baseline's tokens a treated run needs to reach the baseline's final loss.

    Parameters
    ----------
    baseline_tokens, baseline_loss:
        The baseline's evaluation curve (natural tokens seen, loss).
    treated_tokens, treated_loss:
        The treated run's curve, counting natural tokens only (from the start of stage two).
    warmup_tokens:
        Tokens spent on the warm-up, added in ``fraction_with_warmup``.
    target:
        The loss to reach; default the baseline's final (running-minimum) loss.
    method:
        ``"interpolate"`` or ``"fit"`` (see the module docstring).
    """
    bt, by = _curve(baseline_tokens, baseline_loss, "baseline curve")
    tt, ty = _curve(treated_tokens, treated_loss, "treated curve")
    if not np.isfinite(warmup_tokens) or warmup_tokens < 0:
        raise DataError(f"warmup_tokens must be finite and >= 0, got {warmup_tokens}")
    if target is None:
        target = float(np.min(by))
    elif not np.isfinite(target) or target <= 0:
        raise DataError(f"target loss must be finite and positive, got {target}")
    base = tokens_to_reach(bt, by, target)
    if np.isnan(base):
        raise DataError(f"the baseline never reaches the target loss {target}")
    extrapolated = False
    if method == "interpolate":
        treated = tokens_to_reach(tt, ty, target)
    elif method == "fit":
        from mixopt.fitting import fit

        result = fit(curve_law(), {"D": tt, "loss": ty})
        E, B, beta = (result.params[k] for k in ("E", "B", "beta"))
        if target <= E:
            treated = float("nan")
        else:
            treated = float((B / (target - E)) ** (1.0 / beta))
            extrapolated = treated > tt[-1]
    else:
        raise DataError(f"method must be 'interpolate' or 'fit', got {method!r}")
    reached = bool(np.isfinite(treated))
    return TokenEquivalence(
        target_loss=float(target),
        baseline_tokens=base,
        treated_tokens=treated,
        warmup_tokens=float(warmup_tokens),
        fraction=treated / base,
        fraction_with_warmup=(treated + warmup_tokens) / base,
        reached=reached,
        extrapolated=extrapolated,
        method=method,
    )
