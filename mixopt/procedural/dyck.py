"""k-Dyck and k-Shuffle-Dyck languages (Jiang et al. 2026, "Procedural pretraining",
arXiv 2601.21725, App. A; shuffled Dyck after Hu et al. 2025).

Tokens: openers ``0 .. k-1``, the closer of opener ``i`` is ``i + k``, ``PAD = 2k``;
``vocab_size = 2k + 1``. Every position except the first is scored.

Generation rule (the paper's code), with ``d`` the number of open brackets and ``r`` the tokens
still to write: open when ``d = 0``; otherwise open with probability ``p_open`` if ``d`` is
below ``max_depth`` and ``d + 1 < r`` (room to close everything), else close. With an even
``length`` the sequence is exactly ``length`` tokens, every prefix is valid and it ends
balanced; once ``d = r`` the rest is forced closes.

The depth walk is a Markov chain on ``0 .. cap`` driven by i.i.d. coins
(:func:`capped_walk`): 8 steps are one table lookup on the packed coins, vectorised over rows,
and the end constraint is applied afterwards by forcing closes from the first ``t`` with
``d_t >= length - t``. Without ``max_depth`` the cap is ``length // 2 + 1``, which the walk never
reaches before that time; for very long rows the cap-free walk is built without a time loop
(:func:`dyck_open_flags`): a Lindley walk ``W_j = max(W_{j-1} + x_j, 0)`` over the coins is
``S_j - min_{i<=j} S_i``, and deleting the coins that try to go below 0 leaves a walk with
the rule's law (strong Markov property). Bracket types are matched afterwards without a
stack: the closer at ``t`` matches the last earlier event on the same nesting level, found by
one stable sort of the levels per row. k-Shuffle-Dyck types need the open types' state and
are stepped over time (:func:`_shuffle_types`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from mixopt.procedural.base import (
    Batch,
    Task,
    TaskError,
    check_choice,
    check_int,
    check_probability,
)

__all__ = ["Dyck", "ShuffleDyck", "dyck_open_flags", "match_brackets", "bracket_levels",
           "closer_accuracy", "entropy_floor"]


def _coins(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Bernoulli(p) coins, exactly ``rng.random(shape) < p`` in law: numpy's doubles are
    ``(raw >> 11) * 2**-53``, so the test is ``raw >> 11 < ceil(p * 2**53)`` on raw words."""
    raw = rng.bit_generator.random_raw(shape)
    raw >>= np.uint64(11)
    return raw < np.uint64(math.ceil(p * 2.0**53))


