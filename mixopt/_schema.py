"""A small schema checker for the JSON objects mixopt saves (fits, bootstraps, state dicts).

Why not jsonschema or pydantic? Both are installed in the development environment, but only as
dependencies of other tools (nbformat, typer); neither is a core dependency of mixopt, and the
core stays light. The checks needed here are few (types, lengths, finite ranges, simplex
vectors, cross-field agreement) and must raise the stage's own :class:`~mixopt.errors.MixoptError`
subclass with the *path* of the field and the expected type or range, e.g.::

    bad sampler state_dict: anchor_credits[0]: expected a finite number, got nan

A schema is built from the specs below and checked with :func:`check`; numbers refuse ``bool``
(``True`` is not a count) and, unless ``nullable``, ``None``. Cross-field rules (a length that
depends on another field, sums) are written as plain code after the structural check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixopt.errors import MixoptError

__all__ = ["Spec", "Num", "Int", "Str", "Bool", "Arr", "Obj", "Dict", "AnyOf", "Anything",
           "check", "fail", "read_json"]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(error: type[MixoptError], prefix: str, path: str, expected: str, value: Any) -> None:
    """Raise ``error`` naming the field ``path``, what was expected and what was found."""
    where = f"{path}: " if path else ""
    raise error(f"{prefix}{where}expected {expected}, got {_show(value)}")


class Spec:
    """Base of the specs: ``validate(value, path, error, prefix)`` returns the checked value."""

    def describe(self) -> str:  # pragma: no cover - overridden
        return "a value"

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        raise NotImplementedError  # pragma: no cover


@dataclass
class Anything(Spec):
    def describe(self) -> str:
        return "any value"

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        return value


@dataclass
class Num(Spec):
    """A real number (``int`` or ``float``, not ``bool``); finite unless ``finite=False``.

    ``low``/``high`` bound it (``open_low``/``open_high`` exclude the bound); ``nullable``
    accepts ``None``; ``encoded`` accepts the strings ``"inf"``, ``"-inf"``, ``"nan"`` (how
    mixopt writes non-finite numbers into strict JSON) and decodes them.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    finite: bool = True
    nullable: bool = False
    encoded: bool = False

    def describe(self) -> str:
        kind = "a finite number" if self.finite else "a number"
        if self.low is not None and self.high is not None:
            lo = "(" if self.open_low else "["
            hi = ")" if self.open_high else "]"
            kind += f" in {lo}{self.low:g}, {self.high:g}{hi}"
        elif self.low is not None:
            kind += f" {'>' if self.open_low else '>='} {self.low:g}"
        elif self.high is not None:
            kind += f" {'<' if self.open_high else '<='} {self.high:g}"
        return kind + (" or null" if self.nullable else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if value is None and self.nullable:
            return None
        if self.encoded and isinstance(value, str) and value in ("inf", "-inf", "nan"):
            value = float(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            fail(error, prefix, path, self.describe(), value)
        v = float(value)
        if self.finite and not math.isfinite(v):
            fail(error, prefix, path, self.describe(), value)
        if math.isnan(v) and (self.low is not None or self.high is not None):
            fail(error, prefix, path, self.describe(), value)
        if self.low is not None and (v < self.low or (self.open_low and v == self.low)):
            fail(error, prefix, path, self.describe(), value)
        if self.high is not None and (v > self.high or (self.open_high and v == self.high)):
            fail(error, prefix, path, self.describe(), value)
        return v


@dataclass
class Int(Spec):
    """An integer (not ``bool``; a float with an integral value is refused too)."""

    low: int | None = None
    high: int | None = None
    nullable: bool = False

    def describe(self) -> str:
        kind = "an integer"
        if self.low is not None and self.high is not None:
            kind += f" in [{self.low}, {self.high}]"
        elif self.low is not None:
            kind += f" >= {self.low}"
        elif self.high is not None:
            kind += f" <= {self.high}"
        return kind + (" or null" if self.nullable else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            fail(error, prefix, path, self.describe(), value)
        v = int(value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            fail(error, prefix, path, self.describe(), value)
        return v


@dataclass
class Str(Spec):
    choices: Sequence[str] | None = None
    nullable: bool = False

    def describe(self) -> str:
        kind = "a string" if self.choices is None else f"one of {list(self.choices)}"
        return kind + (" or null" if self.nullable else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
            fail(error, prefix, path, self.describe(), value)
        return value


@dataclass
class Bool(Spec):
    def describe(self) -> str:
        return "true or false"

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if not isinstance(value, (bool, np.bool_)):
            fail(error, prefix, path, self.describe(), value)
        return bool(value)


@dataclass
class Arr(Spec):
    """A list (JSON array) of ``item``; ``length`` fixes its length, ``min_len`` bounds it."""

    item: Spec = field(default_factory=Anything)
    length: int | None = None
    min_len: int = 0
    nullable: bool = False

    def describe(self) -> str:
        n = f" of length {self.length}" if self.length is not None else ""
        if self.length is None and self.min_len:
            n = f" of at least {self.min_len} entries"
        return f"a list{n} of {self.item.describe()}" + (" or null" if self.nullable else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            fail(error, prefix, path, self.describe(), value)
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_len:
            fail(error, prefix, path, self.describe(), f"{len(value)} entries")
        return [self.item.validate(v, f"{path}[{i}]", error, prefix) for i, v in enumerate(value)]


@dataclass
class Obj(Spec):
    """A mapping with the named ``fields`` (all required except those in ``optional``);
    other keys are kept unchecked unless ``closed``."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    optional: Sequence[str] = ()
    closed: bool = False
    nullable: bool = False

    def describe(self) -> str:
        return "an object" + (" or null" if self.nullable else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, Mapping):
            fail(error, prefix, path, self.describe(), value)
        missing = [k for k in self.fields if k not in value and k not in self.optional]
        if missing:
            where = f"{path}: " if path else ""
            raise error(f"{prefix}{where}missing key(s) {missing}")
        if self.closed:
            extra = sorted(str(k) for k in value if k not in self.fields)
            if extra:
                where = f"{path}: " if path else ""
                raise error(f"{prefix}{where}unknown key(s) {extra}; expected "
                            f"{sorted(self.fields)}")
        out = dict(value)
        for key, spec in self.fields.items():
            if key in value:
                out[key] = spec.validate(value[key], f"{path}.{key}" if path else key, error,
                                         prefix)
        return out


@dataclass
class Dict(Spec):
    """A mapping ``str -> value``; ``keys`` (a list) requires exactly those keys."""

    value: Spec = field(default_factory=Anything)
    keys: Sequence[str] | None = None

    def describe(self) -> str:
        return "an object" + (f" with keys {list(self.keys)}" if self.keys is not None else "")

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            fail(error, prefix, path, "an object with string keys", value)
        if self.keys is not None and sorted(value) != sorted(self.keys):
            fail(error, prefix, path, self.describe(), f"keys {sorted(value)}")
        return {k: self.value.validate(v, f"{path}.{k}" if path else k, error, prefix)
                for k, v in value.items()}


@dataclass
class AnyOf(Spec):
    options: Sequence[Spec] = ()

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)

    def validate(self, value: Any, path: str, error: type[MixoptError], prefix: str) -> Any:
        for option in self.options:
            try:
                return option.validate(value, path, error, prefix)
            except MixoptError:
                continue
        fail(error, prefix, path, self.describe(), value)


def check(value: Any, spec: Spec, error: type[MixoptError], prefix: str = "",
          path: str = "") -> Any:
    """Check ``value`` against ``spec``; raise ``error`` (message ``prefix`` + field path +
    expected + found) at the first violation. Returns the checked (decoded) value."""
    return spec.validate(value, path, error, prefix)


def simplex(values: Sequence[float], path: str, error: type[MixoptError], prefix: str,
            tol: float = 1e-6) -> np.ndarray:
    """Finite non-negative numbers summing to 1 within ``tol`` (a mixture)."""
    w = np.asarray(check(values, Arr(Num(low=0.0), min_len=1), error, prefix, path),
                   dtype=np.float64)
    if abs(float(w.sum()) - 1.0) > tol:
        raise error(f"{prefix}{path}: expected weights summing to 1 (on the simplex), got sum "
                    f"{float(w.sum())!r}")
    return w


def read_json(path: Any, error: type[MixoptError], what: str, *, strict: bool = True) -> Any:
    """Parse the JSON file at ``path`` for a saved ``what`` (e.g. ``"fit"``); every failure
    (not a path, missing, unreadable, not UTF-8, not JSON, nested too deeply, and with
    ``strict`` the non-standard ``NaN``/``Infinity`` tokens) raises ``error`` naming the file."""
    try:
        p = Path(path)
    except TypeError:
        raise error(f"a saved {what} is read from a file path (str or os.PathLike), got "
                    f"{_show(path)}") from None

    def no_constants(token: str) -> Any:
        raise error(f"{str(path)!r} holds the non-standard JSON token {token}; mixopt writes "
                    "non-finite numbers as the strings 'inf', '-inf', 'nan'")

    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"no such file: {str(path)!r}") from None
    except UnicodeDecodeError:
        raise error(f"{str(path)!r} is not a UTF-8 text file (a saved {what} is JSON)") from None
    except OSError as exc:
        raise error(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return json.loads(text, parse_constant=no_constants if strict else None)
    except json.JSONDecodeError as exc:
        raise error(f"{str(path)!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{str(path)!r} nests JSON too deeply to be a saved {what}") from None
