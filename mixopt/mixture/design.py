"""Proxy-swarm design: the mixtures of the small runs a mixture surrogate is fitted on.

``design(prior, n_runs, seed=...)`` draws ``n_runs`` training mixtures around a prior, the first
step of the RegMix / olmix workflow (train one small proxy per mixture, record its losses, fit a
surrogate of loss against mixture, optimise the surrogate). ``caps(tokens, target_tokens)`` turns
token counts into repetition bounds; :func:`mixopt.mixture.write_configs` (in
``mixopt.mixture.configs``) writes one JSON file per run.

The draw (RegMix, Liu et al., ICLR 2025, Sec. 3.1 and their ``synthesize_mixture.py``; olmix's
``generate`` step for the hierarchical and extension variants):

1. ``share = prior / sum(prior)`` (token shares); the search prior is
   ``p = share ** temperature``, renormalised (RegMix: temperature 0.5).
2. For each candidate a concentration ``alpha`` is drawn uniformly from ``concentrations``
   (default 15 log-spaced values in [0.1, 5]) and ``w ~ Dirichlet(alpha * p)``: the strength
   multiplies the *normalised* prior, with no factor K, exactly as both reference
   implementations do (``np.random.dirichlet(prior_dist * strength)``), so ``E[w] = p`` and
   ``Var[w_i] = p_i (1 - p_i) / (alpha + 1)``; small ``alpha`` gives sparse, corner-seeking
   mixtures, large ``alpha`` mixtures close to ``p``.
3. Weights below ``min_weight`` are zeroed, the row renormalised and rounded to multiples of
   ``round_to`` (RegMix: 2e-4 for both); the rounding residual goes to the row's largest weight
   so rows stay on the grid and sum to 1.
4. A candidate is rejected if, *after* step 3, a weight exceeds its bound
   ``min(1, max_ratio * share_i, caps_i)`` (RegMix: ``max_ratio = 15``, at most 15 epochs of a
   domain at the target run; olmix: ``caps = tokens * repetition_factor / target_tokens``).
   RegMix checks the bound before rounding; checking after makes it hold on every returned row.
5. ``oversample * n_runs`` candidates are drawn; exact duplicates are dropped and, with
   ``min_distance > 0``, near-duplicates closer than ``min_distance`` in L1 distance
   (``sum_i |w_i - v_i|``, twice the total-variation distance) to an already kept row. RegMix
   then samples uniformly among the distinct candidates; the candidates are i.i.d., so keeping
   the first ``n_runs`` distinct ones in draw order is such a sample.

With ``groups`` (olmix's source -> topic hierarchy) the draw is two-level: group weights
``g ~ Dirichlet(alpha * P)`` around ``P ∝ (group token share) ** temperature`` and, within each
group, ``v ~ Dirichlet(alpha * q_g)`` around ``q_g ∝ (within-group share) ** temperature``; a
domain's weight is ``g_group * v_domain``. As in olmix, one ``alpha`` per candidate serves both
levels. With ``existing`` (olmix's swarm reuse) the new rows are picked from the candidates by
greedy farthest-point selection: each pick maximises the L1 distance to the nearest existing or
already picked row, which fills the simplex where the old swarm is sparse.

Domains with zero prior never get weight. Dirichlet draws use the exact identity
``Gamma(a) = Gamma(a + 1) * U ** (1 / a)`` in log space, so concentrations far below 1 (a small
domain at ``alpha = 0.1``) neither underflow to an all-zero row nor lose mass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import InfeasiblePlanError, MixtureError
from mixopt.mixture._inputs import count, number, rng_from, simplex_frame

__all__ = ["caps", "design", "DEFAULT_CONCENTRATIONS"]

#: RegMix's and olmix's Dirichlet strengths: 15 log-spaced values in [0.1, 5].
DEFAULT_CONCENTRATIONS: tuple[float, ...] = tuple(
    float(x) for x in np.logspace(np.log10(0.1), np.log10(5.0), 15)
)

_TOL = 1e-12
_MAX_CELLS = 2**26  # candidate weights held at once (several float64 arrays of this size)


# --------------------------------------------------------------------------- validation helpers


def _series(obj: Any, name: str, *, min_len: int = 1) -> pd.Series:
    """A mapping / Series domain -> non-negative finite number, as a float64 Series."""
    if isinstance(obj, pd.Series):
        s = obj
    elif isinstance(obj, Mapping):
        s = pd.Series(dict(obj), dtype=object)
    else:
        raise MixtureError(
            f"{name} must be a mapping or pandas Series domain -> number, got {type(obj).__name__}"
        )
    if len(s) < min_len:
        raise MixtureError(f"{name} needs at least {min_len} domains, got {len(s)}")
    bad_names = [k for k in s.index if not isinstance(k, str) or not k]
    if bad_names:
        raise MixtureError(f"{name}: domain names must be non-empty strings, got {bad_names[:5]!r}")
    dup = s.index[s.index.duplicated()].unique().tolist()
    if dup:
        raise MixtureError(f"{name}: duplicate domains {dup!r}")
    try:
        values = np.asarray(s.to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(f"{name}: values must be numbers, got {s.to_dict()!r}") from None
    bad = [k for k, v in zip(s.index, values) if not np.isfinite(v) or v < 0]
    if bad:
        raise MixtureError(
            f"{name}: values must be finite and non-negative; bad domains "
            f"{ {k: s[k] for k in bad[:5]} !r}"
        )
    return pd.Series(values, index=pd.Index(list(s.index), dtype=object), dtype=np.float64)


def _grid(round_to: float | None) -> int | None:
    """Number of grid units in 1 (``1 / round_to``), which must be an integer."""
    if round_to is None:
        return None
    step = number(round_to, "round_to", low=0.0, high=1.0, low_open=True)
    units = round(1.0 / step)
    if abs(units * step - 1.0) > 1e-9:
        raise MixtureError(
            f"round_to must divide 1 (1 / round_to an integer) so rows can sum to 1 on the grid, "
            f"got {round_to!r}"
        )
    return int(units)


def _concentrations(concentrations: Any) -> np.ndarray:
    if concentrations is None:
        return np.asarray(DEFAULT_CONCENTRATIONS)
    if isinstance(concentrations, (int, float, np.integer, np.floating)) and not isinstance(
            concentrations, bool):
        concentrations = [concentrations]
    try:
        c = np.asarray(list(concentrations), dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(
            f"concentrations must be positive numbers, got {concentrations!r}") from None
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise MixtureError(
            f"concentrations must be a non-empty list of positive finite numbers, "
            f"got {concentrations!r}"
        )
    return c


def _upper_bounds(share: pd.Series, max_ratio: float | None, caps_: Any,
                  units: int | None) -> np.ndarray:
    """Per-domain maximum weight ``min(1, max_ratio * share, caps)``; checks feasibility."""
    domains = list(share.index)
    upper = np.ones(len(domains))
    if caps_ is not None:
        c = _series(caps_, "caps")
        unknown = [d for d in c.index if d not in share.index]
        if unknown:
            raise MixtureError(f"caps: unknown domains {unknown!r}; the prior has {domains!r}")
        c = c.reindex(domains)
        given = c.notna().to_numpy()
        upper[given] = np.minimum(upper[given], c.to_numpy()[given])
        if upper.sum() < 1.0 - _TOL:
            raise InfeasiblePlanError(
                f"caps sum to {upper.sum():.6g} < 1 (domains without a cap count as 1): no "
                f"mixture satisfies them; raise some caps"
            )
    if max_ratio is not None:
        r = number(max_ratio, "max_ratio", low=0.0, low_open=True)
        upper = np.minimum(upper, r * share.to_numpy())
        if upper.sum() < 1.0 - _TOL:
            raise InfeasiblePlanError(
                f"max_ratio={max_ratio!r} with caps bounds the weights to a total of "
                f"{upper.sum():.6g} < 1: no mixture satisfies them; raise max_ratio or caps"
            )
    if units is not None and np.floor(upper * units + 1e-9).sum() < units:
        raise InfeasiblePlanError(
            f"the weight bounds (caps, max_ratio) leave no mixture on the round_to={1 / units:g} "
            f"grid; raise the bounds or use a finer round_to"
        )
    return upper


def _groups(groups: Any, domains: list[str]) -> list[np.ndarray] | None:
    if groups is None:
        return None
    if not isinstance(groups, Mapping) or not groups:
        raise MixtureError(
            f"groups must be a non-empty mapping group -> list of domains, got {groups!r}")
    where: dict[str, Any] = {}
    out = []
    col = {d: i for i, d in enumerate(domains)}
    for g, members in groups.items():
        if not isinstance(g, str) or not g:
            raise MixtureError(f"groups: group names must be non-empty strings, got {g!r}")
        if isinstance(members, str) or not isinstance(members, Sequence) or len(members) == 0:
            raise MixtureError(
                f"groups[{g!r}] must be a non-empty list of domains, got {members!r}")
        unknown = [d for d in members if d not in col]
        if unknown:
            raise MixtureError(f"groups[{g!r}]: unknown domains {unknown!r}")
        for d in members:
            if d in where:
                raise MixtureError(
                    f"groups: domain {d!r} is in both {where[d]!r} and {g!r}; groups must "
                    f"partition the domains")
            where[d] = g
        out.append(np.array([col[d] for d in members], dtype=np.intp))
    missing = [d for d in domains if d not in where]
    if missing:
        raise MixtureError(f"groups: domains {missing!r} are in no group; groups must partition "
                           f"the domains")
    return out


# --------------------------------------------------------------------------- public functions


def caps(tokens: Mapping[str, float] | pd.Series, target_tokens: float,
         max_epochs: float = 1.0) -> pd.Series:
    """Repetition bounds on the mixture weights of a target run.

    A domain with ``tokens_i`` tokens, weighted ``w_i`` in a run of ``target_tokens`` tokens, is
    seen ``w_i * target_tokens / tokens_i`` times; keeping that at most ``max_epochs`` gives
    ``w_i <= tokens_i * max_epochs / target_tokens`` (olmix's bound with its
    ``repetition_factor``; RegMix allows 15 epochs), clipped to 1.

    Parameters
    ----------
    tokens
        Mapping or Series domain -> available tokens (finite, non-negative).
    target_tokens
        Tokens of the target training run (positive).
    max_epochs
        Largest number of passes over any domain (positive).

    Returns
    -------
    pandas.Series
        Index domain (in the order given), values the maximum weight, named ``"cap"``; pass it as
        ``design(..., caps=...)`` or to the optimiser.
    """
    t = _series(tokens, "tokens")
    target = number(target_tokens, "target_tokens", low=0.0, low_open=True)
    epochs = number(max_epochs, "max_epochs", low=0.0, low_open=True)
    out = (t * epochs / target).clip(upper=1.0)
    out.index.name = "domain"
    return out.rename("cap")


def design(prior: Mapping[str, float] | pd.Series, n_runs: int, *,
           seed: int | np.random.Generator, temperature: float = 0.5,
           concentrations: Sequence[float] | None = None, min_weight: float = 2e-4,
           round_to: float | None = 2e-4, max_ratio: float | None = 15.0,
           caps: Mapping[str, float] | pd.Series | None = None,
           groups: Mapping[str, Sequence[str]] | None = None,
           existing: pd.DataFrame | None = None, oversample: int = 100,
           min_distance: float = 0.0) -> pd.DataFrame:
    """Draw a swarm of proxy-run mixtures around a prior (RegMix Sec. 3.1; olmix).

    The procedure (Dirichlet around ``prior ** temperature``, rejection by repetition bounds,
    minimum weight and rounding, oversampling and de-duplication) is described in the module
    docstring, :mod:`mixopt.mixture.design`.

    Parameters
    ----------
    prior
        Mapping or Series domain -> token count (or any non-negative weights; only their shares
        matter). At least 2 domains, unique string names, positive sum. Column order of the
        result.
    n_runs
        Number of mixtures to return.
    seed
        Non-negative int or ``numpy.random.Generator`` (consumed); the result is a deterministic
        function of it.
    temperature
        Exponent on the token shares, ``p ∝ share ** temperature`` (0.5 as in RegMix; 1 draws
        around the natural distribution, 0 around uniform over domains with tokens).
    concentrations
        Dirichlet strengths ``alpha``, one drawn uniformly per candidate; the default is 15
        log-spaced values in [0.1, 5].
    min_weight
        Weights below it are set to 0 before renormalising (RegMix 2e-4, olmix 2e-3).
    round_to
        Grid step of the returned weights (``1 / round_to`` must be an integer), or ``None``.
    max_ratio
        Reject mixtures putting more than ``max_ratio`` times a domain's token share on it
        (RegMix: 15); ``None`` disables the bound.
    caps
        Mapping or Series domain -> maximum weight (e.g. from :func:`caps`); domains left out are
        uncapped.
    groups
        Mapping group -> list of domains, a partition of the domains: draw hierarchically (group
        weights, then weights within each group), as olmix does for source -> topic.
    existing
        Mixtures already run (a DataFrame with the prior's domains as columns): the new rows are
        chosen by greedy farthest-point selection against them, and numbered after them.
    oversample
        Candidates drawn per requested run.
    min_distance
        Minimum L1 distance between any two returned rows (and, with ``existing``, to every
        existing row); 0 only removes exact duplicates.

    Returns
    -------
    pandas.DataFrame
        ``n_runs`` rows, index ``run`` (``0..n_runs-1``, or continuing after ``existing``'s
        largest integer id), one column per domain in the prior's order; every row is on the
        simplex (sums to 1 within 1e-12) and on the ``round_to`` grid.

    Raises
    ------
    MixtureError
        A malformed argument, or fewer than ``n_runs`` acceptable distinct candidates (the
        message says how many and what to relax).
    InfeasiblePlanError
        ``caps`` (with ``max_ratio``) cannot add up to 1.
    """
    share = _series(prior, "prior", min_len=2)
    total = share.sum()
    if not total > 0:
        raise MixtureError(f"prior must have a positive sum, got {share.to_dict()!r}")
    share = share / total
    domains = list(share.index)
    n_runs = count(n_runs, "n_runs")
    oversample = count(oversample, "oversample")
    temperature = number(temperature, "temperature", low=0.0)
    conc = _concentrations(concentrations)
    min_weight = number(min_weight, "min_weight", low=0.0, high=1.0, high_open=True)
    units = _grid(round_to)
    upper = _upper_bounds(share, max_ratio, caps, units)
    group_cols = _groups(groups, domains)
    min_distance = number(min_distance, "min_distance", low=0.0)
    start = 0
    ex = None
    if existing is not None:
        ex_frame = simplex_frame(existing, "existing", domains)
        ex = ex_frame.to_numpy()
        ex = ex / ex.sum(axis=1, keepdims=True)
        ids = ex_frame.index
        if len(ids) and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                            for i in ids):
            start = int(max(ids)) + 1
        else:
            start = len(ids)
    rng = rng_from(seed)

    n_cand = n_runs * oversample
    if n_cand * len(domains) > _MAX_CELLS:
        raise MixtureError(
            f"n_runs * oversample * domains = {n_runs} * {oversample} * {len(domains)} candidate "
            f"weights exceed {_MAX_CELLS:,} (memory); lower oversample")
    raw = _draw(rng, share.to_numpy(), temperature, conc, group_cols, n_cand)
    w, keys, ok = _postprocess(raw, min_weight, units)
    ok &= np.all(w <= upper + _TOL, axis=1)
    n_ok = int(ok.sum())
    w, keys = w[ok], keys[ok]
    if len(w):
        _, first = np.unique(keys, axis=0, return_index=True)
        first.sort()
        w = w[first]
    n_distinct = len(w)
    if ex is not None:
        chosen = _farthest(w, ex, n_runs, min_distance)
    else:
        chosen = _spread(w, n_runs, min_distance)
    if len(chosen) < n_runs:
        raise MixtureError(
            f"design found only {len(chosen)} acceptable distinct mixtures for n_runs={n_runs} "
            f"({n_cand} candidates drawn, {n_cand - n_ok} rejected by min_weight/round_to or the "
            f"bounds, {n_distinct} distinct"
            + (f", min_distance={min_distance:g}" if min_distance > 0 else "")
            + "); relax: raise oversample, lower min_distance or round_to, raise max_ratio or "
            "caps, or raise temperature / concentrations"
        )
    out = pd.DataFrame(w[chosen], columns=pd.Index(domains, dtype=object),
                       index=pd.RangeIndex(start, start + n_runs, name="run"))
    return out


# --------------------------------------------------------------------------- the draw


def _dirichlet(rng: np.random.Generator, shape: np.ndarray) -> np.ndarray:
    """Rows ``~ Dirichlet(shape[i])`` for a positive (n, k) array of concentrations.

    ``Gamma(a) = Gamma(a + 1) * U ** (1 / a)`` (U uniform on (0, 1]) in log space, then a
    softmax: exact for every ``a > 0`` and immune to the underflow of ``Gamma(a)`` for tiny
    ``a``. Generator calls: ``standard_gamma(shape + 1)`` then ``random(shape.shape)``.
    """
    n, k = shape.shape
    if k == 1:
        return np.ones((n, 1))
    log_g = np.log(rng.standard_gamma(shape + 1.0)) + np.log1p(-rng.random(shape.shape)) / shape
    log_g -= log_g.max(axis=1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(axis=1, keepdims=True)


def _tempered(share: np.ndarray, temperature: float) -> np.ndarray:
    """``share ** temperature`` renormalised; zero shares stay zero (also at temperature 0)."""
    p = np.zeros_like(share)
    live = share > 0
    with np.errstate(all="ignore"):
        p[live] = share[live] ** temperature
    if not (np.isfinite(p).all() and p.sum() > 0):
        raise MixtureError(f"temperature {temperature!r} underflows every share of the prior "
                           "to 0: use a smaller temperature (RegMix uses 0.5)")
    return p / p.sum()


def _draw(rng: np.random.Generator, share: np.ndarray, temperature: float, conc: np.ndarray,
          group_cols: list[np.ndarray] | None, n: int) -> np.ndarray:
    """``n`` raw candidates (before min_weight, rounding and bounds)."""
    alpha = conc[rng.integers(len(conc), size=n)][:, None]
    out = np.zeros((n, len(share)))
    if group_cols is None:
        p = _tempered(share, temperature)
        live = p > 0
        out[:, live] = _dirichlet(rng, alpha * p[live])
        return out
    g_share = np.array([share[c].sum() for c in group_cols])
    gp = _tempered(g_share, temperature)
    g_live = np.flatnonzero(gp > 0)
    g_w = np.zeros((n, len(group_cols)))
    g_w[:, g_live] = _dirichlet(rng, alpha * gp[g_live])
    for j in g_live:
        cols = group_cols[j]
        q = _tempered(share[cols] / g_share[j], temperature)
        live = cols[q > 0]
        out[:, live] = g_w[:, [j]] * _dirichlet(rng, alpha * q[q > 0])
    return out


def _postprocess(raw: np.ndarray, min_weight: float,
                 units: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero weights below ``min_weight``, renormalise, round to the grid.

    Returns the weights, exact keys for de-duplication (grid counts, or the weights) and a mask
    of valid rows.
    """
    w = np.where(raw < min_weight, 0.0, raw)
    s = w.sum(axis=1, keepdims=True)
    ok = s[:, 0] > 0
    w = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
    if units is None:
        return w, w, ok
    k = np.rint(w * units)
    top = np.argmax(k, axis=1)
    rows = np.arange(len(k))
    k[rows, top] += units - k.sum(axis=1)
    ok &= np.all(k >= 0, axis=1)
    w = k / units
    # a weight the grid pulled below min_weight (min_weight off the grid) is not acceptable
    ok &= ~np.any((w > 0) & (w < min_weight - _TOL), axis=1)
    return w, k, ok


def _spread(w: np.ndarray, n_runs: int, min_distance: float) -> np.ndarray:
    """Indices of the first ``n_runs`` rows (in order) at L1 distance >= min_distance."""
    if min_distance <= 0:
        return np.arange(min(n_runs, len(w)))
    kept = np.empty((n_runs, w.shape[1]))
    chosen: list[int] = []
    for i, row in enumerate(w):
        if chosen and np.abs(kept[: len(chosen)] - row).sum(axis=1).min() < min_distance:
            continue
        kept[len(chosen)] = row
        chosen.append(i)
        if len(chosen) == n_runs:
            break
    return np.asarray(chosen, dtype=np.intp)


def _farthest(w: np.ndarray, existing: np.ndarray, n_runs: int,
              min_distance: float) -> np.ndarray:
    """Greedy farthest-point (max-min L1) selection of ``n_runs`` rows of ``w`` against
    ``existing`` and the rows already chosen."""
    from scipy.spatial.distance import cdist

    d = np.full(len(w), np.inf)
    if len(existing):
        block = max(1, 2**22 // len(existing))
        for i in range(0, len(w), block):
            d[i:i + block] = cdist(w[i:i + block], existing, "cityblock").min(axis=1)
    chosen: list[int] = []
    for _ in range(min(n_runs, len(w))):
        j = int(np.argmax(d))
        if not d[j] > 0 or d[j] < min_distance:
            break
        chosen.append(j)
        np.minimum(d, cdist(w, w[j:j + 1], "cityblock")[:, 0], out=d)
    return np.asarray(chosen, dtype=np.intp)