@functools.lru_cache(maxsize=32)
def _block_tables(m: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables of ``s`` steps of the capped walk on ``0 .. m``, indexed by
    ``depth + (m + 1) * code`` where bit ``i`` of ``code`` is the coin of step ``i``: the depth
    after the block (intp) and the block's open flags packed in the same bit order (uint8)."""
    w = m + 1
    code = np.arange(2**s)[:, None]
    depth = np.broadcast_to(np.arange(w), (2**s, w)).copy()
    pattern = np.zeros((2**s, w), dtype=np.uint8)
    for i in range(s):
        coin = (code >> i) & 1
        up = (depth < 1) | ((coin == 1) & (depth < m))
        pattern |= (up << i).astype(np.uint8)
        depth += np.where(up, 1, -1)
    depth.flags.writeable = pattern.flags.writeable = False
    return depth.astype(np.intp).ravel(), pattern.ravel()


def capped_walk(
    rng: np.random.Generator, batch_size: int, length: int, p_open: float, max_depth: int,
    force_end: bool,
) -> np.ndarray:
    """Open flags (intp 0/1, time-major ``[T, B]``) of the depth rule with a depth cap.

    The rule opens at depth 0, closes at ``max_depth`` and otherwise opens with probability
    ``p_open``. The walk is a Markov chain on ``0 .. max_depth`` driven by i.i.d. coins, so 8
    steps at a time are one table lookup: the coins of a block are packed into a byte ``c``
    and ``table[d + W c]`` (``W = max_depth + 1``) gives the depth after the block and the
    block's open flags as a byte (unpacked at the end); that is three vector operations per
    8 steps for all rows. With ``force_end`` the room constraint (open only while
    ``d + 1 < r``, ``r`` the tokens left) can only bind once ``r - 1 <= max_depth``: with a
    small cap the last ``max_depth + 1`` steps are stepped one at a time with that check;
    otherwise it first binds at the first ``t`` with ``d_t = r_t`` (``d``, ``r`` and ``t``
    share parity) and every later token closes, applied after the walk (before that time
    ``d <= min(t, r) <= T / 2``, so a cap above ``T / 2`` does not change the walk).
    """
    b, t_len = batch_size, length
    m = max(1, min(max_depth, t_len))
    w = m + 1
    s = 8 if w <= 2**13 else 1
    coins = _coins(rng, (t_len, b), p_open)
    # short tail: step it with the check; long tail (no binding cap): post-process
    step_tail = force_end and m < 64
    head = max(0, t_len - m - 1) if step_tail else t_len
    n_blocks = head // s
    head = n_blocks * s
    depth_after, pattern = _block_tables(m, s)
    bit = (np.uint8(1) << np.arange(s, dtype=np.uint8))[None, :, None]
    codes = (coins[:head].reshape(n_blocks, s, b).view(np.uint8) * bit).sum(axis=1, dtype=np.uint8)
    offset = codes.astype(np.intp)
    offset *= w
    packed = np.empty((n_blocks, b), dtype=np.uint8)
    depth = np.zeros(b, dtype=np.intp)
    idx = np.empty(b, dtype=np.intp)
    for i in range(n_blocks):
        np.add(depth, offset[i], out=idx)
        pattern.take(idx, out=packed[i])
        depth_after.take(idx, out=depth)
    opens = np.empty((t_len, b), dtype=np.intp)
    flags = (packed[:, None, :] >> np.arange(s, dtype=np.uint8)[None, :, None]) & np.uint8(1)
    opens[:head] = flags.reshape(head, b)
    single_up = _block_tables(m, 1)[1]
    for t in range(head, t_len):
        o = opens[t]
        np.add(depth, coins[t] * w, out=idx)
        o[:] = single_up.take(idx)
        if force_end:
            o[depth >= t_len - t - 1] = 0
        depth += o
        depth += o
        depth -= 1
    if force_end and not step_tail and t_len > 1:
        # before the first t with d_t >= r_t (then d_t = r_t, as d, r and t share parity) the
        # free walk obeys the rule; from there every token closes
        steps = opens.astype(np.int16 if t_len < 2**15 else np.int32)
        steps += steps
        steps -= 1
        depth_after = np.cumsum(steps, axis=0, dtype=steps.dtype)
        remaining = np.arange(t_len - 1, 0, -1, dtype=steps.dtype)[:, None]
        hit = depth_after[:-1] >= remaining  # at step t + 1
        first = np.where(hit.any(axis=0), hit.argmax(axis=0) + 1, t_len)
        opens *= np.arange(t_len)[:, None] < first
    return opens


def dyck_open_flags(
    rng: np.random.Generator, batch_size: int, length: int, p_open: float,
    max_depth: int | None = None,
) -> np.ndarray:
    """Open (True) / close (False) pattern ``[B, T]`` of the Dyck depth rule (module doc)."""
    if max_depth is not None or length <= 2**13:
        cap = length // 2 + 1 if max_depth is None else min(max_depth, length // 2 + 1)
        opens = capped_walk(rng, batch_size, length, p_open, cap, True)
        return np.ascontiguousarray(opens.astype(bool).T)
    b, t_len = batch_size, length
    opens = np.empty((b, t_len), dtype=bool)
    todo = np.arange(b)
    # kept coins per coin is about 2 p for p < 1/2 (stationary P(W = 0) = (1 - 2p)/(1 - p))
    n_coins = int(t_len / min(1.0, 2.0 * p_open) * 1.1) + 64
    while todo.size:
        wide = n_coins >= 2**15
        up = rng.random((todo.size, n_coins)) < p_open
        steps = up.view(np.int8) * np.int8(2) - np.int8(1)
        s = np.cumsum(steps, axis=1, dtype=np.int32 if wide else np.int16)
        run_min = np.minimum.accumulate(s, axis=1)
        np.minimum(run_min, 0, out=run_min)  # min over S_0 = 0, S_1, ..., S_j
        kept = np.empty_like(up)  # coin j is dropped when W_{j-1} = 0 and it says "close"
        kept[:, 0] = up[:, 0]
        np.not_equal(s[:, :-1], run_min[:, :-1], out=kept[:, 1:])  # W_{j-1} != 0
        kept[:, 1:] |= up[:, 1:]
        n_kept = np.cumsum(kept, axis=1, dtype=np.int32)
        enough = n_kept[:, -1] >= t_len
        rows = np.flatnonzero(enough)
        if rows.size:
            sel = kept[rows]
            sel &= n_kept[rows] <= t_len
            opens[todo[rows]] = up[rows][sel].reshape(rows.size, t_len)
        todo = todo[~enough]
        n_coins *= 2
    # end constraint: from the first t with depth_t >= length - t, every token closes
    depth_after = np.cumsum(opens, axis=1, dtype=np.int32) * 2 - np.arange(1, t_len + 1)
    hit = np.empty((b, t_len), dtype=bool)
    hit[:, 0] = False
    np.greater_equal(depth_after[:, :-1], t_len - np.arange(1, t_len), out=hit[:, 1:])
    forced = np.logical_or.accumulate(hit, axis=1)
    opens &= ~forced
    return opens


def bracket_levels(opens: np.ndarray) -> np.ndarray:
    """Nesting level of each event: the depth before an opener, the depth after a closer."""
    steps = opens.view(np.int8) * np.int8(2) - np.int8(1)
    depth_after = np.cumsum(steps, axis=1, dtype=np.int32)
    return depth_after - opens


def match_brackets(opens: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """Tokens of a well-nested open/close pattern: each opener gets a uniform type in
    ``0 .. k-1`` and each closer its opener's type ``+ k``.

    An opener's level is the depth before it, a closer's the depth after it; the closer at
    ``t`` matches the latest earlier event of its level, i.e. its predecessor after a stable
    sort of the row by level. Types are i.i.d., so they are drawn directly in that sorted
    order (fresh for openers, copied by the closer that follows) and scattered back once.
    """
    b, t_len = opens.shape
    level = bracket_levels(opens)
    key = level.astype(np.uint16) if t_len < 2**16 else level
    order = np.argsort(key, axis=1, kind="stable")
    small = np.int16 if 2 * k < 2**15 else np.int64
    fresh = rng.integers(0, k, size=(b, t_len), dtype=small)
    open_sorted = np.take_along_axis(opens, order, axis=1)
    tok_sorted = fresh.copy()
    tok_sorted[:, 1:] = np.where(open_sorted[:, 1:], fresh[:, 1:], fresh[:, :-1] + small(k))
    tokens = np.empty((b, t_len), dtype=small)
    np.put_along_axis(tokens, order, tok_sorted, axis=1)
    return tokens.astype(np.int64)


class _BracketTask(Task):
    def pad_token(self) -> int:
        return 2 * self.k

    def token_strings(self) -> list[str]:
        return [f"({i}" for i in range(self.k)] + [f"{i})" for i in range(self.k)] + ["_"]


class Dyck(_BracketTask):
    """k-Dyck words of exactly ``length`` tokens (``length`` must be even).

    Options: ``k`` bracket types (default 64, the paper's), ``p_open`` (default 0.49, the
    paper's code), ``max_depth`` (default None: only the length limits the depth).
    """

    name = "dyck"

    def __init__(self, *, k: int = 64, p_open: float = 0.49, max_depth: int | None = None):
        self.k = check_int("k", k, low=1)
        self.p_open = check_probability("p_open", p_open)
        self.max_depth = None if max_depth is None else check_int("max_depth", max_depth, low=1)
        self.vocab_size = 2 * self.k + 1

    def check_length(self, length: int) -> None:
        super().check_length(length)
        if length % 2:
            raise TaskError(f"length must be even for task 'dyck' (balanced words), got {length}")

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        opens = dyck_open_flags(rng, batch_size, length, self.p_open, self.max_depth)
        tokens = match_brackets(opens, rng, self.k)
        mask = np.ones((batch_size, length), dtype=bool)
        mask[:, 0] = False
        return Batch(tokens, mask)

    def closer_accuracy(self, predictions: Any, batch: Batch, *, aligned: str = "next") -> float:
        """Fraction of scored closing brackets predicted exactly (see :func:`closer_accuracy`)."""
        return closer_accuracy(predictions, batch, self.k, aligned=aligned)

    def entropy_floor(self, batch: Batch) -> float:
        """Mean conditional entropy of the scored tokens (see :func:`entropy_floor`)."""
        return entropy_floor(batch, self.k, self.p_open, self.max_depth)


def _aligned_predictions(predictions: Any, shape: tuple[int, ...], aligned: str) -> np.ndarray:
    pred = np.asarray(predictions)
    if pred.ndim == 3:
        pred = pred.argmax(axis=-1)
    if pred.shape != tuple(shape):
        raise TaskError(f"predictions must have shape {tuple(shape)} (or [B, T, V] logits), "
                        f"got {np.asarray(predictions).shape}")
    aligned = check_choice("aligned", aligned, ("target", "next"))
    if aligned == "next":
        shifted = np.full_like(pred, -1)
        shifted[:, 1:] = pred[:, :-1]
        pred = shifted
    return pred


def closer_accuracy(predictions: Any, batch: Batch, k: int, *, aligned: str = "next") -> float:
    """Closing-bracket accuracy of a model's predictions on a k-Dyck batch.

    The diagnostic of whether a model has learnt bracket matching (Jiang et al. 2026, arXiv
    2601.21725, Sec. 5 ties the haystack gain to it): over the scored positions ``t`` whose
    token is a closer (``k <= tokens[:, t] < 2k``), the fraction where the argmax prediction is
    that closer. Under the generation rule a closer is the most likely next token wherever one
    may come (its probability ``1 - p_open`` exceeds any single opener's ``p_open / k``), so a
    model that matches brackets scores 1, and one that only knows "some closer" scores about
    the chance of guessing the open type (about ``1 / min(k, depth)``).

    Parameters
    ----------
    predictions : array_like
        Token ids ``[B, T]`` or logits ``[B, T, V]`` (reduced by argmax).
    batch : Batch
        The Dyck batch the predictions are for.
    k : int
        Number of bracket types (closers are ``k .. 2k - 1``).
    aligned : {"next", "target"}
        ``"next"`` (default): ``predictions[:, t]`` is the guess made at position ``t`` for
        ``tokens[:, t + 1]`` (a causal model's raw output); ``"target"``: it is the guess for
        ``tokens[:, t]``.

    Returns
    -------
    float
        The accuracy, or NaN when the batch has no scored closer.
    """
    k = check_int("k", k, low=1)
    pred = _aligned_predictions(predictions, batch.tokens.shape, aligned)
    tok = batch.tokens
    closer = (tok >= k) & (tok < 2 * k) & batch.loss_mask
    n = int(closer.sum())
    if n == 0:
        return float("nan")
    return float(((pred == tok) & closer).sum() / n)


def entropy_floor(batch: Batch, k: int, p_open: float, max_depth: int | None = None) -> float:
    """Mean conditional entropy (nats) of the scored tokens of a k-Dyck batch under its rule.

    The lowest mean next-token loss any model can reach on the batch's positions: with ``d``
    the depth before position ``t`` and ``r = T - t`` the tokens left, the next token is a
    uniform opener when ``d = 0`` (``log k``), a forced closer when ``d >= r`` or
    ``d >= max_depth`` (0 nats: its type is the last open one), and otherwise an opener of a
    uniform type with probability ``p_open`` or the matching closer (``H(p_open) +
    p_open log k``). Averaged over the batch's scored positions it estimates the expected
    entropy per token (arXiv 2601.21725 App. A's rule; the floor a trained source is compared
    with).

    Parameters
    ----------
    batch : Batch
        A batch of Dyck rows (tokens ``< 2k`` are brackets, ``2k`` padding).
    k : int
        Number of bracket types.
    p_open : float
        The opening probability the rows were drawn with.
    max_depth : int or None
        The depth cap the rows were drawn with.

    Returns
    -------
    float
        Mean entropy in nats over the scored positions.
    """
    k = check_int("k", k, low=1)
    p = check_probability("p_open", p_open)
    tok = batch.tokens
    t_len = tok.shape[1]
    steps = np.where(tok < k, 1, -1)
    depth_before = np.zeros_like(steps)
    depth_before[:, 1:] = np.cumsum(steps, axis=1)[:, :-1]
    remaining = t_len - np.arange(t_len)[None, :]
    free = np.log(k) * p - p * np.log(p) - (1 - p) * np.log1p(-p)
    ent = np.where(depth_before == 0, np.log(k), free)
    forced = depth_before >= remaining
    if max_depth is not None:
        forced |= depth_before >= max_depth
    ent = np.where(forced & (depth_before > 0), 0.0, ent)
    mask = batch.loss_mask
    if not mask.any():
        raise TaskError("entropy_floor needs a batch with scored positions")
    return float(ent[mask].mean())


class ShuffleDyck(_BracketTask):
    """k-Shuffle-Dyck: each bracket type is balanced on its own, types may cross.

    Rule (the paper's code): with ``d`` open brackets in total, open a uniform type when
    ``d = 0``; close when ``d >= max_depth``; otherwise open with probability ``p_open``, else
    close a type chosen uniformly among the types that have an open bracket (uniform over
    types, not over brackets). A closer never appears without an open bracket of its type.

    ``balance="close"`` (default) also applies the Dyck room constraint (open only while
    ``d + 1 < r``), so rows of even ``length`` end balanced; ``balance="truncate"`` is the
    paper's code: the walk is cut at ``length`` and may end with open brackets.
    Defaults: ``k = 64``, ``p_open = 0.5``, ``max_depth = 16``.

    Vectorised over rows with a loop over time: per-row type counters ``[B, k]`` and a list of
    the distinct open types with swap-removal, so each step is a fixed number of vector
    operations.
    """

    name = "shuffle_dyck"

    def __init__(
        self, *, k: int = 64, p_open: float = 0.5, max_depth: int = 16, balance: str = "close"
    ):
        self.k = check_int("k", k, low=1)
        self.p_open = check_probability("p_open", p_open)
        self.max_depth = check_int("max_depth", max_depth, low=1)
        if balance not in ("close", "truncate"):
            raise TaskError(f"option 'balance' must be 'close' or 'truncate', got {balance!r}")
        self.balance = balance
        self.vocab_size = 2 * self.k + 1

    def check_length(self, length: int) -> None:
        super().check_length(length)
        if self.balance == "close" and length % 2:
            raise TaskError(
                f"length must be even for task 'shuffle_dyck' with balance='close', got {length}"
            )

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        b, t_len, k = batch_size, length, self.k
        opens = capped_walk(rng, b, t_len, self.p_open, self.max_depth, self.balance == "close")
        tokens = _shuffle_types(rng, opens, k, min(self.max_depth, t_len))
        mask = np.ones((b, t_len), dtype=bool)
        mask[:, 0] = False
        return Batch(tokens, mask)


def _shuffle_types(rng: np.random.Generator, opens: np.ndarray, k: int, max_depth: int):
    """Tokens ``[B, T]`` (int64) of k-Shuffle-Dyck given the open flags (intp ``[T, B]``).

    An opener takes a uniform type; a closer takes a type uniform among the distinct open
    types. Per row: ``cnt`` counts the open brackets of each type and the first ``nd`` slots
    of ``lst`` hold the distinct open types. One uniform word ``R`` of ``bits`` bits per
    token serves both kinds of step: a closer reads slot ``j = (R * nd) >> bits``
    (``floor(u * nd)``, as ``rng.random() * nd`` would) and swaps it with the last slot, and
    an opener reads its type ``(R * k) >> bits`` from a block stored after the lists (its
    ``R`` is zeroed and its slot index points into that block). The new count and the change
    of ``nd`` come from two small tables indexed by ``count + opener * (max_depth + 2)``; a
    closer that empties its type leaves it in the last slot, which ``nd -= 1`` drops, and an
    opener of a new type writes it to the slot past the list, which ``nd += 1`` takes in.
    Each step is thirteen vector operations over the rows.
    """
    t_len, b = opens.shape
    width = min(k, max_depth) + 1
    bits = min(53, 63 - max(int(width).bit_length(), int(k).bit_length()))
    rows = np.arange(b, dtype=np.intp)
    base = rows * width
    base_k = rows * k
    tail0 = b * width
    r = rng.bit_generator.random_raw((t_len, b))
    r >>= np.uint64(64 - bits)
    r = r.view(np.intp)
    lst = np.empty(tail0 + t_len * b, dtype=np.intp)
    tail = lst[tail0:].reshape(t_len, b)
    np.multiply(r, k, out=tail)
    tail >>= bits
    tail += base_k
    om1 = opens - 1  # 0 for openers, -1 (all bits set) for closers
    r &= om1
    last = om1 + base  # last slot for a closer, the slot past the list for an opener
    del om1
    slot0 = np.arange(tail0, tail0 + t_len * b, b, dtype=np.intp)[:, None] + rows * (1 - width)
    slot0 *= opens
    slot0 += base  # where slot j = 0 is: the row's list, or the opener's type in the tail
    c_top = max_depth + 2
    c = np.arange(c_top)
    # tables indexed by count + opener * c_top: the new count, the change of nd
    new_count = np.concatenate([c - 1, c + 1]).astype(np.intp)
    d_distinct = np.zeros(2 * c_top, dtype=np.intp)
    d_distinct[1] = -1  # a closer leaves count 0
    d_distinct[c_top] = 1  # an opener of a type with count 0
    kind = opens * c_top
    cnt = np.zeros(b * k, dtype=np.intp)
    nd = np.zeros(b, dtype=np.intp)
    out = np.empty((t_len, b), dtype=np.intp)
    j = np.empty(b, dtype=np.intp)
    ci = np.empty(b, dtype=np.intp)
    pos = np.empty(b, dtype=np.intp)
    dn = np.empty(b, dtype=np.intp)
    for t in range(t_len):
        np.multiply(r[t], nd, out=j)
        j >>= bits
        j += slot0[t]
        tau = lst.take(j, out=out[t])
        np.add(cnt[tau], kind[t], out=ci)
        cnt[tau] = new_count[ci]
        d_distinct.take(ci, out=dn)
        np.add(nd, last[t], out=pos)
        lst[j] = lst[pos]
        lst[pos] = tau
        nd += dn
    out -= base_k
    np.multiply(opens, -k, out=opens)
    opens += k
    out += opens  # closers: type + k
    small = np.int16 if 2 * k < 2**15 else np.int32
    return np.ascontiguousarray(out.astype(small).T).astype(np.int64)
