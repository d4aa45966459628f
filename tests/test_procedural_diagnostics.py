"""Options and diagnostics that the warm-up studies rely on (issue 20): haystack's value
vocabulary, Dyck's closing-bracket accuracy and entropy floor, LEGO's scratchpad and
distractor clauses."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mixopt.procedural as P
from mixopt.errors import TaskError
from mixopt.procedural import Batch


# ----------------------------------------------------------------------------- haystack
def test_haystack_n_values_bounds_values_and_keeps_layout():
    task = P.get("haystack", n_pairs=10, n_values=20)
    b = task.sample(np.random.default_rng(0), 500, 24)
    vals = b.tokens[:, 1:21:2][b.tokens[:, 0:20:2] >= 128]  # value after each key
    assert vals.min() >= 1 and vals.max() == 20
    ans = b.tokens[b.loss_mask]
    assert ans.min() >= 1 and ans.max() <= 20
    assert task.vocab_size == 256 and task.query_token(3) == 128 + 10 + 3
    # the answer is the value stored under the queried key
    for i in range(50):
        row = b.tokens[i]
        t = int(np.flatnonzero(b.loss_mask[i])[0])
        key = row[t - 1] - 10
        pos = np.flatnonzero(row[: t - 1] == key)[0]
        assert row[pos + 1] == row[t]


def test_haystack_default_values_unchanged():
    a = P.get("haystack").sample(np.random.default_rng(3), 8, 62)
    b = P.get("haystack", n_values=127).sample(np.random.default_rng(3), 8, 62)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert a.tokens[a.loss_mask].max() <= 127
    for bad in (0, 128, 2.5, True):
        with pytest.raises(TaskError, match="n_values"):
            P.get("haystack", n_values=bad)


# ----------------------------------------------------------------------------- Dyck
def _one_hot(ids: np.ndarray, v: int) -> np.ndarray:
    return np.eye(v)[ids]


def test_closer_accuracy_on_hand_made_logits():
    dyck = P.get("dyck", k=2)
    # (0 (1 1) 0) (1 1)   openers 0, 1; closers 2, 3
    tokens = np.array([[0, 1, 3, 2, 1, 3]])
    batch = Batch(tokens, np.array([[False, True, True, True, True, True]]))
    # aligned="next": position t predicts tokens[t + 1]; closers sit at t = 2, 3, 5
    guess = np.array([[1, 3, 3, 1, 3, 0]])  # right at 2 (3), wrong at 3 (3 != 2), right at 5
    logits = _one_hot(guess, dyck.vocab_size) + 0.01
    assert dyck.closer_accuracy(logits, batch) == pytest.approx(2 / 3)
    assert dyck.closer_accuracy(guess, batch) == pytest.approx(2 / 3)
    # aligned="target": predictions[t] is the guess for tokens[t]
    target = np.array([[9, 9, 3, 2, 9, 2]])
    assert dyck.closer_accuracy(target, batch, aligned="target") == pytest.approx(2 / 3)
    # perfect predictions score 1 on sampled rows; openers never count
    rows = dyck.sample(np.random.default_rng(0), 16, 32)
    assert dyck.closer_accuracy(rows.tokens, rows, aligned="target") == 1.0
    opener_only = np.where(rows.tokens < 2, rows.tokens, 0)
    assert dyck.closer_accuracy(opener_only, rows, aligned="target") == 0.0
    with pytest.raises(TaskError, match="shape"):
        dyck.closer_accuracy(guess[:, :3], batch)


def test_entropy_floor_by_hand_and_against_the_oracle_loss():
    p = 0.49
    h_free = -p * math.log(p) - (1 - p) * math.log(1 - p) + p * math.log(2)
    # (0 (1 1) 0): t=1 free (d=1, r=3); t=2 forced (d=2 = r); t=3 forced (d=1 = r)
    batch = Batch(np.array([[0, 1, 3, 2]]), np.array([[False, True, True, True]]))
    assert P.get("dyck", k=2).entropy_floor(batch) == pytest.approx(h_free / 3)
    # (0 0) (1 1): t=1 free (d=1, r=3); t=2 at depth 0 -> log k; t=3 forced
    batch = Batch(np.array([[0, 2, 1, 3]]), np.array([[False, True, True, True]]))
    assert P.get("dyck", k=2).entropy_floor(batch) == pytest.approx((h_free + math.log(2)) / 3)
    # max_depth 1: every position at depth 1 is a forced close
    batch = Batch(np.array([[0, 2, 1, 3]]), np.array([[False, True, True, True]]))
    assert P.get("dyck", k=2, max_depth=1).entropy_floor(batch) == pytest.approx(math.log(2) / 3)
    # the oracle's mean log-loss on many rows equals the floor up to sampling noise
    k, length = 4, 32
    task = P.get("dyck", k=k)
    rows = task.sample(np.random.default_rng(1), 4000, length)
    tok = rows.tokens
    depth = np.zeros_like(tok)
    depth[:, 1:] = np.cumsum(np.where(tok < k, 1, -1), axis=1)[:, :-1]
    rem = length - np.arange(length)[None, :]
    is_open = tok < k
    prob = np.where(depth == 0, 1 / k,
                    np.where(depth >= rem, 1.0, np.where(is_open, p / k, 1 - p)))
    nll = -np.log(prob)[rows.loss_mask].mean()
    assert task.entropy_floor(rows) == pytest.approx(nll, abs=0.01)
    assert 1.0 < task.entropy_floor(rows) < math.log(2 * k)


# ----------------------------------------------------------------------------- LEGO
def _chain_values(task, batch, i):
    """Resolve row i's clauses by hand: letter -> value."""
    names = task.token_strings()
    toks = batch.tokens[i]
    n_cl = task.n_clauses
    clauses = toks[: 5 * n_cl].reshape(n_cl, 5)
    val: dict[int, int] = {}
    while len(val) < n_cl:
        for y, _, op, x, _ in clauses:
            if y in val:
                continue
            if x in (task.ZERO, task.ONE):
                val[y] = int(x - task.ZERO)
            elif x in val:
                val[y] = val[x] ^ int(op == task.NOT)
    assert len(names) == task.vocab_size
    return val, clauses


