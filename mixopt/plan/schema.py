"""What a saved plan must hold: one schema per plan kind (:mod:`mixopt._schema`: fields, types,
ranges) and the rules that tie its fields together (the budget the FLOP model spends, weights on
the simplex, the objective of the losses, percentile intervals of the saved resamples,
extrapolation records of the saved numbers). :func:`check_plan_dict` applies both; a violation
raises :class:`~mixopt.errors.PlanError` naming the field. Used by :mod:`mixopt.plan.io`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from mixopt import _schema as S
from mixopt.errors import PlanError

__all__ = ["check_plan_dict", "KINDS"]

_RTOL = 1e-6  # cross-field agreement (numbers are saved with repr: exact, sub-tokens as 0)
_VARIABLE = re.compile(r"N|D|(D_spec|D_eff|h)\[.+\]")


# ------------------------------------------------------------------------------- schemas
_POS = S.Num(low=0.0, open_low=True)
_NONNEG = S.Num(low=0.0)
#: a loss or objective: NaN/inf (saved as strings, or null from the CLI) only in failed plans
_LOSS = S.Num(finite=False, encoded=True, nullable=True)
_POS_LOSS = S.Num(low=0.0, open_low=True, finite=False, encoded=True, nullable=True)
_FORMAT = S.Int(low=1, high=1)
_REC = S.Obj({"variable": S.Str(), "value": S.Num(), "data_min": S.Num(), "data_max": S.Num(),
              "side": S.Str(("below", "above")), "ratio": S.Num(low=0.0, nullable=True),
              "budget": _POS}, optional=("budget",))
_EXTRAP = S.Arr(_REC, nullable=True)


def _one_or_many(spec: S.Spec) -> S.Spec:
    return S.AnyOf([spec, S.Arr(spec, min_len=1)])


_ALLOCATION = S.Obj({
    "kind": S.Str(("Allocation",)), "format": _FORMAT,
    "budget": _one_or_many(_POS), "N": _one_or_many(_POS), "D": _one_or_many(_POS),
    "loss": _one_or_many(_LOSS), "law": S.Str(), "flops": S.Str(), "solver": S.Str(),
    "success": S.Bool(), "status": S.Str(("optimal", "failed")), "message": S.Str(),
    "constraints": S.Dict(_POS), "extrapolation": _EXTRAP,
})
_INTERVAL = S.Obj({"N": _one_or_many(S.Num(finite=False, encoded=True, nullable=True)),
                   "D": _one_or_many(S.Num(finite=False, encoded=True, nullable=True)),
                   "loss": _one_or_many(S.Num(finite=False, encoded=True, nullable=True))},
                  closed=True)
_SAMPLES = S.Arr(S.Arr(S.Num(finite=False, encoded=True, nullable=True), min_len=1), min_len=1)
_DISTRIBUTION = S.Obj({
    "kind": S.Str(("AllocationDistribution",)), "format": _FORMAT,
    "budget": _one_or_many(_POS), "N": _one_or_many(_POS), "D": _one_or_many(_POS),
    "loss": _one_or_many(_LOSS), "level": S.Num(low=0.0, high=1.0, open_low=True,
                                                 open_high=True),
    "law": S.Str(), "flops": S.Str(), "solver": S.Str(), "lower": _INTERVAL,
    "upper": _INTERVAL, "n_samples": S.Int(low=1),
    "samples": S.Obj({"N": _SAMPLES, "D": _SAMPLES, "loss": _SAMPLES}, closed=True),
    "extrapolation": _EXTRAP,
})
_SPLIT = S.Obj({
    "kind": S.Str(("SplitPlan",)), "format": _FORMAT,
    "budget": _POS, "N": _POS, "D": _NONNEG, "D_spec": S.Dict(_NONNEG), "loss": S.Dict(_LOSS),
    "flops": _POS, "split_fraction": S.Num(low=0.0, high=1.0),
    "objective": S.Str(("weighted", "worst")), "objective_value": _LOSS,
    "weights": S.Dict(_NONNEG), "caps": S.Dict(_NONNEG), "success": S.Bool(),
    "status": S.Int(), "message": S.Str(), "solver": S.Str(), "n_starts": S.Int(low=0),
    "laws": S.Dict(S.Str()), "flop_model": S.Str(), "extrapolation": _EXTRAP,
    "baselines": S.Arr(S.Obj({"baseline": S.Str(("plan", "pretrain_only", "from_scratch",
                                                  "fixed_N")),
                              "objective": _LOSS, "N": _POS, "D": _NONNEG,
                              "D_spec_total": _NONNEG,
                              "split_fraction": S.Num(low=0.0, high=1.0)}), min_len=1,
                       nullable=True),
})
_FRONTIER = S.Obj({
    "kind": S.Str(("Frontier",)), "format": _FORMAT,
    "frame": S.Obj({"budget": S.Arr(_POS, min_len=1), "N": S.Arr(_POS, min_len=1),
                    "D": S.Arr(_NONNEG, min_len=1),
                    "split_fraction": S.Arr(S.Num(low=0.0, high=1.0), min_len=1),
                    "objective": S.Arr(_LOSS, min_len=1), "success": S.Arr(S.Bool(), min_len=1),
                    "solver": S.Arr(S.Str(), min_len=1),
                    "pretrain_only": S.Arr(_LOSS, min_len=1)}),
    "domains": S.Arr(S.Str(), min_len=1), "objective": S.Str(("weighted", "worst")),
    "solver": S.Str(), "extrapolation": _EXTRAP,
})
_MIXTURE = S.Obj({
    "kind": S.Str(("MixtureAllocation",)), "format": _FORMAT,
    "weights": S.Dict(S.Num(low=0.0, high=1.0, nullable=True)),
    "loss": S.Dict(_LOSS), "objective": _LOSS, "N": _POS, "D": _POS, "flops": _POS,
    "budget": S.Num(low=0.0, open_low=True, nullable=True), "success": S.Bool(),
    "status": S.Int(low=0, high=1), "message": S.Str(), "outside": S.Arr(S.Str()),
    "extrapolation": _EXTRAP,
}, optional=("extrapolation",))
_PATH = S.Obj({"kind": S.Str(("MixturePath",)), "format": _FORMAT,
               "plans": S.Arr(S.Obj(), min_len=1)})
_MIXTURE_SPLIT = S.Obj({
    "kind": S.Str(("MixtureSplitPlan",)), "format": _FORMAT,
    "weights": S.Dict(S.Num(low=0.0, high=1.0, nullable=True)), "N": _POS, "D": _NONNEG,
    "D_spec": S.Dict(_NONNEG), "D_eff": S.Dict(_NONNEG), "loss": S.Dict(_LOSS),
    "objective": _LOSS, "budget": _POS, "success": S.Bool(), "message": S.Str(),
    "notes": S.Arr(S.Str()), "extrapolation": _EXTRAP,
}, optional=("extrapolation",))


# ------------------------------------------------------------------------------- cross-field
def _fail(prefix: str, msg: str) -> None:
    raise PlanError(f"{prefix}{msg}")


def _close(a: float, b: float, rtol: float = _RTOL) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rtol * max(abs(a), abs(b),
                                                                               1e-300)


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _vec(x: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray([_nan(v) for v in (x if isinstance(x, list) else [x])],
                                    dtype=float))


def _same_keys(d: dict, prefix: str, ref: str, *others: str) -> list[str]:
    keys = list(d[ref])
    for name in others:
        if sorted(d[name]) != sorted(keys):
            _fail(prefix, f"{name}: expected the domains {keys} (as {ref}), got "
                          f"{sorted(d[name])}")
    return keys


def _simplex(w: dict[str, Any], prefix: str, path: str, required: bool) -> None:
    vals = list(w.values())
    if not vals:
        _fail(prefix, f"{path}: expected one weight per domain, got none")
    if any(v is None for v in vals):
        if required:
            _fail(prefix, f"{path}: expected a weight for every domain in a solved plan, got "
                          "null")
        return
    if vals and abs(sum(vals) - 1.0) > 1e-6:
        _fail(prefix, f"{path}: expected weights summing to 1 (on the simplex), got sum "
                      f"{sum(vals)!r}")


def _finite_if_success(d: dict, prefix: str, *fields: str) -> None:
    if not d["success"]:
        return
    for f in fields:
        vals = d[f].values() if isinstance(d[f], dict) else _vec(d[f])
        bad = [v for v in vals if v is None or not math.isfinite(v) or v <= 0]
        if bad:
            _fail(prefix, f"{f}: expected finite positive values in a successful plan, got "
                          f"{bad[0]!r}")


def _check_records(d: dict, prefix: str, budgets: np.ndarray | None = None) -> None:
    for i, r in enumerate(d.get("extrapolation") or []):
        where = f"extrapolation[{i}]"
        if not _VARIABLE.fullmatch(r["variable"]):
            _fail(prefix, f"{where}.variable: expected N, D, D_spec[<domain>], h[<domain>] or "
                          f"D_eff[<domain>], got {r['variable']!r}")
        if r["data_min"] < 0:
            _fail(prefix, f"{where}.data_min: expected a non-negative amount, got "
                          f"{r['data_min']!r}")
        if not r["data_min"] <= r["data_max"]:
            _fail(prefix, f"{where}: expected data_min <= data_max, got [{r['data_min']}, "
                          f"{r['data_max']}]")
        if r["side"] == "below" and not r["value"] < r["data_min"]:
            _fail(prefix, f"{where}: side 'below' needs value < data_min, got {r['value']!r} "
                          f"and {r['data_min']!r}")
        if r["side"] == "above" and not r["value"] > r["data_max"]:
            _fail(prefix, f"{where}: side 'above' needs value > data_max, got {r['value']!r} "
                          f"and {r['data_max']!r}")
        end = "data_min" if r["side"] == "below" else "data_max"
        ref = r[end]
        if r["ratio"] is None and ref != 0:
            _fail(prefix, f"{where}.ratio: expected value / {end} = {r['value'] / ref!r} (null "
                          f"only when {end} is 0), got null")
        if r["ratio"] is not None and ref != 0 and not _close(r["ratio"], r["value"] / ref):
            _fail(prefix, f"{where}.ratio: expected value / {end} = {r['value'] / ref!r}, got "
                          f"{r['ratio']!r}")
        if budgets is not None and "budget" in r and not np.any(
                np.isclose(budgets, r["budget"], rtol=1e-12, atol=0)):
            _fail(prefix, f"{where}.budget: expected one of the plan's budgets, got "
                          f"{r['budget']!r}")


def _check_allocation(d: dict, prefix: str) -> None:
    budget, N, D = _vec(d["budget"]), _vec(d["N"]), _vec(d["D"])
    shapes = {k: np.shape(d[k]) for k in ("budget", "N", "D", "loss")}
    if len(set(shapes.values())) != 1:
        _fail(prefix, f"expected budget, N, D and loss of one shape, got {shapes}")
    if d["success"] != (d["status"] == "optimal"):
        _fail(prefix, f"status: expected 'optimal' exactly when success is true, got "
                      f"{d['status']!r} with success={d['success']}")
    _finite_if_success(d, prefix, "loss")
    if d["flops"] == "6ND":
        used = 6.0 * N * D
        bad = ~np.isclose(used, budget, rtol=_RTOL, atol=0)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            _fail(prefix, f"N, D: expected 6 N D = budget ({budget[i]!r} FLOPs), got "
                          f"{used[i]!r}")
    c = d["constraints"]
    unknown = sorted(set(c) - {"N", "D", "max_D", "min_N", "max_N"})
    if unknown:
        _fail(prefix, f"constraints: unknown key(s) {unknown}")
    for key, vals, test, word in (("N", N, lambda v, x: np.isclose(v, x, rtol=1e-12), "="),
                                  ("D", D, lambda v, x: np.isclose(v, x, rtol=1e-12), "="),
                                  ("min_N", N, lambda v, x: v >= x * (1 - 1e-12), ">="),
                                  ("max_N", N, lambda v, x: v <= x * (1 + 1e-12), "<="),
                                  ("max_D", D, lambda v, x: v <= x * (1 + 1e-9), "<=")):
        if key in c and not np.all(test(vals, c[key])):
            var = "D" if "D" in key else "N"
            _fail(prefix, f"{var}: expected {var} {word} constraints.{key} = {c[key]!r}, got "
                          f"{vals.tolist()}")
    _check_records(d, prefix, budget)


def _check_distribution(d: dict, prefix: str) -> None:
    budget = _vec(d["budget"])
    n_b = budget.size
    shapes = {k: np.shape(d[k]) for k in ("budget", "N", "D", "loss")}
    if len(set(shapes.values())) != 1:
        _fail(prefix, f"expected budget, N, D and loss of one shape, got {shapes}")
    q = [(1 - d["level"]) / 2, 1 - (1 - d["level"]) / 2]
    for name in ("N", "D", "loss"):
        rows = d["samples"][name]
        widths = {len(r) for r in rows}
        if len(rows) != d["n_samples"] or widths != {n_b}:
            _fail(prefix, f"samples.{name}: expected {d['n_samples']} (n_samples) rows of "
                          f"{n_b} budgets, got {len(rows)} rows of {sorted(widths)}")
        arr = np.array([[_nan(v) for v in r] for r in rows], dtype=float)
        with np.errstate(all="ignore"), _quiet():
            lo, hi = np.nanquantile(arr, q, axis=0)
        for side, want in (("lower", lo), ("upper", hi)):
            got = _vec(d[side][name])
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=0,
                                                          equal_nan=True):
                _fail(prefix, f"{side}.{name}: expected the {d['level']:g} percentile interval "
                              f"of samples.{name} ({want.tolist()}), got {got.tolist()}")
    if d["flops"] == "6ND":
        used = 6.0 * _vec(d["N"]) * _vec(d["D"])
        if not np.allclose(used, budget, rtol=_RTOL, atol=0):
            _fail(prefix, f"N, D: expected 6 N D = budget {budget.tolist()}, got "
                          f"{used.tolist()}")
    _check_records(d, prefix, budget)


class _quiet:
    """Silence numpy's all-NaN-slice RuntimeWarning while recomputing percentiles."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def _objective_of(d: dict, prefix: str, losses: dict[str, Any], weights: dict[str, float],
                  kind: str, field: str) -> None:
    value = d[field]
    if kind != "worst":
        losses = {k: v for k, v in losses.items() if weights[k] > 0}
    L = np.array([_nan(losses[k]) for k in losses])
    if value is None or not math.isfinite(value) or not np.all(np.isfinite(L)):
        return
    want = float(L.max()) if kind == "worst" else float(
        sum(weights[k] * _nan(losses[k]) for k in losses))
    if not _close(value, want, 1e-9):
        _fail(prefix, f"{field}: expected the {kind} objective of loss ({want!r}), got "
                      f"{value!r}")


