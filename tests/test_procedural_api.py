"""Procedural tasks: registry, options and errors, determinism, scoring, mixtures, hand-computed
helpers, and distribution checks against plain-Python references of the generation rules."""

from __future__ import annotations

import random

import numpy as np
import pytest

import mixopt.procedural as P
from mixopt.errors import MixoptError, TaskError
from mixopt.procedural.arithmetic import add_digits, multiply_digits
from mixopt.procedural.base import allocate
from mixopt.procedural.dyck import bracket_levels
from mixopt.procedural.eca import eca_step
from mixopt.procedural.sequence import first_occurrences

ALL = P.names()


def natural_length(task):
    n = max(task.min_length(), 48)
    return n + n % 2


# ----------------------------------------------------------------------------- registry
def test_names():
    assert ALL == sorted([
        "addition", "addition_forward", "addition_reversed", "delete", "dyck", "eca",
        "haystack", "identity", "lego", "multiplication", "reverse", "set", "shuffle_dyck",
        "sort", "stack", "union",
    ])


@pytest.mark.parametrize("name", ALL)
def test_every_task_samples_deterministically(name):
    task = P.get(name)
    length = natural_length(task)
    a = task.sample(np.random.default_rng(7), 16, length)
    b = task.sample(np.random.default_rng(7), 16, length)
    c = task.sample(np.random.default_rng(8), 16, length)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.loss_mask, b.loss_mask)
    assert not np.array_equal(a.tokens, c.tokens)
    assert a.loss_mask.any(axis=1).all()  # every row has something to learn
    assert isinstance(a.text(0), str) and "[" in a.text(0)
    params = task.get_params()
    assert type(P.get(name, **params).get_params()) is dict
    assert P.get(name, **params).get_params() == params


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "name,options,needle",
    [
        ("dyck", {"k": 0}, "'k'"),
        ("dyck", {"p_open": 1.0}, "'p_open'"),
        ("dyck", {"p_open": 0}, "'p_open'"),
        ("dyck", {"max_depth": 0}, "'max_depth'"),
        ("shuffle_dyck", {"balance": "maybe"}, "'balance'"),
        ("eca", {"rule": 256}, "'rule'"),
        ("eca", {"rule": -1}, "'rule'"),
        ("eca", {"width": 0}, "'width'"),
        ("sort", {"vocab": 1}, "'vocab'"),
        ("sort", {"vocab": 2.5}, "'vocab'"),
        ("sort", {"n": 0}, "'n'"),
        ("stack", {"p_push": 1.5}, "'p_push'"),
        ("lego", {"n": 30}, "'n_letters'"),
        ("lego", {"graph": "ring"}, "'graph'"),
        ("lego", {"skill_weights": [1, -1, 1, 1, 1]}, "'skill_weights'"),
        ("lego", {"skill_weights": [1, 1]}, "'skill_weights'"),
        ("addition", {"digits": 0}, "'digits'"),
        ("addition_forward", {"digits": 3, "min_digits": 5}, "'min_digits'"),
        ("multiplication", {"reverse": "yes"}, "'reverse'"),
        ("haystack", {"n_pairs": 65}, "'n_pairs'"),
        ("haystack", {"n_pairs": 129, "query": "repeat"}, "'n_pairs'"),
        ("haystack", {"query": "same"}, "'query'"),
        ("haystack", {"n_pairs": 3, "min_pairs": 4}, "'min_pairs'"),
        ("sort", {"colour": 3}, "colour"),
    ],
)
def test_bad_options(name, options, needle):
    with pytest.raises(TaskError) as info:
        P.get(name, **options)
    assert needle in str(info.value)
    assert isinstance(info.value, MixoptError)


@pytest.mark.parametrize(
    "name,options,length",
    [("dyck", {}, 7), ("shuffle_dyck", {}, 9), ("sort", {"n": 10}, 20), ("union", {}, 5),
     ("delete", {}, 4), ("stack", {"n": 5}, 10), ("eca", {"width": 8}, 9), ("lego", {}, 28),
     ("addition", {}, 10), ("addition_forward", {}, 33), ("multiplication", {}, 14),
     ("haystack", {}, 61), ("dyck", {}, 1)],
)
def test_length_too_short(name, options, length):
    with pytest.raises(TaskError, match="length"):
        P.get(name, **options).sample(np.random.default_rng(0), 2, length)


