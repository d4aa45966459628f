"""Result objects of the planners: readable ``summary()``, ``to_frame()`` and JSON ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Allocation", "AllocationDistribution", "SplitPlan", "Frontier", "format_tokens",
           "format_size", "FORMAT"]

#: Version of the saved-plan format (the ``format`` field of every plan's ``to_dict``); files of
#: another version are refused by :func:`mixopt.plan.load`.
FORMAT = 1


def _head(kind: str) -> dict[str, Any]:
    return {"kind": kind, "format": FORMAT}


class _Saveable:
    """``save(path)``: the plan as strict JSON, read back by :func:`mixopt.plan.load`."""

    def save(self, path: Any) -> None:
        """Write :meth:`to_dict` as strict JSON (non-finite numbers as ``"inf"``/``"nan"``
        strings); :func:`mixopt.plan.load` reads it back, checked field by field."""
        from mixopt.plan.io import save

        save(self, path)


def _out(x: Any, scalar: bool) -> Any:
    arr = np.asarray(x, dtype=float)
    return float(arr.reshape(-1)[0]) if scalar else arr


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, pd.DataFrame):
        return _jsonable(x.reset_index().to_dict(orient="list"))
    return x


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.3e}"


def format_tokens(x: float) -> str:
    """Tokens as a whole number with thousands separators (``1,662,978``); less than half a
    token prints ``0`` (a share the plan does not use), non-finite values as they are."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    return f"{round(x):,}"