def _check_split(d: dict, prefix: str) -> None:
    doms = _same_keys(d, prefix, "D_spec", "loss", "weights", "laws")
    extra = [k for k in d["caps"] if k not in doms]
    if extra:
        _fail(prefix, f"caps: unknown domain(s) {extra}; the domains are {doms}")
    _simplex(d["weights"], prefix, "weights", True)
    for k, cap in d["caps"].items():
        if d["D_spec"][k] > cap * (1 + 1e-9) + 0.5:
            _fail(prefix, f"D_spec.{k}: expected at most caps.{k} = {cap!r} tokens, got "
                          f"{d['D_spec'][k]!r}")
    total = d["D"] + sum(d["D_spec"].values())
    if total > 0 and abs(d["split_fraction"] - d["D"] / total) > 1e-9:
        _fail(prefix, f"split_fraction: expected D / (D + sum D_spec) = {d['D'] / total!r}, got "
                      f"{d['split_fraction']!r}")
    if d["flop_model"] == "6ND" and not _close(d["flops"], 6.0 * d["N"] * total):
        _fail(prefix, f"flops: expected 6 N (D + sum D_spec) = {6.0 * d['N'] * total!r}, got "
                      f"{d['flops']!r}")
    if not _close(d["flops"], d["budget"]):
        _fail(prefix, f"flops: expected the budget {d['budget']!r} (a plan spends it), got "
                      f"{d['flops']!r}")
    if d["success"] and (d["objective_value"] is None or not math.isfinite(
            d["objective_value"])):
        _fail(prefix, f"objective_value: expected a finite number in a successful plan, got "
                      f"{d['objective_value']!r}")
    if d["success"]:  # a domain of weight 0 may get no tokens at all (infinite loss)
        live = {k: v for k, v in d["loss"].items()
                if d["objective"] == "worst" or d["weights"][k] > 0}
        _finite_if_success({"success": True, "loss": live}, prefix, "loss")
    _objective_of(d, prefix, d["loss"], d["weights"], d["objective"], "objective_value")
    if d["baselines"] is not None:
        loss_cols = {f"loss[{k}]" for k in doms}
        fixed = {"baseline", "objective", "N", "D", "D_spec_total", "split_fraction"}
        for i, row in enumerate(d["baselines"]):
            if set(row) - fixed != loss_cols:
                _fail(prefix, f"baselines[{i}]: expected the columns {sorted(fixed)} and "
                              f"{sorted(loss_cols)}, got {sorted(row)}")
            for c in sorted(loss_cols) + ["objective"]:
                row[c] = S.check(row[c], _POS_LOSS, PlanError, prefix, f"baselines[{i}].{c}")
            where = f"baselines[{i}] ({row['baseline']})"
            used = 6.0 * row["N"] * (row["D"] + row["D_spec_total"])
            if d["flop_model"] == "6ND" and not _close(used, d["budget"]):
                _fail(prefix, f"{where}: expected 6 N (D + D_spec_total) = budget "
                              f"{d['budget']!r}, got {used!r}")
            _objective_of(row, f"{prefix}{where}.", {k: row[f"loss[{k}]"] for k in doms},
                          d["weights"], d["objective"], "objective")
            if row["baseline"] == "plan":
                for key, own in (("N", d["N"]), ("D", d["D"]),
                                 ("D_spec_total", sum(d["D_spec"].values())),
                                 ("objective", d["objective_value"]),
                                 *((f"loss[{k}]", d["loss"][k]) for k in doms)):
                    a, b = _nan(row[key]), _nan(own)
                    if not (a == b or _close(a, b, 1e-9) or (math.isnan(a) and math.isnan(b))
                            or abs(a - b) <= 0.5 and key in ("D", "D_spec_total")):
                        _fail(prefix, f"{where}.{key}: expected the plan's own value {b!r}, "
                                      f"got {a!r}")
        names = [r["baseline"] for r in d["baselines"]]
        if len(set(names)) != len(names):
            _fail(prefix, f"baselines: expected each baseline once, got {names}")
    _check_records(d, prefix)