def test_bad_sample_arguments():
    task = P.get("sort")
    rng = np.random.default_rng(0)
    with pytest.raises(TaskError, match="rng"):
        task.sample(np.random.RandomState(0), 2, 20)
    with pytest.raises(TaskError, match="batch_size"):
        task.sample(rng, 0, 20)
    with pytest.raises(TaskError, match="length"):
        task.sample(rng, 2, 20.0)
    with pytest.raises(TaskError, match="unknown task"):
        P.get("dyk")


# ----------------------------------------------------------------------------- hand checks
def test_allocate_by_hand():
    rng = np.random.default_rng(0)
    # cumulative (0.5, 0.75, 1) * 4 = (2, 3, 4): floor(2 + u), floor(3 + u), 4 -> 2, 1, 1
    for _ in range(5):
        assert allocate(np.array([0.5, 0.25, 0.25]), 4, rng).tolist() == [2, 1, 1]
    # thirds of 2: edges floor(2/3 + u), floor(4/3 + u), 2; expected counts 2/3 each
    draws = np.array([allocate(np.ones(3) / 3, 2, rng) for _ in range(3000)])
    assert (draws.sum(axis=1) == 2).all() and draws.max() <= 1
    assert np.allclose(draws.mean(axis=0), 2 / 3, atol=0.04)


def test_eca_step_by_hand():
    # rule 110 = 0b01101110; neighbourhood (l, c, r) -> bit 4l + 2c + r.
    # 00010 with wrap: (0,0,0)->0, (0,0,0)->0, (0,0,1)->bit1=1, (0,1,0)->bit2=1, (1,0,0)->bit4=0
    assert eca_step(np.array([0, 0, 0, 1, 0]), 110).tolist() == [0, 0, 1, 1, 0]
    # rule 90 (xor of the neighbours) on 0100: 1, 0, 1, 0
    assert eca_step(np.array([0, 1, 0, 0]), 90).tolist() == [1, 0, 1, 0]


def test_digit_arithmetic_by_hand():
    # 99 + 01 = 100 (little-endian digits)
    assert add_digits(np.array([[9, 9]]), np.array([[1, 0]])).tolist() == [[0, 0, 1]]
    # 12 * 34 = 408: conv (2*4, 1*4 + 2*3, 1*3, 0) = (8, 10, 3, 0) -> carries -> 8, 0, 4, 0
    assert multiply_digits(np.array([[2, 1]]), np.array([[4, 3]])).tolist() == [[8, 0, 4, 0]]
    assert multiply_digits(np.array([[9, 9, 9]]), np.array([[9, 9, 9]])).tolist() == [
        [1, 0, 0, 8, 9, 9]
    ]  # 999 * 999 = 998001


def test_first_occurrences_by_hand():
    out, counts = first_occurrences(np.array([[3, 1, 3, 2, 1], [4, 4, 4, 4, 4]]), pad=9)
    assert out.tolist() == [[3, 1, 2, 9, 9], [4, 9, 9, 9, 9]]
    assert counts.tolist() == [3, 1]


def test_bracket_levels_by_hand():
    # ( ( ) ) ( ): opener level = depth before, closer level = depth after
    opens = np.array([[True, True, False, False, True, False]])
    assert bracket_levels(opens).tolist() == [[0, 1, 1, 0, 0, 0]]


