"""Canonical run tables.

A run table is a :class:`pandas.DataFrame` with one row per training run. Canonical columns:

==========  =====================================================================
``N``       model parameters (non-embedding, as in the law being fitted)
``D``       pretraining tokens
``D_spec``  specialisation (continued-pretraining) tokens on one domain; may be 0
``loss``    final evaluation loss (nats per token)
``C``       training FLOPs (optional); when ``D`` is absent it is derived as
            ``D = C / (6 N)`` (Kaplan et al. 2020, eq. 2.1 / Hoffmann et al. 2022)
``domain``  domain label (optional)
``run``     run identifier (optional)
==========  =====================================================================

:func:`standardize` maps common aliases (``params``, ``tokens``, ``flops``, the column names of
Epoch AI's Chinchilla extraction, ...) onto these names; :func:`validate` checks that a table can
be fitted by a law and raises :class:`~mixopt.errors.DataError` naming the culprit otherwise.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import DataError

__all__ = ["COLUMNS", "ALIASES", "standardize", "validate", "as_arrays", "not_real"]

#: canonical column names of a run table (``standardize`` maps ``ALIASES`` onto them)
COLUMNS = ("N", "D", "D_spec", "loss", "C", "domain", "run")

#: alias (lower-cased, spaces and dashes as underscores) -> canonical column
ALIASES: dict[str, str] = {
    "n": "N",
    "params": "N",
    "parameters": "N",
    "n_params": "N",
    "num_params": "N",
    "model_size": "N",
    "d": "D",
    "tokens": "D",
    "n_tokens": "D",
    "num_tokens": "D",
    "train_tokens": "D",
    "pretrain_tokens": "D",
    "d_spec": "D_spec",
    "d_prime": "D_spec",
    "d'": "D_spec",
    "spec_tokens": "D_spec",
    "specialisation_tokens": "D_spec",
    "specialization_tokens": "D_spec",
    "domain_tokens": "D_spec",
    "loss": "loss",
    "eval_loss": "loss",
    "val_loss": "loss",
    "c": "C",
    "flops": "C",
    "compute": "C",
    "training_flop": "C",
    "training_flops": "C",
    "domain": "domain",
    "run": "run",
}

def _scalar(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for readable error messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _names(value: Any, arg: str) -> list[str]:
    """A list of column names; a bare string is refused (it would be split into characters)."""
    if isinstance(value, (str, bytes)):
        raise DataError(f"{arg} must be a list of column names, got the string {value!r} "
                        f"(write [{value!r}] for one column)")
    try:
        return [str(v) for v in value]
    except TypeError:
        raise DataError(f"{arg} must be a list of column names, got {value!r}") from None


def not_real(values: Any) -> str | None:
    """Why ``values`` (an array or Series) are not real numbers, or None if they may be.

    Booleans, complex numbers, datetimes, timedeltas and byte/unicode strings are refused
    outright (numpy would turn ``True`` into 1.0 and drop an imaginary part); object arrays
    are checked element by element."""
    dtype = getattr(values, "dtype", None)
    kind = getattr(dtype, "kind", None)
    names = {"b": "booleans", "c": "complex numbers", "M": "datetimes", "m": "timedeltas",
             "U": "strings", "S": "bytes"}
    if kind in names:
        return f"{names[kind]} (dtype {dtype})"
    if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.PeriodDtype):
        return f"dtype {dtype}"
    if kind == "O" or dtype is None:
        flat = np.asarray(values, dtype=object).reshape(-1)
        for x in flat:
            if isinstance(x, (bool, np.bool_)):
                return f"a boolean {x!r}"
            if isinstance(x, (complex, np.complexfloating)):
                return f"a complex number {x!r}"
            if isinstance(x, (np.datetime64, np.timedelta64, pd.Timestamp, pd.Timedelta,
                              _dt.date, _dt.time, _dt.timedelta)):
                return f"a date/time {x!r}"
    return None


def _key(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def standardize(
    data: pd.DataFrame | Mapping[str, Any], *, keep: Sequence[str] = ()
) -> pd.DataFrame:
    """Return a copy of ``data`` with canonical column names and ``D`` derived from ``C``.

    Columns whose name (case-insensitive) is a known alias are renamed; unknown columns are kept
    unchanged. Columns named in ``keep`` (e.g. a law's mixture columns ``c`` or ``tokens``) are
    never renamed. If ``D`` is missing but ``C`` and ``N`` are present, ``D = C / (6 N)``.
    """
    keep = set(_names(keep, "keep"))
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    elif isinstance(data, Mapping):
        try:
            frame = pd.DataFrame({k: np.asarray(v) for k, v in data.items()})
        except ValueError as exc:
            raise DataError(f"run table columns have mismatched lengths: {exc}") from None
    else:
        raise DataError(
            "run table must be a pandas DataFrame or a mapping of columns, "
            f"got {type(data).__name__}"
        )
    rename: dict[str, str] = {}
    taken = set()
    for col in frame.columns:
        if col in COLUMNS:
            taken.add(col)
    for col in frame.columns:
        if col in COLUMNS or str(col) in keep:
            continue
        target = ALIASES.get(_key(col))
        if target is not None and target not in taken:
            rename[col] = target
            taken.add(target)
    frame = frame.rename(columns=rename)
    if "D" not in frame.columns and "C" in frame.columns and "N" in frame.columns:
        frame["D"] = pd.to_numeric(frame["C"], errors="coerce") / (
            6.0 * pd.to_numeric(frame["N"], errors="coerce")
        )
    return frame


def validate(
    data: pd.DataFrame | Mapping[str, Any],
    variables: Sequence[str],
    *,
    n_params: int | None = None,
    require_loss: bool = True,
    nonnegative: Sequence[str] = ("D_spec",),
    what: str = "run table",
) -> pd.DataFrame:
    """Standardise ``data`` and check it has finite, valid values for ``variables`` (and ``loss``).

    Sizes must be finite and positive (columns in ``nonnegative``, by default ``D_spec``, may be
    0), losses finite and positive. With ``n_params``, at least that many runs are required.
    Returns the standardised table with the checked columns as float64.

    Raises
    ------
    DataError
        naming the missing column, or the column and the first offending row.
    """
    variables = _names(variables, "variables")
    nonnegative = _names(nonnegative, "nonnegative")
    frame = standardize(data, keep=[v for v in variables if v not in COLUMNS])
    needed = list(variables) + (["loss"] if require_loss else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        hint = ""
        if "D" in missing:
            hint = " (give D, or C and N so that D = C / (6 N))"
        raise DataError(
            f"{what} is missing column(s) {missing}{hint}; it has {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise DataError(f"{what} has no rows")
    for col in needed:
        if isinstance(frame[col], pd.DataFrame):
            raise DataError(f"{what} has several columns named {col!r}")
        why = not_real(frame[col])
        if why is not None:
            raise DataError(f"column {col!r} of the {what} must hold real numbers, got {why}")
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"column {col!r} of the {what} has a non-finite or non-numeric value "
                f"{_scalar(frame[col].iloc[i])!r} at row {frame.index[i]!r}"
            )
        bad = values < 0 if col in nonnegative else values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rule = "non-negative" if col in nonnegative else "positive"
            raise DataError(
                f"column {col!r} of the {what} must be {rule}; got {float(values[i])!r} at row "
                f"{frame.index[i]!r}"
            )
        frame[col] = values
    if n_params is not None and len(frame) < n_params:
        raise DataError(
            f"{what} has {len(frame)} runs, fewer than the {n_params} parameters to fit"
        )
    return frame


def as_arrays(
    data: pd.DataFrame | Mapping[str, Any],
    variables: Sequence[str],
    *,
    nonnegative: Sequence[str] = ("D_spec",),
    what: str = "data",
) -> dict[str, np.ndarray]:
    """Return ``{variable: float64 array}`` for prediction inputs (no loss column needed).

    Scalars broadcast against arrays; all inputs must be finite, sizes positive (``D_spec`` >= 0).
    """
    variables = _names(variables, "variables")
    nonnegative = _names(nonnegative, "nonnegative")
    own = {str(v) for v in variables if v not in COLUMNS}
    if isinstance(data, pd.DataFrame):
        frame = standardize(data, keep=own)
        source: Mapping[str, Any] = {c: frame[c].to_numpy() for c in frame.columns}
    elif isinstance(data, Mapping):
        source = {}
        for k, v in data.items():
            canon = k if (k in COLUMNS or str(k) in own) else ALIASES.get(_key(k), k)
            source[canon] = v
        if "D" not in source and "C" in source and "N" in source:
            source = dict(source)
            source["D"] = np.asarray(source["C"], dtype=float) / (
                6.0 * np.asarray(source["N"], dtype=float)
            )
    else:
        raise DataError(f"{what} must be a DataFrame or a mapping of arrays")
    out: dict[str, np.ndarray] = {}
    for var in variables:
        if var not in source:
            raise DataError(f"{what} is missing {var!r}; it has {sorted(map(str, source))}")
        raw = source[var]
        if isinstance(raw, (bool, np.bool_, complex)):
            why: str | None = f"{type(raw).__name__} {raw!r}"
        elif hasattr(raw, "dtype"):
            why = not_real(raw)
        else:
            try:
                why = not_real(np.asarray(raw))
            except (TypeError, ValueError):
                why = None  # ragged or odd: the float conversion below names it
        if why is not None:
            raise DataError(f"{what}[{var!r}] must hold real numbers, got {why}")
        try:
            arr = np.asarray(raw, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{what}[{var!r}] is not numeric") from None
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{what}[{var!r}] has non-finite values")
        if (arr < 0).any() if var in nonnegative else (arr <= 0).any():
            rule = "non-negative" if var in nonnegative else "positive"
            raise DataError(f"{what}[{var!r}] must be {rule}")
        out[var] = arr
    try:
        shape = np.broadcast_shapes(*(a.shape for a in out.values()))
    except ValueError:
        raise DataError(
            f"{what} arrays have shapes that do not broadcast: "
            + ", ".join(f"{k}{v.shape}" for k, v in out.items())
        ) from None
    return {k: np.broadcast_to(v, shape) for k, v in out.items()}