def _check_frontier(d: dict, prefix: str) -> None:
    frame = d["frame"]
    need = [f"D_spec[{k}]" for k in d["domains"]] + [f"loss[{k}]" for k in d["domains"]]
    missing = [c for c in need if c not in frame]
    if missing:
        _fail(prefix, f"frame: missing column(s) {missing} for the domains {d['domains']}")
    if not all(isinstance(v, list) for v in frame.values()):
        _fail(prefix, "frame: expected one list per column")
    lengths = {c: len(v) for c, v in frame.items()}
    n = lengths["budget"]
    uneven = {c: m for c, m in lengths.items() if m != n}
    if uneven:
        _fail(prefix, f"frame: expected every column to hold {n} budgets, got {uneven}")
    for c in need:
        spec = _NONNEG if c.startswith("D_spec") else _LOSS
        S.check(frame[c], S.Arr(spec), PlanError, prefix, f"frame.{c}")
    _check_records(d, prefix, np.asarray(frame["budget"], dtype=float))


def _check_mixture(d: dict, prefix: str) -> None:
    _simplex(d["weights"], prefix, "weights", d["success"])
    if not d["loss"]:
        _fail(prefix, "loss: expected one predicted loss per evaluation domain, got none")
    _finite_if_success(d, prefix, "loss")
    if d["success"] and (d["objective"] is None or not math.isfinite(d["objective"])):
        _fail(prefix, f"objective: expected a finite number in a solved plan, got "
                      f"{d['objective']!r}")
    if d["success"]:  # a weighted mean (weights normalised) or the worst of the losses
        vals = [float(v) for v in d["loss"].values()]
        lo, hi = min(vals), max(vals)
        tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
        if lo <= 0:
            _fail(prefix, f"loss: expected positive predicted losses, got {lo!r}")
        if not lo - tol <= float(d["objective"]) <= hi + tol:
            _fail(prefix, f"objective: expected a value between the smallest and the largest "
                          f"predicted loss ({lo!r} to {hi!r}), got {d['objective']!r}")
    if d["budget"] is not None and not _close(d["flops"], d["budget"]):
        _fail(prefix, f"flops: expected the budget {d['budget']!r} (a budget plan spends it), "
                      f"got {d['flops']!r}")
    if d["success"] and d["status"] != 0:
        _fail(prefix, f"status: expected 0 in a solved plan, got {d['status']!r}")
    _check_records(d, prefix)