# ----------------------------------------------------------------------------- scoring
def test_score_by_hand():
    task = P.get("haystack")
    batch = task.sample(np.random.default_rng(0), 4, 63)
    pred = batch.tokens.copy()
    s = task.score(pred, batch)
    assert s.token_accuracy == 1.0 and s.exact_match == 1.0 and s.n_tokens == 4
    pred[0, batch.loss_mask[0]] += 1  # one answer wrong out of four
    pred[1, ~batch.loss_mask[1]] += 1  # unscored positions do not count
    s = task.score(pred, batch)
    assert s.token_accuracy == 0.75 and s.exact_match == 0.75
    # next-token alignment: the prediction made at t - 1 is for token t
    nxt = np.zeros_like(pred)
    nxt[:, :-1] = batch.tokens[:, 1:]
    assert task.score(nxt, batch, aligned="next").token_accuracy == 1.0
    with pytest.raises(TaskError, match="shape"):
        task.score(pred[:, :5], batch)
    assert "token accuracy" in s.summary() and s.to_dict()["n_rows"] == 4


def test_score_exact_match_and_skills():
    task = P.get("sort", vocab=10, n=3)
    batch = task.sample(np.random.default_rng(0), 2, 7)
    pred = batch.tokens.copy()
    pred[0, 4] = -1  # row 0: one of three output tokens wrong
    s = task.score(pred, batch)
    assert s.token_accuracy == pytest.approx(5 / 6) and s.exact_match == 0.5
    lego = P.get("lego")
    b = lego.sample(np.random.default_rng(1), 50, 29)
    s = lego.score(b.tokens, b)
    assert set(s.by_skill) == set(range(5)) and all(
        v["token_accuracy"] == 1.0 for v in s.by_skill.values()
    )


# ----------------------------------------------------------------------------- mixtures
def test_mixture_offsets_counts_and_weights():
    mix = P.mixture({"dyck": 1, "sort": 1, "eca": 2}, dyck={"k": 4})
    assert mix.offsets == {"dyck": 0, "sort": 9, "eca": 111}
    assert mix.vocab_size == 9 + 102 + 3
    batch = mix.sample(np.random.default_rng(0), 100, 40)
    counts = np.bincount(batch.skill, minlength=3)
    assert counts.tolist() == [25, 25, 50]
    assert (batch.extra["source_skill"] == -1).all()
    for i, lo, hi in [(0, 0, 9), (1, 9, 111), (2, 111, 114)]:
        toks = batch.tokens[batch.skill == i]
        assert toks.min() >= lo and toks.max() < hi
    mix.set_weights({"eca": 1})
    assert (mix.sample(np.random.default_rng(0), 10, 40).skill == 2).all()
    mix.set_weights([0.5, 0.5, 0.0])
    assert set(mix.sample(np.random.default_rng(0), 10, 40).skill.tolist()) == {0, 1}
    a = mix.sample(np.random.default_rng(5), 10, 40)
    b = mix.sample(np.random.default_rng(5), 10, 40)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.skill, b.skill)
    assert a.text(0).startswith("[")
    assert set(mix.get_params()["weights"]) == {"dyck", "sort", "eca"}


def test_mixture_errors_and_skills():
    with pytest.raises(TaskError, match="weights"):
        P.mixture({"dyck": -1, "sort": 1})
    with pytest.raises(TaskError, match="unknown task"):
        P.mixture({"dyck": 1, "nope": 1})
    with pytest.raises(TaskError, match="k"):
        P.mixture({"dyck": 1}, dyck={"k": 0})
    with pytest.raises(TaskError, match="not in the mixture"):
        P.mixture({"dyck": 1}, sort={})
    mix = P.mixture({"dyck": 1, "sort": 1})
    with pytest.raises(TaskError, match="unknown components"):
        mix.set_weights({"lego": 1})
    with pytest.raises(TaskError, match="even"):
        mix.sample(np.random.default_rng(0), 4, 41)  # dyck needs an even length
    lego_mix = P.mixture({"lego": 1, "haystack": 1})
    b = lego_mix.sample(np.random.default_rng(0), 40, 63)
    src = b.extra["source_skill"]
    assert ((src >= 0) == (b.skill == 0)).all()