def format_size(x: float, lower: float | None = None, upper: float | None = None) -> str:
    """A size (parameters, tokens) rounded to what a user can act on: whole units, or, given
    an interval ``[lower, upper]``, to one digit below the interval's width (an interval 8e7
    wide rounds to 1e6: ``236,000,000``)."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    step = 1.0
    if lower is not None and upper is not None and np.isfinite(lower) and np.isfinite(upper):
        width = abs(float(upper) - float(lower))
        if width > 0:
            step = max(1.0, 10.0 ** (np.floor(np.log10(width)) - 1))
    return f"{round(round(x / step) * step):,}"


def _whole(x: float) -> str:
    return format_tokens(x) if np.isfinite(x) and abs(x) < 1e18 else _fmt(x)


def _zero_sub_token(x: float) -> float:
    """Sub-token amounts (below half a token) are zero shares: saved as exactly 0."""
    return 0.0 if np.isfinite(x) and abs(x) < 0.5 else float(x)


def _frame_text(frame: pd.DataFrame, whole: tuple[str, ...], index: bool = True) -> str:
    """``frame.to_string`` with sizes in ``whole`` as whole numbers, other floats by ``_fmt``."""
    cols = {c: _whole for c in frame.columns if c in whole}
    return frame.to_string(index=index, float_format=_fmt, formatters=cols)


def _extrapolation_lines(records: list[dict[str, Any]] | None) -> list[str]:
    from mixopt.plan.extrapolation import describe

    return [describe(records)]


@dataclass
class Allocation(_Saveable):
    """A compute allocation (N parameters, D tokens) per budget and its predicted loss.

    ``N``, ``D``, ``loss`` and ``budget`` are floats for a scalar budget, arrays otherwise.
    ``solver`` names the method ("closed_form", "golden", "gp"), ``success`` whether it converged.
    """

    budget: Any
    N: Any
    D: Any
    loss: Any
    law: str
    flops: str
    solver: str
    success: bool = True
    status: str = "optimal"
    message: str = ""
    constraints: dict[str, Any] = field(default_factory=dict)
    #: where the plan leaves the range of the fitted data (see
    #: :func:`mixopt.plan.extrapolation.extrapolation`); ``None``: not checked
    extrapolation: list[dict[str, Any]] | None = None

    @property
    def tokens_per_parameter(self) -> Any:
        return self.D / self.N

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "budget": np.atleast_1d(self.budget), "N": np.atleast_1d(self.N),
            "D": np.atleast_1d(self.D), "D/N": np.atleast_1d(self.tokens_per_parameter),
            "loss": np.atleast_1d(self.loss),
        })

    def summary(self) -> str:
        head = (f"Compute-optimal allocation: law {self.law}, FLOPs {self.flops}, "
                f"solver {self.solver} ({self.status})")
        if self.constraints:
            head += "\nconstraints: " + ", ".join(f"{k}={v:.4g}" for k, v in
                                                  self.constraints.items())
        lines = [head, _frame_text(self.to_frame(), ("N", "D"), index=False)]
        return "\n".join(lines + _extrapolation_lines(self.extrapolation))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({**_head("Allocation"), **{k: getattr(self, k) for k in (
            "budget", "N", "D", "loss", "law", "flops", "solver", "success", "status", "message",
            "constraints", "extrapolation")}})

    def __repr__(self) -> str:
        return self.summary()


@dataclass
class AllocationDistribution(_Saveable):
    """Compute-optimal allocations under a bootstrap distribution of law parameters.

    ``N``, ``D``, ``loss``: point estimates (from the point fit when the bootstrap carries one,
    else the median over resamples). ``samples``: name -> array ``(S, n_budgets)``.
    ``lower``/``upper``: name -> array of the percentile interval at ``level``.
    """

    budget: Any
    N: Any
    D: Any
    loss: Any
    samples: dict[str, np.ndarray]
    level: float
    law: str
    flops: str
    solver: str
    scalar: bool = False
    #: where the point plan leaves the range of the fitted data (see
    #: :func:`mixopt.plan.extrapolation.extrapolation`); ``None``: not checked
    extrapolation: list[dict[str, Any]] | None = None

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Percentile intervals: index budget, columns ``<name>_lower``, ``<name>_upper``."""
        level = self.level if level is None else float(level)
        q = [(1 - level) / 2, 1 - (1 - level) / 2]
        cols = {}
        for name in ("N", "D", "loss"):
            lo, hi = np.nanquantile(self.samples[name], q, axis=0)
            cols[f"{name}_lower"], cols[f"{name}_upper"] = lo, hi
        return pd.DataFrame(cols, index=pd.Index(np.atleast_1d(self.budget), name="budget"))

    @property
    def lower(self) -> dict[str, Any]:
        ci = self.conf_int()
        return {n: _out(ci[f"{n}_lower"].to_numpy(), self.scalar) for n in ("N", "D", "loss")}

    @property
    def upper(self) -> dict[str, Any]:
        ci = self.conf_int()
        return {n: _out(ci[f"{n}_upper"].to_numpy(), self.scalar) for n in ("N", "D", "loss")}

    @property
    def n_samples(self) -> int:
        return int(self.samples["N"].shape[0])

    def to_frame(self) -> pd.DataFrame:
        ci = self.conf_int().reset_index()
        out = pd.DataFrame({"budget": np.atleast_1d(self.budget), "N": np.atleast_1d(self.N),
                            "D": np.atleast_1d(self.D), "loss": np.atleast_1d(self.loss)})
        for name in ("N", "D", "loss"):
            pos = out.columns.get_loc(name) + 1
            out.insert(pos, f"{name}_upper", ci[f"{name}_upper"].to_numpy())
            out.insert(pos, f"{name}_lower", ci[f"{name}_lower"].to_numpy())
        return out

    def summary(self) -> str:
        head = (f"Compute-optimal allocation with {self.level:.0%} bootstrap intervals "
                f"({self.n_samples} resamples): law {self.law}, FLOPs {self.flops}, "
                f"solver {self.solver}")
        f = self.to_frame()
        text = {c: f[c].map(_whole) for c in ("D", "D_lower", "D_upper")}
        for i in range(len(f)):  # N to the precision its interval supports
            lo, hi = f["N_lower"].iloc[i], f["N_upper"].iloc[i]
            for c in ("N", "N_lower", "N_upper"):
                text.setdefault(c, f[c].astype(object).copy()).iloc[i] = format_size(
                    f[c].iloc[i], lo, hi)
        return "\n".join([head, f.assign(**text).to_string(index=False, float_format=_fmt)]
                         + _extrapolation_lines(self.extrapolation))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            **_head("AllocationDistribution"),
            "budget": self.budget, "N": self.N, "D": self.D, "loss": self.loss,
            "level": self.level, "law": self.law, "flops": self.flops, "solver": self.solver,
            "lower": self.lower, "upper": self.upper, "n_samples": self.n_samples,
            "samples": {k: np.asarray(v, dtype=float) for k, v in self.samples.items()},
            "extrapolation": self.extrapolation,
        })

    def __repr__(self) -> str:
        return self.summary()