def _check_mixture_split(d: dict, prefix: str) -> None:
    _same_keys(d, prefix, "D_spec", "D_eff", "loss")
    _simplex(d["weights"], prefix, "weights", d["success"])
    _finite_if_success(d, prefix, "loss")
    total = d["D"] + sum(d["D_spec"].values())
    if not _close(6.0 * d["N"] * total, d["budget"]):
        _fail(prefix, f"N, D, D_spec: expected 6 N (D + sum D_spec) = budget {d['budget']!r}, "
                      f"got {6.0 * d['N'] * total!r}")
    _check_records(d, prefix)


#: kind -> (schema, cross-field check)
KINDS: dict[str, tuple[S.Spec, Any]] = {
    "Allocation": (_ALLOCATION, _check_allocation),
    "AllocationDistribution": (_DISTRIBUTION, _check_distribution),
    "SplitPlan": (_SPLIT, _check_split),
    "Frontier": (_FRONTIER, _check_frontier),
    "MixtureAllocation": (_MIXTURE, _check_mixture),
    "MixturePath": (_PATH, None),
    "MixtureSplitPlan": (_MIXTURE_SPLIT, _check_mixture_split),
}


def check_plan_dict(d: Any, prefix: str = "bad saved plan: ") -> dict[str, Any]:
    """Check a plan's ``to_dict()`` payload field by field; return it with numbers decoded.

    Parameters
    ----------
    d : dict
        The payload (``kind`` names the plan class, ``format`` the version).
    prefix : str
        Start of every error message.

    Returns
    -------
    dict
        The checked payload (``"inf"``/``"nan"`` strings decoded to floats).

    Raises
    ------
    PlanError
        A missing, mistyped, non-finite or out-of-range field, or fields that disagree (the
        message names the field and what was expected).
    """
    if not isinstance(d, Mapping):
        raise PlanError(f"{prefix}expected an object with a 'kind', got {type(d).__name__}")
    kind = d.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise PlanError(f"{prefix}kind: expected one of {list(KINDS)}, got {kind!r:.80}")
    spec, cross = KINDS[kind]
    out = S.check(d, spec, PlanError, prefix)
    if kind == "MixturePath":
        out["plans"] = [check_plan_dict({"kind": "MixtureAllocation", "format": d["format"],
                                         **{k: v for k, v in p.items() if k not in
                                            ("kind", "format")}},
                                        f"{prefix}plans[{i}].")
                        for i, p in enumerate(d["plans"])]
        budgets = [p["budget"] for p in out["plans"]]
        if any(b is None for b in budgets):
            raise PlanError(f"{prefix}plans: expected a budget in every plan of a path")
        return out
    cross(out, prefix)
    return out