def test_skill_weights_change_between_batches():
    task = P.get("lego", skill_weights=[1, 1, 1, 3, 5])  # Skill-It's natural mix
    b = task.sample(np.random.default_rng(0), 110, 29)
    assert np.bincount(b.skill, minlength=5).tolist() == [10, 10, 10, 30, 50]
    task.set_weights([0, 0, 0, 0, 1])
    assert (task.sample(np.random.default_rng(0), 8, 29).skill == 4).all()
    add = P.get("addition", skill_weights=[0, 1, 0])
    assert (add.sample(np.random.default_rng(0), 8, 11).skill == 1).all()


# ----------------------------------------------------------------------------- distributions
def py_dyck_depths(rng, length, p_open, max_depth=None):
    """Plain-Python rule: open at depth 0; else open w.p. p_open if depth < max_depth and
    depth + 1 < remaining; else close. Returns the depth before every token."""
    depth, out = 0, []
    for t in range(length):
        out.append(depth)
        remaining = length - t
        room = depth + 1 < remaining and (max_depth is None or depth < max_depth)
        if depth == 0 or (room and rng.random() < p_open):
            depth += 1
        else:
            depth -= 1
    return out


def depth_before(tokens, k):
    steps = np.where(tokens < k, 1, -1)
    return np.cumsum(steps, axis=1) - steps


def close_enough(x, y):
    """Means of two samples agree within 4.5 standard errors."""
    se = np.sqrt(x.var() / len(x) + y.var() / len(y))
    return abs(x.mean() - y.mean()) <= 4.5 * se + 1e-12


@pytest.mark.parametrize("p_open,max_depth", [(0.49, None), (0.3, None), (0.6, 3), (0.49, 15)])
def test_dyck_depth_law_matches_reference(p_open, max_depth):
    length, n = 32, 3000
    task = P.get("dyck", k=2, p_open=p_open, max_depth=max_depth)
    ours = depth_before(task.sample(np.random.default_rng(1), n, length).tokens, 2)
    r = random.Random(2)
    ref = np.array([py_dyck_depths(r, length, p_open, max_depth) for _ in range(n)])
    for t in (3, 8, 16, 24):
        assert close_enough(ours[:, t].astype(float), ref[:, t].astype(float)), t
    assert close_enough((ours == 0).mean(axis=1), (ref == 0).mean(axis=1))


def test_dyck_depth_grows_with_p_open():
    means = []
    for p in (0.2, 0.4, 0.5, 0.7):
        toks = P.get("dyck", k=3, p_open=p).sample(np.random.default_rng(0), 300, 256).tokens
        means.append(depth_before(toks, 3).mean())
    assert np.all(np.diff(means) > 0)


def py_shuffle_majority_rate(rng, n, length, k, p_open, max_depth):
    """Reference rule; returns how often a close with two types open (different counts)
    picks the type with more open brackets (1/2 when choosing uniformly over types)."""
    hits = total = 0
    for _ in range(n):
        counts = [0] * k
        for t in range(length):
            d = sum(counts)
            room = d < max_depth and d + 1 < length - t
            if d == 0 or (room and rng.random() < p_open):
                counts[rng.randrange(k)] += 1
            else:
                open_types = [i for i in range(k) if counts[i] > 0]
                c = rng.choice(open_types)
                if len(open_types) == 2 and counts[0] != counts[1]:
                    total += 1
                    hits += counts[c] == max(counts)
                counts[c] -= 1
    return hits / total


def test_shuffle_dyck_closes_uniformly_over_open_types():
    k, length, n = 2, 40, 1500
    toks = P.get("shuffle_dyck", k=k, p_open=0.6, max_depth=6).sample(
        np.random.default_rng(0), n, length
    ).tokens
    hits = total = 0
    for row in toks.tolist():
        counts = [0, 0]
        for t in row:
            if t < k:
                counts[t] += 1
            else:
                if counts[0] > 0 and counts[1] > 0 and counts[0] != counts[1]:
                    total += 1
                    hits += counts[t - k] == max(counts)
                counts[t - k] -= 1
    ours = hits / total
    ref = py_shuffle_majority_rate(random.Random(0), n, length, k, 0.6, 6)
    se = np.sqrt(0.25 / total) * np.sqrt(2)
    assert abs(ours - ref) < 4.5 * se
    assert abs(ours - 0.5) < 4.5 * np.sqrt(0.25 / total)


