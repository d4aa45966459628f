"""Saved plans: ``mixopt.plan.save(plan, path)`` and ``mixopt.plan.load(path_or_dict)``.

Every plan's ``to_dict()`` carries ``kind`` (its class) and ``format`` (1); the file is strict
JSON (non-finite numbers as the strings ``"inf"``, ``"-inf"``, ``"nan"``, as saved fits write
them). :func:`load` checks the payload with :func:`mixopt.plan.schema.check_plan_dict` (its
kind's schema, then the rules that tie fields together), so a tampered file raises
:class:`~mixopt.errors.PlanError` naming the field instead of building a wrong plan.

The CLI's ``mixopt plan --json`` output loads too (its ``null`` for a non-finite number reads as
NaN where the field allows it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixopt import _schema as S
from mixopt.errors import PlanError
from mixopt.plan.schema import KINDS, _nan, check_plan_dict

__all__ = ["load", "save", "from_dict", "check_plan_dict", "KINDS"]


# ------------------------------------------------------------------------------- writing
def _encode(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _encode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_encode(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    return x


def save(plan: Any, path: Any) -> None:
    """Write ``plan.to_dict()`` to ``path`` as strict JSON (read back by :func:`load`).

    Parameters
    ----------
    plan : object
        A plan returned by a :mod:`mixopt.plan` function (one of :data:`KINDS`).
    path : str or os.PathLike
        The file to write.
    """
    to_dict = getattr(plan, "to_dict", None)
    if to_dict is None:
        raise PlanError(f"save needs a plan (with to_dict), got {type(plan).__name__}")
    d = to_dict()
    if d.get("kind") not in KINDS:
        raise PlanError(f"save: {type(plan).__name__} is not a saved plan kind ({list(KINDS)})")
    try:
        text = json.dumps(_encode(d), indent=1, allow_nan=False) + "\n"
        Path(path).write_text(text)
    except TypeError as exc:
        raise PlanError(f"save: cannot write {path!r}: {exc}") from None
    except OSError as exc:
        raise PlanError(f"save: cannot write {str(path)!r}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------- reading
def _read(path: Any) -> Any:
    return S.read_json(path, PlanError, "plan")


# ------------------------------------------------------------------------------- building
def _arr_or_float(x: Any) -> Any:
    return np.asarray([_nan(v) for v in x], dtype=float) if isinstance(x, list) else _nan(x)


def _records(x: Any) -> list[dict[str, Any]] | None:
    return None if x is None else [dict(r) for r in x]


def _build(d: dict[str, Any]) -> Any:
    from mixopt.plan.mixture import MixtureAllocation, MixturePath
    from mixopt.plan.mixture_split import MixtureSplitPlan
    from mixopt.plan.result import Allocation, AllocationDistribution, Frontier, SplitPlan

    kind = d["kind"]
    if kind == "Allocation":
        return Allocation(
            budget=_arr_or_float(d["budget"]), N=_arr_or_float(d["N"]), D=_arr_or_float(d["D"]),
            loss=_arr_or_float(d["loss"]), law=d["law"], flops=d["flops"], solver=d["solver"],
            success=d["success"], status=d["status"], message=d["message"],
            constraints=dict(d["constraints"]), extrapolation=_records(d["extrapolation"]))
    if kind == "AllocationDistribution":
        return AllocationDistribution(
            budget=_arr_or_float(d["budget"]), N=_arr_or_float(d["N"]), D=_arr_or_float(d["D"]),
            loss=_arr_or_float(d["loss"]),
            samples={k: np.array([[_nan(v) for v in r] for r in rows], dtype=float)
                     for k, rows in d["samples"].items()},
            level=d["level"], law=d["law"], flops=d["flops"], solver=d["solver"],
            scalar=not isinstance(d["budget"], list),
            extrapolation=_records(d["extrapolation"]))
    if kind == "SplitPlan":
        base = None
        if d["baselines"] is not None:
            base = pd.DataFrame([dict(r) for r in d["baselines"]]).set_index("baseline")
        return SplitPlan(
            budget=d["budget"], N=d["N"], D=d["D"], D_spec=dict(d["D_spec"]),
            loss={k: _nan(v) for k, v in d["loss"].items()}, flops=d["flops"],
            split_fraction=d["split_fraction"], objective=d["objective"],
            objective_value=_nan(d["objective_value"]), weights=dict(d["weights"]),
            caps=dict(d["caps"]), success=d["success"], status=d["status"],
            message=d["message"], solver=d["solver"], n_starts=d["n_starts"],
            baselines=base, laws=dict(d["laws"]), flop_model=d["flop_model"],
            extrapolation=_records(d["extrapolation"]))
    if kind == "Frontier":
        frame = pd.DataFrame({c: [(_nan(v) if isinstance(v, (int, float)) and not
                                   isinstance(v, bool) or v is None else v) for v in vals]
                              for c, vals in d["frame"].items()})
        return Frontier(frame=frame, domains=list(d["domains"]), objective=d["objective"],
                        solver=d["solver"], extrapolation=_records(d["extrapolation"]))
    if kind == "MixtureAllocation":
        return MixtureAllocation(
            weights=pd.Series({k: _nan(v) for k, v in d["weights"].items()}, name="weight",
                              dtype=float),
            loss={k: _nan(v) for k, v in d["loss"].items()}, objective=_nan(d["objective"]),
            N=d["N"], D=d["D"], flops=d["flops"], budget=d["budget"], success=d["success"],
            status=d["status"], message=d["message"], outside=list(d["outside"]),
            extrapolation=_records(d.get("extrapolation")))
    if kind == "MixturePath":
        return MixturePath([_build(p) for p in d["plans"]])
    return MixtureSplitPlan(
        weights=pd.Series({k: _nan(v) for k, v in d["weights"].items()}, name="weight",
                          dtype=float),
        N=d["N"], D=d["D"], D_spec=dict(d["D_spec"]), D_eff=dict(d["D_eff"]),
        loss={k: _nan(v) for k, v in d["loss"].items()}, objective=_nan(d["objective"]),
        budget=d["budget"], success=d["success"], message=d["message"],
        notes=list(d["notes"]), extrapolation=_records(d.get("extrapolation")))


def from_dict(d: Any) -> Any:
    """Rebuild a plan from its ``to_dict()`` payload, checked first (:func:`check_plan_dict`).

    Parameters
    ----------
    d : dict
        A plan's ``to_dict()`` output (or the parsed JSON of a saved plan).

    Returns
    -------
    object
        The plan (:class:`~mixopt.plan.result.Allocation`, ``AllocationDistribution``,
        ``SplitPlan``, ``Frontier``, ``MixtureAllocation``, ``MixturePath`` or
        ``MixtureSplitPlan``).
    """
    return _build(check_plan_dict(d))


def load(source: Any) -> Any:
    """Read a saved plan (:func:`save`, ``plan.save``) from a path, or rebuild one from a dict.

    Parameters
    ----------
    source : str, os.PathLike or dict
        A file written by :func:`save` (or the CLI's ``mixopt plan --json`` output), or a
        plan's ``to_dict()`` payload.

    Returns
    -------
    object
        The plan object of the saved ``kind``.

    Raises
    ------
    PlanError
        The file is missing, not JSON, or fails its schema (the message names the field).
    """
    d = source if isinstance(source, Mapping) else _read(source)
    return from_dict(d)
