"""JSON persistence of fits and bootstraps (never pickle).

Python's ``json`` writes a float with ``repr``, the shortest string that reads back to the same
double, so parameters round-trip bit for bit. Infinite bounds are written as the strings
``"inf"``/``"-inf"`` to keep the files standard JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixopt import _schema as S
from mixopt.data import validate
from mixopt.errors import FitError, LawError, MixoptError
from mixopt.laws import Law, get

__all__ = ["load", "write_json", "encode_float", "decode_float", "law_from_dict",
           "check_fit_dict", "check_bootstrap_dict", "FORMAT"]

#: Version of the saved-fit format (the ``format`` field); files of another version are refused.
FORMAT = 1


def encode_float(x: float) -> float | str:
    x = float(x)
    if x == float("inf"):
        return "inf"
    if x == float("-inf"):
        return "-inf"
    if x != x:
        return "nan"
    return x


def decode_float(x: float | str) -> float:
    return float(x)


def write_json(path: Any, payload: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")


def law_from_dict(d: dict[str, Any], law: Law | None = None) -> Law:
    """Rebuild a registered law from ``{"name", "options"}``; a custom (unregistered) law must be
    passed as ``law``."""
    if law is not None:
        if not isinstance(law, Law):
            raise FitError(f"law must be a Law object, got {type(law).__name__}")
        if law.name != d.get("name"):
            raise FitError(f"the file holds law {d.get('name')!r} but law={law.name!r} was given")
        return law
    options = d.get("options", {})
    if not isinstance(options, dict) or not isinstance(d.get("name"), str):
        raise FitError(f"bad saved fit: law: expected {{'name': str, 'options': {{...}}}}, got "
                       f"{d!r:.80}")
    try:
        return get(d["name"], **options)
    except (LawError, TypeError) as exc:
        raise FitError(
            f"cannot rebuild law {d.get('name')!r} from the file ({exc}); for a custom law pass "
            "it as load(path, law=...) or register it with mixopt.laws.register"
        ) from None


def _read(path: Any) -> Any:
    """Parse the strict JSON file at ``path`` (``NaN``/``Infinity`` tokens refused)."""
    return S.read_json(path, FitError, "fit")


# ------------------------------------------------------------------------------- schemas
_NUM = S.Num()
_FIT_SCHEMA = S.Obj({
    "kind": S.Str(("FitResult",)),
    "format": S.Int(low=FORMAT, high=FORMAT),
    "law": S.Obj({"name": S.Str(), "options": S.Dict()}, optional=("options",)),
    "params": S.Dict(_NUM),
    "fixed": S.Dict(_NUM),
    "objective": S.Num(low=0.0),
    "status": S.Int(low=0),
    "message": S.Str(),
    "n_starts": S.Int(low=0),
    "nit": S.Int(low=0),
    "nfev": S.Int(low=0),
    "delta": S.Num(low=0.0, open_low=True),
    "bounds": S.Dict(S.Arr(S.Num(finite=False, encoded=True), length=2)),
    "data": S.Dict(S.Arr(_NUM, min_len=1)),
    "weights": S.Arr(S.Num(low=0.0), min_len=1),
    "time": S.Num(low=0.0),
}, optional=("time",))

_BOOT_SCHEMA = S.Obj({
    "kind": S.Str(("BootstrapResult",)),
    "format": S.Int(low=FORMAT, high=FORMAT),
    "fit": S.Obj(),
    "samples": S.Dict(S.Arr(_NUM)),
    "objective": S.Arr(S.Num(low=0.0, finite=False, encoded=True)),
    "converged": S.Arr(S.Bool()),
    "seed": S.Int(low=0, nullable=True),
    "time": S.Num(low=0.0),
}, optional=("time", "seed"))


def check_fit_dict(d: Any, law: Law | None = None, prefix: str = "bad saved fit: ") -> Law:
    """Check a :meth:`FitResult.to_dict` payload field by field; return its (rebuilt) law.

    Checks: the structure and types (:data:`_FIT_SCHEMA`); the law rebuilds; ``params`` names
    exactly the law's parameters, each finite and inside the saved bounds (the bounds the fit
    was made with, which ``fit(bounds=)`` may have widened beyond the law's defaults);
    ``fixed`` is a subset of them with the same values; every bound pair is ordered and one
    that ``fit(bounds=)`` accepts (a positive parameter keeps a lower bound >= 0); ``data``
    holds the law's variables and ``loss`` as equally long, valid columns; ``weights`` has one
    entry per run with a positive sum; the law predicts a finite positive loss at every run.
    Raises :class:`FitError` naming the field and the expected type or range.
    """
    d = S.check(d, _FIT_SCHEMA, FitError, prefix)
    law = law_from_dict(d["law"], law)
    names = list(law.param_names)
    for key in ("params", "bounds"):
        if sorted(d[key]) != sorted(names):
            raise FitError(f"{prefix}{key}: expected the parameters {names} of law "
                           f"{law.name!r}, got {sorted(d[key])}")
    extra = [k for k in d["fixed"] if k not in names]
    if extra:
        raise FitError(f"{prefix}fixed: {extra} are not parameters of law {law.name!r} "
                       f"({names})")
    for name, value in d["fixed"].items():
        if value != d["params"][name]:
            raise FitError(f"{prefix}fixed.{name}: expected the fitted value "
                           f"{d['params'][name]!r} (params.{name}), got {value!r}")
    for name in names:
        lo, hi = d["bounds"][name]
        if not lo <= hi:  # also refuses NaN
            raise FitError(f"{prefix}bounds.{name}: expected lower <= upper, got [{lo}, {hi}]")
        if law.parameter(name).log and lo < 0:  # as fit(bounds=) refuses: the law needs > 0
            raise FitError(f"{prefix}bounds.{name}: expected a lower bound >= 0 ({name} of law "
                           f"{law.name!r} is positive), got [{lo}, {hi}]")
        v = d["params"][name]
        # the fit's own bounds (fit(bounds=) may widen the law's defaults), not the law's
        tol = 1e-9 * max(abs(lo) if np.isfinite(lo) else 0.0, abs(hi) if np.isfinite(hi) else 0.0,
                         1e-300)
        if v < lo - tol or v > hi + tol:
            raise FitError(f"{prefix}params.{name}: expected a value within the saved bounds "
                           f"[{lo}, {hi}], got {v!r}")
    try:
        law.check_params(d["params"], bounds=False)  # real, finite, positive where needed
    except LawError as exc:
        raise FitError(f"{prefix}params: {exc}") from None
    need = list(law.variables) + ["loss"]
    missing = [c for c in need if c not in d["data"]]
    if missing:
        raise FitError(f"{prefix}data: missing column(s) {missing} (law {law.name!r} reads "
                       f"{list(law.variables)} and the fit needs 'loss')")
    lengths = {c: len(v) for c, v in d["data"].items()}
    n = lengths["loss"]
    uneven = {c: m for c, m in lengths.items() if m != n}
    if uneven:
        raise FitError(f"{prefix}data: expected every column to hold {n} runs (as 'loss'), got "
                       f"{uneven}")
    if len(d["weights"]) != n:
        raise FitError(f"{prefix}weights: expected {n} entries (one per run), got "
                       f"{len(d['weights'])}")
    if not sum(d["weights"]) > 0:
        raise FitError(f"{prefix}weights: expected a positive sum, got {sum(d['weights'])!r}")
    frame = pd.DataFrame({c: np.asarray(v, dtype=float) for c, v in d["data"].items()})
    try:
        validate(frame, law.variables, nonnegative=law.nonnegative, what="saved data")
        with np.errstate(all="ignore"):
            pred = law.predict(d["params"], frame, bounds=False)  # bounds checked above
    except MixoptError as exc:
        raise FitError(f"{prefix}data: {exc}") from None
    if not np.all(np.isfinite(pred) & (pred > 0)):
        i = int(np.flatnonzero(~(np.isfinite(pred) & (pred > 0)))[0])
        raise FitError(f"{prefix}params: law {law.name!r} predicts {float(pred[i])!r} at saved run "
                       f"{i}; expected a finite positive loss")
    return law


def check_bootstrap_dict(d: Any, law: Law | None = None,
                         prefix: str = "bad saved bootstrap: ") -> Law:
    """Check a :meth:`BootstrapResult.to_dict` payload (and its ``fit``); return the law.

    ``samples`` must name the fit's parameters, one column per parameter, all as long as
    ``objective`` and ``converged``; raises :class:`FitError` naming the field."""
    d = S.check(d, _BOOT_SCHEMA, FitError, prefix)
    law = check_fit_dict(d["fit"], law, prefix + "fit.")
    names = list(law.param_names)
    if sorted(d["samples"]) != sorted(names):
        raise FitError(f"{prefix}samples: expected one column per parameter {names}, got "
                       f"{sorted(d['samples'])}")
    n = len(d["objective"])
    lengths = {f"samples.{c}": len(v) for c, v in d["samples"].items()}
    lengths["converged"] = len(d["converged"])
    uneven = {c: m for c, m in lengths.items() if m != n}
    if uneven:
        raise FitError(f"{prefix}expected {n} resamples everywhere (as 'objective'), got {uneven}")
    return law


def load(path: Any, *, law: Law | None = None) -> Any:
    """Read a saved :class:`FitResult` or :class:`BootstrapResult` (chosen by the file's
    ``kind``). ``law`` supplies a custom law that is not registered.

    The file is checked against the saved object's schema (:func:`check_fit_dict`,
    :func:`check_bootstrap_dict`) before anything is built: a missing, mistyped, non-finite or
    out-of-range field raises :class:`~mixopt.errors.FitError` naming it."""
    d = _read(path)
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "FitResult":
        from mixopt.fitting.result import FitResult

        return FitResult.from_dict(d, law=law)
    if kind == "BootstrapResult":
        from mixopt.fitting.bootstrap import BootstrapResult

        law = check_bootstrap_dict(d, law)
        return BootstrapResult.from_dict(d, law=law)
    raise FitError(
        f"{str(path)!r} is not a saved mixopt fit (kind {kind!r}; expected 'FitResult' or "
        "'BootstrapResult')"
    )