def test_stack_final_size_matches_reference():
    n_ops, n = 30, 2000
    task = P.get("stack", vocab=8, n=n_ops)
    ours = task.sample(np.random.default_rng(0), n, 2 * n_ops + 1).loss_mask.sum(axis=1)
    r = random.Random(0)
    ref = []
    for _ in range(n):
        size = 0
        for s in range(n_ops):
            if s == n_ops - 1:
                push = size <= 1
            else:
                q = 0.75 if s < int(n_ops * 2 / 3) else 0.25
                push = size <= 1 or r.random() < q
            push = push and size < 7
            size += 1 if push else -1
        ref.append(size)
    assert close_enough(ours.astype(float), np.array(ref, dtype=float))


def test_sequence_output_lengths():
    b = P.get("set", vocab=5, n=20).sample(np.random.default_rng(0), 500, 41)
    inputs = b.tokens[:, :20]
    distinct = np.array([len(set(r)) for r in inputs.tolist()])
    assert np.array_equal(b.loss_mask.sum(axis=1), distinct)
    # expected number of distinct values among 20 uniform draws from 4: 4 (1 - (3/4)^20)
    assert abs(distinct.mean() - 4 * (1 - 0.75**20)) < 0.02


def test_stack_pushes_are_uniform_over_free_tokens():
    # vocab 4: tokens 1, 2, 3. The first two operations always push (depth <= 1): the first
    # token is uniform over 3 tokens, the second uniform over the 2 not on the stack, so
    # each ordered pair (x, y), x != y, has probability 1/6; a pair with x == y never occurs.
    n = 6000
    toks = P.get("stack", vocab=4, n=6).sample(np.random.default_rng(3), n, 13).tokens
    first, second = toks[:, 0], toks[:, 1]
    assert np.all(first != second) and np.all((first >= 1) & (first <= 3))
    freq = np.bincount((first - 1) * 3 + (second - 1), minlength=9) / n
    expected = np.array([0, 1, 1, 1, 0, 1, 1, 1, 0]) / 6
    se = np.sqrt(1 / 6 * 5 / 6 / n)
    assert np.all(np.abs(freq - expected) <= 4.5 * se)


def test_first_occurrences_table_and_sort_paths_agree():
    # top = 10**6 makes the (row, value) table too large, so the sort path is taken
    x = np.random.default_rng(0).integers(0, 7, size=(40, 25))
    table_out, table_counts = first_occurrences(x, pad=-1, top=7)
    sort_out, sort_counts = first_occurrences(x, pad=-1, top=10**6)
    assert np.array_equal(table_out, sort_out) and np.array_equal(table_counts, sort_counts)
    for row, out, c in zip(x.tolist(), table_out.tolist(), table_counts.tolist()):
        distinct = list(dict.fromkeys(row))
        assert c == len(distinct) and out == distinct + [-1] * (25 - len(distinct))


@pytest.mark.parametrize("max_depth,force_end", [(3, True), (5, False), (200, True)])
def test_capped_walk_blocks_match_single_steps(max_depth, force_end):
    # the 8-step block tables must equal 8 single steps of the rule, for every start depth
    # and coin pattern; and the walk obeys the rule (depth in 0..max_depth, ends at 0)
    from mixopt.procedural.dyck import _block_tables, capped_walk

    m = 6
    after, pattern = _block_tables(m, 8)
    for code in range(256):
        for d0 in range(m + 1):
            d, bits = d0, 0
            for i in range(8):
                up = d == 0 or ((code >> i) & 1 and d < m)
                bits |= up << i
                d += 1 if up else -1
            assert after[d0 + (m + 1) * code] == d and pattern[d0 + (m + 1) * code] == bits
    opens = capped_walk(np.random.default_rng(0), 300, 100, 0.6, max_depth, force_end)
    depth = np.cumsum(2 * opens - 1, axis=0)
    assert depth.min() >= 0 and depth.max() <= max_depth
    if force_end:
        assert np.all(depth[-1] == 0)