@dataclass
class SplitPlan(_Saveable):
    """A split plan: shared pretraining (N, D), specialist tokens D'_k and predicted losses.

    ``split_fraction`` = D / (D + sum_k D'_k); ``flops`` = FLOPs used (equals the budget);
    ``objective_value`` = sum_k w_k L_k ("weighted") or max_k L_k ("worst"); ``baselines``: a
    DataFrame (index: plan, pretrain_only, from_scratch, fixed_N) of the same numbers.
    ``success``/``status``/``message``: the solver's report (scipy-style).
    """

    budget: float
    N: float
    D: float
    D_spec: dict[str, float]
    loss: dict[str, float]
    flops: float
    split_fraction: float
    objective: str
    objective_value: float
    weights: dict[str, float]
    caps: dict[str, float]
    success: bool
    status: int
    message: str
    solver: str
    n_starts: int
    baselines: pd.DataFrame | None
    laws: dict[str, str]
    flop_model: str = "6ND"
    _u: Any = field(default=None, repr=False)
    #: where the plan leaves the range of the fitted data (see
    #: :func:`mixopt.plan.extrapolation.extrapolation`); ``None``: not checked
    extrapolation: list[dict[str, Any]] | None = None

    @property
    def domains(self) -> list[str]:
        return list(self.D_spec)

    @property
    def tokens(self) -> float:
        """Total tokens processed: D + sum_k D'_k."""
        return self.D + sum(self.D_spec.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per domain: weight, cap, D'_k and predicted loss."""
        return pd.DataFrame({
            "weight": [self.weights[d] for d in self.domains],
            "cap": [self.caps.get(d, np.inf) for d in self.domains],
            "D_spec": [self.D_spec[d] for d in self.domains],
            "loss": [self.loss[d] for d in self.domains],
            "law": [self.laws[d] for d in self.domains],
        }, index=pd.Index(self.domains, name="domain"))

    def summary(self) -> str:
        lines = [
            f"Split plan ({self.objective} objective, solver {self.solver}, "
            f"{'success' if self.success else 'FAILED'}: {self.message})",
            f"budget {self.budget:.4e} FLOPs ({self.flop_model}), used {self.flops:.4e}",
            f"model N = {_whole(self.N)} parameters",
            f"shared pretraining D = {_whole(self.D)} tokens; specialisation "
            f"{_whole(sum(self.D_spec.values()))} tokens; split fraction "
            f"D/(D + sum D') = {self.split_fraction:.4f}",
            f"objective = {self.objective_value:.6g}",
            _frame_text(self.to_frame(), ("cap", "D_spec")),
        ]
        if self.baselines is not None:
            lines += ["baselines (same budget, same objective):",
                      _frame_text(self.baselines, ("N", "D", "D_spec_total"))]
        return "\n".join(lines + _extrapolation_lines(self.extrapolation))

    def to_dict(self) -> dict[str, Any]:
        out = {**_head("SplitPlan"), **{k: getattr(self, k) for k in (
            "budget", "N", "D", "D_spec", "loss", "flops", "split_fraction", "objective",
            "objective_value", "weights", "caps", "success", "status", "message", "solver",
            "n_starts", "laws", "flop_model", "extrapolation")}}
        out["D"] = _zero_sub_token(self.D)
        out["D_spec"] = {k: _zero_sub_token(v) for k, v in self.D_spec.items()}
        out["caps"] = {k: v for k, v in self.caps.items()}
        base = None
        if self.baselines is not None:
            base = self.baselines.reset_index().to_dict(orient="records")
            for row in base:
                for c in ("D", "D_spec_total"):
                    if c in row:
                        row[c] = _zero_sub_token(row[c])
        out["baselines"] = base
        return _jsonable(out)

    def __repr__(self) -> str:
        return self.summary()


@dataclass
class Frontier(_Saveable):
    """Split plans over an array of budgets: ``frame`` has one row per budget."""

    frame: pd.DataFrame
    domains: list[str]
    objective: str
    solver: str
    #: where each budget's plan leaves the range of the fitted data (records with their
    #: ``budget``; see :func:`mixopt.plan.extrapolation.extrapolation`); ``None``: not checked
    extrapolation: list[dict[str, Any]] | None = None

    @property
    def budget(self) -> np.ndarray:
        return self.frame["budget"].to_numpy()

    @property
    def split_fraction(self) -> np.ndarray:
        return self.frame["split_fraction"].to_numpy()

    @property
    def objective_value(self) -> np.ndarray:
        return self.frame["objective"].to_numpy()

    @property
    def success(self) -> bool:
        return bool(self.frame["success"].all())

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def summary(self, max_rows: int = 12) -> str:
        f = self.frame
        if len(f) > max_rows:
            idx = np.unique(np.linspace(0, len(f) - 1, max_rows).round().astype(int))
            f = f.iloc[idx]
        cols = [c for c in ("budget", "N", "D", "split_fraction", "objective", "pretrain_only",
                            "success") if c in f.columns]
        return (f"Split frontier over {len(self.frame)} budgets ({self.objective} objective, "
                f"solver {self.solver}; {int(self.frame['success'].sum())} succeeded)\n"
                + "\n".join([_frame_text(f[cols], ("N", "D"), index=False)]
                            + _extrapolation_lines(self.extrapolation)))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({**_head("Frontier"),
                          "frame": self.frame.to_dict(orient="list"), "domains": self.domains,
                          "objective": self.objective, "solver": self.solver,
                          "extrapolation": self.extrapolation})

    def plot(self, **kwargs: Any) -> Any:
        from mixopt.plan.figures import plot_frontier

        return plot_frontier(self, **kwargs)

    def __repr__(self) -> str:
        return self.summary()