@pytest.mark.parametrize("style", ["values", "named", "path"])
@pytest.mark.parametrize("graph", ["chain", "tree"])
def test_lego_scratchpad_lists_the_path_values_and_the_mask_marks_them(style, graph):
    task = P.get("lego", n=6, graph=graph, scratchpad=style, distractors=2)
    length = task.min_length() + 3
    b = task.sample(np.random.default_rng(5), 200, length)
    start = 5 * task.n_clauses
    for i in range(200):
        val, clauses = _chain_values(task, b, i)
        parent = {y: x for y, _, _, x, _ in clauses}
        q = b.tokens[i, start]
        path = [q]
        while parent[path[-1]] not in (task.ZERO, task.ONE):
            path.append(parent[path[-1]])
        path = path[::-1]  # root first
        if style == "values":
            want = [task.ZERO + val[v] for v in path]
        elif style == "named":
            want = [t for v in path for t in (v, task.ZERO + val[v])]
        else:  # letters from the query back to the root, then values from the root
            want = path[::-1] + [task.ZERO + val[v] for v in path]
            assert all(parent[a] == b for a, b in zip(want[:-1], want[1:len(path)]))
        got_pos = np.flatnonzero(b.loss_mask[i])
        expect_pos = np.arange(start + 3, start + 3 + len(want))
        np.testing.assert_array_equal(got_pos, expect_pos)
        np.testing.assert_array_equal(b.tokens[i, got_pos], want)
        assert len(path) == int(task._path_len[b.skill[i]])
        assert (b.tokens[i, expect_pos[-1] + 1:] == task.PAD).all()


def test_lego_scratchpad_true_is_values_and_default_stream_unchanged():
    a = P.get("lego", scratchpad=True).sample(np.random.default_rng(0), 8, 40)
    b = P.get("lego", scratchpad="values").sample(np.random.default_rng(0), 8, 40)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    plain = P.get("lego").sample(np.random.default_rng(0), 8, 29)
    # the scratchpad's last value is the plain task's answer on the same draws
    last = np.array([a.tokens[i, np.flatnonzero(a.loss_mask[i])[-1]] for i in range(8)])
    np.testing.assert_array_equal(last, plain.tokens[plain.loss_mask])
    np.testing.assert_array_equal(a.tokens[:, :28], plain.tokens[:, :28])
    with pytest.raises(TaskError, match="scratchpad"):
        P.get("lego", scratchpad="maybe")
    with pytest.raises(TaskError, match="distractors"):
        P.get("lego", n=5, n_letters=6, distractors=2)
    with pytest.raises(TaskError, match="too short"):
        P.get("lego", scratchpad="named").sample(np.random.default_rng(0), 2, 30)


def _parity_shortcut(task, batch):
    """Root value XOR the parity of every ``not`` token before the query."""
    start = 5 * task.n_clauses
    clauses = batch.tokens[:, :start].reshape(len(batch), task.n_clauses, 5)
    root = clauses[:, :, 3][np.isin(clauses[:, :, 3], (task.ZERO, task.ONE))] - task.ZERO
    nots = (clauses[:, :, 2] == task.NOT).sum(axis=1)
    return (root + nots) % 2


def test_lego_distractors_remove_the_leaf_parity_shortcut():
    n = 5
    leaf = np.eye(n)[n - 1]
    plain = P.get("lego", n=n, skill_weights=leaf)
    b = plain.sample(np.random.default_rng(0), 2000, plain.min_length())
    ans = b.tokens[b.loss_mask] - plain.ZERO
    assert (_parity_shortcut(plain, b) == ans).mean() == 1.0  # the shortcut without them
    task = P.get("lego", n=n, skill_weights=leaf, distractors=3)
    b = task.sample(np.random.default_rng(0), 20_000, task.min_length())
    ans = b.tokens[b.loss_mask] - task.ZERO
    for i in range(50):  # the answer is still the queried chain variable's value
        val, _ = _chain_values(task, b, i)
        assert val[b.tokens[i, 5 * task.n_clauses]] == ans[i]
    acc = (_parity_shortcut(task, b) == ans).mean()
    assert abs(acc - 0.5) < 0.015  # 4 standard errors at 20,000 rows
    # distractors are ordinary clauses: their right-hand side is always a defined variable
    clauses = b.tokens[:, : 5 * task.n_clauses].reshape(len(b), task.n_clauses, 5)
    lhs = clauses[:, :, 0]
    for i in range(50):
        rhs = clauses[i, :, 3]
        assert all(r in lhs[i] or r in (task.ZERO, task.ONE) for r in rhs)
