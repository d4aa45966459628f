"""Loss-surface families and their registry.

>>> import mixopt
>>> mixopt.laws.names()  # doctest: +NORMALIZE_WHITESPACE
['additive', 'chinchilla', 'mixing', 'mixing_chinchilla', 'mixture_additive', 'mixture_joint',
 'multiplicative', 'transfer']
>>> law = mixopt.laws.get("chinchilla")
>>> law.param_names
('E', 'A', 'B', 'alpha', 'beta')

Users add their own with :func:`custom` (a function and a parameter spec) and, to look them up by
name (e.g. when loading a saved fit), :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import LawError
from mixopt.laws.base import LOG_LIMIT, FunctionLaw, Law, Parameter
from mixopt.laws.chinchilla import HOFFMANN_GRID, Chinchilla
from mixopt.laws.mixing import MixingLaw
from mixopt.laws.mixture import MixingChinchilla, MixtureAdditive, MixtureJoint
from mixopt.laws.specialisation import Additive, Multiplicative, Transfer

__all__ = [
    "Law",
    "Parameter",
    "FunctionLaw",
    "LOG_LIMIT",
    "Chinchilla",
    "Additive",
    "Transfer",
    "Multiplicative",
    "MixingLaw",
    "MixtureAdditive",
    "MixtureJoint",
    "MixingChinchilla",
    "HOFFMANN_GRID",
    "names",
    "get",
    "register",
    "custom",
    "resolve",
]

_REGISTRY: dict[str, Callable[..., Law]] = {
    "chinchilla": Chinchilla,
    "additive": Additive,
    "transfer": Transfer,
    "multiplicative": Multiplicative,
    "mixing": MixingLaw,
    "mixture_additive": MixtureAdditive,
    "mixture_joint": MixtureJoint,
    "mixing_chinchilla": MixingChinchilla,
}


def names() -> list[str]:
    """Names of the registered laws, sorted."""
    return sorted(_REGISTRY)


def get(name: str, **options: Any) -> Law:
    """Build the law registered as ``name`` with the given options."""
    if not isinstance(name, str):
        raise LawError(f"law name must be a string, got {type(name).__name__}")
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise LawError(f"unknown law {name!r}; known laws: {names()}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        raise LawError(f"bad options for law {name!r}: {exc}") from None


def resolve(law: Law | str) -> Law:
    """Accept a law object or a registered name."""
    if isinstance(law, Law):
        return law
    if isinstance(law, str):
        return get(law)
    raise LawError(f"expected a Law or a law name, got {type(law).__name__}")


def register(name: str, factory: Callable[..., Law] | Law, *, overwrite: bool = False) -> None:
    """Register a law (or a factory taking options and returning one) under ``name``."""
    if not isinstance(name, str) or not name:
        raise LawError("law name must be a non-empty string")
    if name in _REGISTRY and not overwrite:
        raise LawError(f"a law named {name!r} is already registered (pass overwrite=True)")
    if isinstance(factory, Law):
        instance = factory

        def factory(**options: Any) -> Law:  # noqa: F811 - a closure over the instance
            if options:
                raise LawError(f"law {name!r} takes no options")
            return instance

    _REGISTRY[name] = factory


def custom(
    name: str,
    fn: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], np.ndarray],
    variables: Sequence[str],
    parameters: Mapping[str, Any] | Sequence[Parameter],
    *,
    description: str = "",
    reference: str = "",
    register_as: str | None = None,
    jac: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
                  Mapping[str, np.ndarray]] | None = None,
) -> Law:
    """Define a law from a function and a parameter spec; it fits with the same engine.

    Parameters
    ----------
    fn:
        ``fn(params, X) -> loss`` with natural-unit parameter arrays and data arrays; use numpy
        operations only (it is called with many parameter sets broadcast at once).
    variables:
        Data columns the law reads, e.g. ``("N", "D")``.
    parameters:
        Either :class:`Parameter` objects, or a mapping ``name -> spec`` where ``spec`` is a dict
        with keys among ``lower``, ``upper``, ``grid``, ``log``, ``description``, or a
        ``(lower, upper)`` tuple.
    register_as:
        Also register the law under this name.
    jac:
        Optional ``jac(params, X) -> {name: dL/dparam}`` (natural units): the engine then uses
        these derivatives instead of central differences.

    Examples
    --------
    >>> law = custom("kaplan", lambda p, X: (p["Nc"] / X["N"]) ** p["a"], ("N",),
    ...              {"Nc": {"lower": 0, "grid": (20, 30), "log": True}, "a": (0, 2)})
    """
    if not callable(fn):
        raise LawError("custom law needs a callable fn(params, X)")
    params: list[Parameter] = []
    if isinstance(parameters, Mapping):
        for pname, spec in parameters.items():
            if isinstance(spec, Parameter):
                params.append(spec)
            elif isinstance(spec, Mapping):
                unknown = set(spec) - {"lower", "upper", "grid", "log", "description"}
                if unknown:
                    raise LawError(f"parameter {pname!r}: unknown spec keys {sorted(unknown)}")
                params.append(Parameter(pname, **spec))
            elif isinstance(spec, (tuple, list)) and len(spec) == 2:
                lo, hi = float(spec[0]), float(spec[1])
                mid = 0.5 * (lo + hi) if np.isfinite(lo) and np.isfinite(hi) else 0.0
                params.append(Parameter(pname, lo, hi, (mid,)))
            else:
                raise LawError(
                    f"parameter {pname!r}: spec must be a Parameter, a dict or (lower, upper)"
                )
    else:
        params = list(parameters)
        if not all(isinstance(p, Parameter) for p in params):
            raise LawError("parameters must be Parameter objects or a mapping of specs")
    law = FunctionLaw(
        name, fn, variables, params, description=description, reference=reference, jac=jac
    )
    if register_as is not None:
        register(register_as, law)
    return law
