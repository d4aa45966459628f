"""Shared pieces of the property-based bad-input tests (tests/test_reliability_*.py).

Generated values (:data:`JSON`, :data:`BAD`), a SIGALRM time limit that turns a hang into a
failure, and the checks a result must pass when an input is accepted.
"""

from __future__ import annotations

import copy
import math
import signal
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

LIMIT_S = 30  # generous: the suite shares 2 cores with other jobs; a hang never returns

FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**15, 10**15)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                               max_size=3),
    max_leaves=6,
)

#: bad (or borderline) scalars, arrays and objects for an argument
BAD = (JSON | st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, 0, -1, 1e300, 10**12,
                               1 + 2j, True, "x", b"\xff", [], {}, [float("nan")], [[1.0]]])
       | st.floats(-10, 10) | st.integers(-3, 10**6))


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float = LIMIT_S):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def fire(*_):
        raise Hang(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON-like object (lists: their first three entries)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(prefix + (k,))
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out.append(prefix + (i,))
            out += paths(v, prefix + (i,))
    return out


def corrupt(obj: Any, path: tuple, value: Any) -> Any:
    obj = copy.deepcopy(obj)
    ref = obj
    for k in path[:-1]:
        ref = ref[k]
    ref[path[-1]] = value
    return obj


def finite(x: Any) -> bool:
    """Every number in ``x`` (scalar, array, Series, DataFrame, dict of them) is finite."""
    if isinstance(x, dict):
        return all(finite(v) for v in x.values())
    if isinstance(x, (pd.Series, pd.DataFrame)):
        x = x.to_numpy(dtype=float)
    arr = np.asarray(x, dtype=float)
    return bool(np.all(np.isfinite(arr)))


def on_simplex(w: Any, lo: Any = 0.0, hi: Any = 1.0, tol: float = 1e-6) -> bool:
    w = np.asarray(w, dtype=float)
    return bool(np.all(np.isfinite(w)) and np.all(w >= np.asarray(lo) - tol)
                and np.all(w <= np.asarray(hi) + tol) and abs(w.sum() - 1.0) < tol)


def is_number(x: Any) -> bool:
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and math.isfinite(float(x)))
