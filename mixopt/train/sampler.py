"""Deterministic, resumable, distributed mixture sampling: :class:`MixtureSampler`.

Allocation (which domain each draw comes from)
----------------------------------------------
Independent draws from the mixture (``torch.multinomial``, HF ``interleave_datasets``) give
per-domain counts that wander by ``O(sqrt(n))`` from ``w_i n``. The sampler instead allocates draws
deterministically with a divisor (Sainte-Lague / Webster) apportionment in sequence form, i.e.
stride scheduling (Waldspurger & Weihl 1995) on credits:

* every domain ``i`` holds a credit ``c_i = c0_i + w_i t - n_i`` (``t`` draws since the last weight
  change, ``n_i`` of them from ``i``, ``c0`` the credits at that change; ``sum_i c_i = 0``);
* the ``k``-th draw of domain ``i`` after the change is due at the time its credit would reach
  ``theta + k`` with ``theta = 1/2``: key ``tau_ik = (k + theta - c0_i) / w_i``;
* draws are taken in increasing ``(tau, i)`` order. Each domain's keys increase in ``k``, so this is
  a k-way merge of arithmetic progressions: ``next_batch(n)`` computes it in one vectorised sort,
  and any split of the stream into batches gives the same draws (the keys depend only on the
  anchor ``c0``, the weights and ``k``).

Bound. Let ``T`` be the key of the last of ``t`` draws. Domain ``i`` has been drawn
``n_i = floor(w_i T + c0_i - theta) + 1`` times, so ``x_i < n_i <= x_i + 1`` with
``x_i = w_i T + c0_i - theta``; summing, ``T - K theta < t <= T - K theta + K``. Substituting gives,
after every draw, ``theta - 1 - K theta w_i < c_i < theta + K (1 - theta) w_i``, that is

    |n_i - w_i t - c0_i| < 1/2 + K w_i / 2   (constant weights; K domains with w_i > 0),

so over **any window** of ``m`` consecutive draws with constant weights,
``|count_i - w_i m| < 1 + K w_i`` (< 2 for uniform weights). Across weight changes the credits
carry over (the counts track the integral of the weights); the same argument bounds them by
``(K + 1) / 2`` once each domain has been drawn under the new weights, which the tests check
empirically on random weight sequences (a proof for the transient is not given here). A domain
whose weight is set to 0 is never drawn again (its credit is reset to 0 and the others re-centred).

Order within a domain
---------------------
Domain ``i`` of finite size ``S_i`` is walked without replacement along a permutation seeded by
``(seed, i, epoch)`` (``numpy.random.default_rng(SeedSequence([seed, i, epoch]))``); its ``p``-th
draw overall is ``perm_{epoch = p // S_i}[p % S_i]``, so each epoch of a domain covers it exactly
once and is reshuffled. The current permutation is cached (4 or 8 bytes per item). A domain of
size ``None`` is endless (procedural data): its ``p``-th draw has index ``p``.

Distributed
-----------
All ranks compute the same global stream; rank ``r`` of ``W`` takes global positions
``g = g0 + j W + r`` (``g0``: the global position where this sampler's share began, 0 for a fresh
sampler). Ranks must draw equally many items between weight changes (as in data-parallel
training with equal per-rank batches) and call :meth:`set_weights` with the same weights (the
controller broadcasts them). The global state is identical on every rank, so one rank's
``state_dict`` restores all ranks.

Elastic resume. The state is global (credits, counts and the global position do not depend on
the number of ranks), so a state saved at world size ``W`` loads into a sampler of another world
size ``W'``: from the saved global position ``g0`` on, rank ``r'`` takes ``g0 + j W' + r'``, and
the ranks together draw exactly the global stream the uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from mixopt._schema import Arr, Int, Num, Obj, check
from mixopt.errors import MixtureError
from mixopt.online.base import check_weights

__all__ = ["MixtureSampler", "THETA"]

THETA = 0.5

#: Most global draws one :meth:`MixtureSampler.next_batch` call may return (memory grows with it).
MAX_BATCH = 2**27
_TOL = 1e-6
_VERSION = 1


def _check_sizes(sizes: Any) -> list[int | None]:
    if isinstance(sizes, (str, bytes, Mapping)) or not isinstance(sizes, Sequence | np.ndarray):
        raise MixtureError(f"sizes must be a sequence of domain sizes, got {sizes!r}")
    out: list[int | None] = []
    for i, s in enumerate(sizes):
        if s is None or (isinstance(s, float) and math.isinf(s) and s > 0):
            out.append(None)
            continue
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise MixtureError(
                f"sizes[{i}] must be a positive integer (or None for an endless domain), got {s!r}"
            )
        out.append(int(s))
    if not out:
        raise MixtureError("sizes is empty: need at least one domain")
    return out


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise MixtureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _state_schema(k: int) -> Obj:
    """Schema of :meth:`MixtureSampler.state_dict` for ``k`` domains."""
    count = Int(low=0)
    return Obj({
        "version": Int(low=_VERSION, high=_VERSION),
        "sizes": Arr(Int(low=1, nullable=True), length=k),
        "seed": Int(low=0),
        "world_size": Int(low=1),
        "rank": Int(low=0),
        "weights": Arr(Num(low=0.0, high=1.0), length=k),
        "anchor_credits": Arr(Num(), length=k),
        "since_anchor": count,
        "counts_since_anchor": Arr(count, length=k),
        "drawn": Arr(count, length=k),
        "position": count,
    }, optional=("version", "world_size", "rank"))


class MixtureSampler:
    """Endless stream of ``(domain, index)`` pairs following mutable mixture weights.

    Parameters
    ----------
    sizes:
        Items per domain (positive ints; ``None`` for an endless procedural domain).
    weights:
        Initial mixture (on the simplex, one entry per domain).
    seed:
        Seeds the per-domain permutations (``(seed, domain, epoch)``).
    rank, world_size:
        This process's share of the global stream (positions ``g = j * world_size + rank``).

    Notes
    -----
    Iterate it (``next(sampler)`` -> ``(domain, index)``) or call :meth:`next_batch` (vectorised,
    same stream). See the module docstring for the allocation rule and its bound.
    """

    def __init__(self, sizes: Sequence[int | None], weights: Any, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.sizes = _check_sizes(sizes)
        self.k = len(self.sizes)
        self.seed = _check_int(seed, "seed", 0)
        self.world_size = _check_int(world_size, "world_size", 1)
        self.rank = _check_int(rank, "rank", 0)
        if self.rank >= self.world_size:
            raise MixtureError(f"rank must be < world_size={self.world_size}, got {rank}")
        self._w = check_weights(weights, self.k)
        self._c0 = np.zeros(self.k)
        self._t = 0  # global draws since the anchor (last weight change)
        self._cnt = np.zeros(self.k, dtype=np.int64)  # per domain, since the anchor
        self._drawn = np.zeros(self.k, dtype=np.int64)  # per domain, since the start
        self._position = 0  # global draws since the start
        self._perms: dict[int, tuple[int, np.ndarray]] = {}
        self._chunk = 8  # iterator chunk, doubling up to 4096
        self._clear_buffer()

    # ------------------------------------------------------------------ properties
    @property
    def weights(self) -> np.ndarray:
        """Current mixture (a copy)."""
        return self._w.copy()

    @property
    def position(self) -> int:
        """Global draws so far divided by ``world_size`` (this rank's draws since the start)."""
        self._sync()
        return self._position // self.world_size

    @property
    def counts(self) -> np.ndarray:
        """Global draws per domain since the start (all ranks together)."""
        self._sync()
        return self._drawn.copy()

    @property
    def epochs(self) -> list[int | None]:
        """Completed epochs per finite domain (global; None for endless domains)."""
        self._sync()
        return [None if s is None else int(d // s) for s, d in zip(self.sizes, self._drawn)]

    def credits(self) -> np.ndarray:
        """Current credits ``c_i = c0_i + w_i t - n_i`` (see the module docstring)."""
        self._sync()
        return self._c0 + self._w * self._t - self._cnt

    # ------------------------------------------------------------------ weights
    def set_weights(self, weights: Any) -> None:
        """Use ``weights`` from the next draw on (validated; a no-op if unchanged)."""
        w = check_weights(weights, self.k)
        if np.array_equal(w, self._w):
            return
        self._sync()
        c = self._c0 + self._w * self._t - self._cnt
        active = w > 0
        c[~active] = 0.0
        c[active] -= c.sum() / active.sum()
        self._c0, self._w, self._t = c, w, 0
        self._cnt = np.zeros(self.k, dtype=np.int64)

    # ------------------------------------------------------------------ allocation
    def _allocate(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """Next ``g`` global draws (pure): domains (int64) and per-domain ordinals since start."""
        if g == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        w, cnt = self._w, self._cnt
        active = np.flatnonzero(w > 0)
        a = THETA - self._c0  # key of draw k of domain i: (k + a_i) / w_i
        horizon = float(self._t + g + self.k + 1)
        while True:
            kmax = np.floor(w[active] * horizon - a[active])
            m = np.maximum(kmax.astype(np.int64) - cnt[active] + 1, 0)
            total = int(m.sum())
            if total < g:
                horizon += g + self.k + 1.0
                continue
            dom = np.repeat(active, m)
            starts = np.cumsum(m) - m
            ks = np.arange(total, dtype=np.int64) - np.repeat(starts - cnt[active], m)
            keys = (ks + a[dom]) / w[dom]
            order = np.argsort(keys, kind="stable")[:g]  # ties: lower domain first
            last_key, last_dom = keys[order[-1]], dom[order[-1]]
            nxt = ((cnt[active] + m) + a[active]) / w[active]
            ok = (nxt > last_key) | ((nxt == last_key) & (active > last_dom))
            if ok.all():
                break
            horizon += g + self.k + 1.0
        sel_dom = dom[order]
        ordinal = self._drawn[sel_dom] + (ks[order] - cnt[sel_dom])
        return sel_dom.astype(np.int64), ordinal

    def _commit(self, doms: np.ndarray) -> None:
        c = np.bincount(doms, minlength=self.k).astype(np.int64)
        self._t += int(doms.shape[0])
        self._position += int(doms.shape[0])
        self._cnt += c
        self._drawn += c

    def _perm(self, i: int, epoch: int) -> np.ndarray:
        hit = self._perms.get(i)
        if hit is not None and hit[0] == epoch:
            return hit[1]
        size = self.sizes[i]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, i, epoch]))
        perm = rng.permutation(size)
        if size < 2**31:
            perm = perm.astype(np.int32)
        self._perms[i] = (epoch, perm)
        return perm

    def _lookup(self, doms: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
        """Item index of each (domain, per-domain ordinal)."""
        out = np.empty(doms.shape[0], dtype=np.int64)
        if doms.shape[0] == 0:
            return out
        by_dom = np.argsort(doms, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(doms, minlength=self.k))])
        for i in range(self.k):
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            where = by_dom[lo:hi]
            p = ordinal[where]  # increasing
            size = self.sizes[i]
            if size is None:
                out[where] = p
                continue
            e0, e1 = int(p[0] // size), int(p[-1] // size)
            if e0 == e1:
                out[where] = self._perm(i, e0)[p - e0 * size]
                continue
            cuts = np.searchsorted(p, (np.arange(e0 + 1, e1 + 1) * size))
            edges = np.concatenate([[0], cuts, [p.shape[0]]])
            for e, (s, t) in zip(range(e0, e1 + 1), zip(edges[:-1], edges[1:])):
                if s < t:
                    out[where[s:t]] = self._perm(i, e)[p[s:t] - e * size]
        return out

    def _draw(self, n: int, lookup: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        g = n * self.world_size
        doms, ordinal = self._allocate(g)
        self._commit(doms)
        mine = slice(self.rank, None, self.world_size)
        d, o = doms[mine], ordinal[mine]
        return d, (self._lookup(d, o) if lookup else None), doms

    # ------------------------------------------------------------------ public drawing
    def next_batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's next ``n`` draws: ``(domains, indices)``, int64 arrays (vectorised).

        At most :data:`MAX_BATCH` global draws (``n * world_size``) per call."""
        n = _check_int(n, "n", 0)
        if n * self.world_size > MAX_BATCH:
            raise MixtureError(f"next_batch: n * world_size = {n * self.world_size} draws "
                               f"exceeds {MAX_BATCH} per call; draw in smaller batches or use "
                               "skip(n) to move past draws")
        self._sync()
        d, idx, _ = self._draw(n)
        return d, idx

    def skip(self, n: int) -> None:
        """Advance this rank by ``n`` draws without looking up item indices.

        Runs in time independent of ``n`` (``O(K)`` for ``K`` domains, plus ``O(K log K)`` for
        the last few draws): every draw whose key is at most some ``T`` comes before every draw
        with a larger key, so the draws up to ``T`` are counted per domain in closed form,
        ``m_i = #{k >= n_i : (k + theta - c0_i) / w_i <= T}``, checked against the very key
        expression :meth:`next_batch` sorts by, and the remaining draws are allocated as usual.
        The state afterwards is exactly the one ``next_batch(n)`` would leave."""
        n = _check_int(n, "n", 0)
        self._sync()
        g = n * self.world_size
        done = self._advance(g)
        doms, _ = self._allocate(g - done)
        self._commit(doms)

    def _advance(self, g: int) -> int:
        """Commit a prefix of the next ``g`` global draws in closed form; return its length."""
        w, cnt = self._w, self._cnt
        active = np.flatnonzero(w > 0)
        K = active.shape[0]
        if g <= 64 * (K + 1):
            return 0
        wa, ca = w[active], cnt[active].astype(np.float64)
        a = THETA - self._c0[active]
        target = g - 4 * (K + 1)
        T = (target + float(np.sum(a + ca - 1.0))) / float(np.sum(wa))
        for _ in range(64):
            m = np.maximum(np.floor(wa * T - a) - ca + 1.0, 0.0)
            for _ in range(8):  # agree exactly with the keys next_batch sorts
                last = ca + m - 1.0
                over = (m > 0) & ((last + a) / wa > T)
                under = (ca + m + a) / wa <= T
                if not (over.any() or under.any()):
                    break
                m = m - over + under
            else:
                return 0
            total = int(m.sum())
            if total <= g:
                break
            T -= (total - g) + 2.0 * (K + 1)
        else:
            return 0
        if total <= 0:
            return 0
        c = np.zeros(self.k, dtype=np.int64)
        c[active] = m.astype(np.int64)
        self._t += total
        self._position += total
        self._cnt += c
        self._drawn += c
        return total

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self

    def __next__(self) -> tuple[int, int]:
        if self._buf_pos >= len(self._buf_list):
            self._sync()
            before = self._snapshot()
            chunk = min(self._chunk * 2, 4096)
            d, idx, doms = self._draw(chunk)
            self._buf_before, self._buf_global = before, doms
            self._buf_list = list(zip(d.tolist(), idx.tolist()))
            self._buf_pos = 0
            self._chunk = chunk
        item = self._buf_list[self._buf_pos]
        self._buf_pos += 1
        return item

    def _clear_buffer(self) -> None:
        self._buf_list: list[tuple[int, int]] = []
        self._buf_pos = 0
        self._buf_before: dict[str, Any] | None = None
        self._buf_global = np.zeros(0, np.int64)

    def _snapshot(self) -> dict[str, Any]:
        return {"t": self._t, "cnt": self._cnt.copy(), "drawn": self._drawn.copy(),
                "position": self._position}

    def _sync(self) -> None:
        """Roll the committed state back to what the iterator has actually handed out."""
        if self._buf_before is None:
            return
        b = self._buf_before
        self._t, self._cnt, self._drawn = b["t"], b["cnt"], b["drawn"]
        self._position = b["position"]
        self._commit(self._buf_global[: self._buf_pos * self.world_size])
        self._clear_buffer()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the stream bit for bit (JSON types only)."""
        self._sync()
        return {
            "version": _VERSION,
            "sizes": list(self.sizes),
            "seed": self.seed,
            "world_size": self.world_size,
            "rank": self.rank,
            "weights": [float(x) for x in self._w],
            "anchor_credits": [float(x) for x in self._c0],
            "since_anchor": int(self._t),
            "counts_since_anchor": [int(x) for x in self._cnt],
            "drawn": [int(x) for x in self._drawn],
            "position": int(self._position),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output, from any rank and any world size (elastic: this
        sampler's rank continues the saved global stream at its own world size).

        The state is checked against its schema before anything changes: types and lengths of
        every field (``weights`` on the simplex, credits finite, counts non-negative integers),
        and the invariants a real stream keeps: counts since the anchor sum to ``since_anchor``,
        ``drawn`` sums to ``position`` and is at least the counts since the anchor, a domain of
        weight 0 has no draws since the anchor, the anchor credits of active domains sum to 0
        and every credit ``c0 + w t - n`` stays within ``K + 1`` (the stream's bound is
        ``(K + 1) / 2``). A bad state raises :class:`MixtureError` naming the field."""
        pre = "bad sampler state_dict: "
        k = self.k
        st = check(state, _state_schema(k), MixtureError, pre)
        for key, mine in (("sizes", self.sizes), ("seed", self.seed)):
            if st[key] != mine:
                raise MixtureError(
                    f"sampler state_dict has {key}={st[key]!r}, this sampler has {mine!r}")
        w = np.array(st["weights"], dtype=np.float64)  # exact saved bits
        if abs(float(w.sum()) - 1.0) > _TOL:
            raise MixtureError(f"{pre}weights: expected weights summing to 1 (on the simplex), "
                               f"got sum {float(w.sum())!r}")
        c0 = np.array(st["anchor_credits"], dtype=np.float64)
        cnt = np.array(st["counts_since_anchor"], dtype=np.int64)
        drawn = np.array(st["drawn"], dtype=np.int64)
        t, position = st["since_anchor"], st["position"]
        if int(cnt.sum()) != t:
            raise MixtureError(f"{pre}counts_since_anchor: expected counts summing to "
                               f"since_anchor={t}, got sum {int(cnt.sum())}")
        if int(drawn.sum()) != position:
            raise MixtureError(f"{pre}drawn: expected counts summing to position={position}, "
                               f"got sum {int(drawn.sum())}")
        if np.any(drawn < cnt):
            i = int(np.flatnonzero(drawn < cnt)[0])
            raise MixtureError(f"{pre}drawn[{i}]: expected >= counts_since_anchor[{i}]="
                               f"{int(cnt[i])}, got {int(drawn[i])}")
        idle = w <= 0
        if np.any(cnt[idle] != 0) or np.any(c0[idle] != 0):
            i = int(np.flatnonzero(idle & ((cnt != 0) | (c0 != 0)))[0])
            raise MixtureError(f"{pre}domain {i} has weight 0: expected counts_since_anchor[{i}]"
                               f" = 0 and anchor_credits[{i}] = 0, got {int(cnt[i])} and "
                               f"{float(c0[i])!r}")
        if abs(float(c0.sum())) > 1e-6 * max(1.0, float(np.abs(c0).sum())) + 1e-9:
            raise MixtureError(f"{pre}anchor_credits: expected credits summing to 0, got sum "
                               f"{float(c0.sum())!r}")
        credit = c0 + w * t - cnt
        limit = k + 1.0
        if np.any(np.abs(c0) > limit) or np.any(np.abs(credit) > limit):
            bad = np.abs(c0) > limit
            i = int(np.flatnonzero(bad | (np.abs(credit) > limit))[0])
            what = (f"anchor_credits[{i}] = {float(c0[i])!r}" if bad[i] else
                    f"credit c0 + w t - n of domain {i} = {float(credit[i])!r}")
            raise MixtureError(f"{pre}{what}: expected within +-{limit:g} (K + 1); the counts "
                               "do not follow the weights")
        self._clear_buffer()
        self._w = w
        self._c0, self._cnt, self._drawn = c0, cnt, drawn
        self._t = int(t)
        self._position = int(position)

    # ------------------------------------------------------------------ raw state (feeds)
    def _export(self) -> tuple[np.ndarray, np.ndarray]:
        """Global state as one int64 and one float64 array (for shared-memory feeds)."""
        self._sync()
        ints = np.concatenate([[self._t, self._position], self._cnt, self._drawn]).astype(np.int64)
        return ints, np.concatenate([self._w, self._c0])

    def _import(self, ints: np.ndarray, floats: np.ndarray) -> None:
        """Inverse of :meth:`_export` (no validation: the arrays come from a sampler)."""
        k = self.k
        self._clear_buffer()
        self._t, self._position = int(ints[0]), int(ints[1])
        self._cnt = np.array(ints[2:2 + k], dtype=np.int64)
        self._drawn = np.array(ints[2 + k:2 + 2 * k], dtype=np.int64)
        self._w = np.array(floats[:k], dtype=np.float64)
        self._c0 = np.array(floats[k:2 * k], dtype=np.float64)

    def __repr__(self) -> str:
        w = ", ".join(f"{x:.3f}" for x in self._w[:8])
        return (f"<MixtureSampler k={self.k} weights=[{w}{' ...' if self.k > 8 else ''}] "
                f"rank={self.rank}/{self.world_size}>")
