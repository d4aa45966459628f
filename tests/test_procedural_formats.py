"""Independent checkers for every procedural format.

Each checker is plain Python over lists, written from the format description (not from the
generators), and checks the whole row: tokens, padding and the exact loss mask.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixopt.procedural as P
from mixopt.errors import MixoptError

N_ROWS = 2000


def rows(task, length, n=N_ROWS, seed=0):
    batch = task.sample(np.random.default_rng(seed), n, length)
    assert batch.tokens.shape == (n, length) and batch.tokens.dtype == np.int64
    assert batch.loss_mask.shape == (n, length) and batch.loss_mask.dtype == bool
    assert not batch.loss_mask[:, 0].any()
    assert batch.tokens.min() >= 0 and batch.tokens.max() < task.vocab_size
    skills = [None] * n if batch.skill is None else batch.skill.tolist()
    return list(zip(batch.tokens.tolist(), batch.loss_mask.tolist(), skills))


def scored(mask):
    return [t for t, m in enumerate(mask) if m]


# ----------------------------------------------------------------------------- sequences
def dedup(seq):
    seen, out = set(), []
    for s in seq:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def delete_first(seq, t):
    out = list(seq)
    if t in out:
        out.remove(t)  # list.remove drops the first occurrence
    return out


SEQ_RULES = {
    "identity": lambda x: list(x),
    "reverse": lambda x: list(reversed(x)),
    "sort": lambda x: sorted(x),
    "set": dedup,
}


@pytest.mark.parametrize("name", sorted(SEQ_RULES))
@pytest.mark.parametrize("vocab,length,n", [(100, 129, None), (5, 40, 7)])
def test_sequence_tasks(name, vocab, length, n):
    task = P.get(name, vocab=vocab, n=n)
    sep, pad = vocab, vocab + 1
    assert task.vocab_size == vocab + 2
    n_in = n if n is not None else (length - 1) // 2
    for toks, mask, _ in rows(task, length):
        x = toks[:n_in]
        assert all(1 <= v < vocab for v in x)
        assert toks[n_in] == sep
        out = SEQ_RULES[name](x)
        expect = x + [sep] + out + [pad] * (length - n_in - 1 - len(out))
        assert toks == expect
        assert scored(mask) == list(range(n_in + 1, n_in + 1 + len(out)))


@pytest.mark.parametrize("vocab,length,n", [(100, 130, None), (4, 30, 5)])
def test_union(vocab, length, n):
    task = P.get("union", vocab=vocab, n=n)
    sep, pad = vocab, vocab + 1
    h = n if n is not None else (length - 2) // 4
    for toks, mask, _ in rows(task, length):
        a, b = toks[:h], toks[h + 1: 2 * h + 1]
        assert toks[h] == sep and toks[2 * h + 1] == sep
        out = dedup(a + b)
        assert toks == a + [sep] + b + [sep] + out + [pad] * (length - 2 * h - 2 - len(out))
        assert scored(mask) == list(range(2 * h + 2, 2 * h + 2 + len(out)))


@pytest.mark.parametrize("vocab,length,n", [(100, 131, None), (3, 20, 6)])
def test_delete(vocab, length, n):
    task = P.get("delete", vocab=vocab, n=n)
    sep, pad = vocab, vocab + 1
    m = n if n is not None else (length - 3) // 2
    absent = 0
    for toks, mask, _ in rows(task, length):
        x, t = toks[:m], toks[m + 1]
        assert toks[m] == sep and toks[m + 2] == sep and 1 <= t < vocab
        out = delete_first(x, t)
        absent += len(out) == m
        assert toks == x + [sep, t, sep] + out + [pad] * (length - m - 3 - len(out))
        assert scored(mask) == list(range(m + 3, m + 3 + len(out)))
    assert absent > 0  # the deleted token is sometimes absent (then nothing is removed)


# ----------------------------------------------------------------------------- stack
@pytest.mark.parametrize("vocab,length,n", [(100, 129, None), (4, 41, 20)])
def test_stack(vocab, length, n):
    task = P.get("stack", vocab=vocab, n=n)
    sep, pad = vocab, vocab + 1
    n_ops = n if n is not None else (length - 1) // 2
    for toks, mask, _ in rows(task, length):
        stack = []
        for s, op in enumerate(toks[:n_ops]):
            if len(stack) <= 1 and len(stack) < vocab - 1:
                assert op != 0, "must push while the stack holds at most one token"
            if s == n_ops - 1 and len(stack) > 1:
                assert op == 0, "last operation pops"
            if op == 0:
                assert stack, "pop from an empty stack"
                stack.pop()
            else:
                assert 1 <= op < vocab and op not in stack
                stack.append(op)
        contents = stack[::-1]
        assert toks[n_ops] == sep
        assert toks[n_ops + 1:] == contents + [pad] * (length - n_ops - 1 - len(contents))
        assert scored(mask) == list(range(n_ops + 1, n_ops + 1 + len(contents)))


# ----------------------------------------------------------------------------- Dyck
def check_dyck_row(toks, k, max_depth=None):
    stack, deepest = [], 0
    for t in toks:
        if t < k:
            stack.append(t)
            deepest = max(deepest, len(stack))
        else:
            assert k <= t < 2 * k and stack and stack[-1] == t - k, "closer without opener"
            stack.pop()
    assert not stack, "unbalanced at the end"
    if max_depth is not None:
        assert deepest <= max_depth
    return deepest


@pytest.mark.parametrize(
    "k,p_open,max_depth,length",
    [(64, 0.49, None, 256), (1, 0.3, None, 40), (3, 0.7, None, 64), (2, 0.6, 3, 64),
     (5, 0.5, 1, 10), (2, 0.5, None, 2)],
)
def test_dyck(k, p_open, max_depth, length):
    task = P.get("dyck", k=k, p_open=p_open, max_depth=max_depth)
    assert task.vocab_size == 2 * k + 1
    for toks, mask, _ in rows(task, length, n=1000):
        check_dyck_row(toks, k, max_depth)
        assert scored(mask) == list(range(1, length))


def check_shuffle_row(toks, k, max_depth, balanced):
    counts = [0] * k
    for t in toks:
        if t < k:
            counts[t] += 1
            assert sum(counts) <= max_depth
        else:
            assert k <= t < 2 * k and counts[t - k] > 0, "closer of a type with nothing open"
            counts[t - k] -= 1
    if balanced:
        assert sum(counts) == 0


@pytest.mark.parametrize(
    "k,p_open,max_depth,balance,length",
    [(64, 0.5, 16, "close", 256), (2, 0.7, 4, "close", 64), (3, 0.6, 5, "truncate", 51),
     (1, 0.5, 16, "close", 30)],
)
def test_shuffle_dyck(k, p_open, max_depth, balance, length):
    task = P.get("shuffle_dyck", k=k, p_open=p_open, max_depth=max_depth, balance=balance)
    crossing = 0
    for toks, mask, _ in rows(task, length, n=1000):
        check_shuffle_row(toks, k, max_depth, balance == "close")
        assert scored(mask) == list(range(1, length))
        try:
            check_dyck_row(toks, k)
        except AssertionError:
            crossing += 1
    if k > 1:
        assert crossing > 0  # types do cross


# ----------------------------------------------------------------------------- ECA
def eca_next(cells, rule):
    w = len(cells)
    pattern_bits = {f"{i:03b}": (rule >> i) & 1 for i in range(8)}  # "lcr" -> new cell
    return [
        pattern_bits[f"{cells[(i - 1) % w]}{cells[i]}{cells[(i + 1) % w]}"] for i in range(w)
    ]


@pytest.mark.parametrize("rule,width,length", [(110, 16, 128), (30, 5, 40), (0, 3, 9), (255, 1, 7)])
def test_eca(rule, width, length):
    task = P.get("eca", rule=rule, width=width)
    for toks, mask, _ in rows(task, length, n=500):
        state = toks[:width]
        assert set(state) <= {0, 1}
        expect, cur, expect_mask = [], state, []
        s = 0
        while len(expect) < length:
            if s > 0:
                cur = eca_next(cur, rule)
            expect += cur + [2]
            expect_mask += [s > 0] * width + [False]
            s += 1
        assert toks == expect[:length]
        assert mask == expect_mask[:length]


# ----------------------------------------------------------------------------- LEGO
def parse_lego(toks, n, L):
    names = {L: "=", L + 1: "val", L + 2: "not", L + 3: 0, L + 4: 1, L + 5: ",", L + 6: "."}
    clauses = [toks[5 * i: 5 * i + 5] for i in range(n)]
    assigned = {}
    for i, (y, eq, op, x, end) in enumerate(clauses):
        assert y < L and names[eq] == "=" and names[op] in ("val", "not")
        assert names[end] == ("." if i == n - 1 else ",")
        assert y not in assigned
        assigned[y] = (names[op], x)
    values, depth = {}, {}
    while len(values) < n:  # resolve by repeated substitution
        progress = False
        for y, (op, x) in assigned.items():
            if y in values:
                continue
            if x >= L:  # a literal: the root
                assert op == "val"
                values[y], depth[y] = names[x], 0
                progress = True
            elif x in values:
                values[y] = values[x] if op == "val" else 1 - values[x]
                depth[y] = depth[x] + 1
                progress = True
        assert progress, "clauses do not resolve"
    return values, depth


@pytest.mark.parametrize("graph,n", [("chain", 5), ("tree", 7), ("chain", 1)])
def test_lego(graph, n):
    task = P.get("lego", n=n, graph=graph)
    L = 26
    length = 5 * n + 6
    counts = np.zeros(n)
    for toks, mask, skill in rows(task, length):
        values, depth = parse_lego(toks, n, L)
        q, eq, val, ans = toks[5 * n: 5 * n + 4]
        assert eq == L and val == L + 1 and ans in (L + 3, L + 4)
        assert ans - (L + 3) == values[q]
        # skill = index of the queried variable: chain position, or tree node of that depth
        expected_depth = skill if graph == "chain" else int(np.floor(np.log2(skill + 1)))
        assert depth[q] == expected_depth
        assert toks[5 * n + 4:] == [L + 7] * (length - 5 * n - 4)
        assert scored(mask) == [5 * n + 3]
        counts[skill] += 1
    assert np.all(np.abs(counts - N_ROWS / n) <= 1)  # systematic allocation


def test_lego_unshuffled_clauses_follow_the_variable_order():
    task = P.get("lego", n=5, shuffle=False)
    L = 26
    for toks, _mask, _skill in rows(task, 5 * 5 + 4):
        values, depth = parse_lego(toks, 5, L)
        # clause i defines the variable at chain depth i, and its parent is clause i - 1's
        assert [depth[toks[5 * i]] for i in range(5)] == [0, 1, 2, 3, 4]
        assert all(toks[5 * i + 3] == toks[5 * (i - 1)] for i in range(1, 5))
        assert toks[5 * 5 + 3] - (L + 3) == values[toks[5 * 5]]
    with pytest.raises(MixoptError, match="shuffle"):
        P.get("lego", shuffle="no")


# ----------------------------------------------------------------------------- arithmetic
def digits_of(tokens):
    return int("".join(str(t) for t in tokens))


@pytest.mark.parametrize("d", [3, 1, 6])
def test_skill_addition(d):
    task = P.get("addition", digits=d)
    length = 2 * d + 5
    for toks, mask, skill in rows(task, length):
        a, b = digits_of(toks[:d]), digits_of(toks[d + 1: 2 * d + 1])
        assert toks[d] == 10 and toks[2 * d + 1] == 12 and toks[2 * d + 3] == 11
        assert toks[2 * d + 2] == 14 + skill
        assert toks[2 * d + 4] == (a + b) // 10**skill % 10
        assert scored(mask) == [2 * d + 4]


def parse_diag(toks, op_token=10):
    i = toks.index(op_token)
    j = toks.index(11)
    e = toks.index(30)
    a, b, ans = toks[:i], toks[i + 1: j], toks[j + 1: e]
    assert all(0 <= t <= 9 for t in a + b) and all(20 <= t <= 29 for t in ans)
    assert all(t == 12 for t in toks[e + 1:])
    return a, b, [t - 20 for t in ans], j, e


@pytest.mark.parametrize(
    "name,d,min_d,op",
    [("addition_forward", 10, None, "+"), ("addition_reversed", 10, None, "+"),
     ("addition_forward", 5, 1, "+"), ("multiplication", 3, None, "*"),
     ("multiplication", 4, 2, "*"), ("multiplication", 12, 10, "*"),
     ("addition_reversed", 25, 20, "+")],  # the last two: digit-array path (beyond int64)
)
def test_diagnostic_arithmetic(name, d, min_d, op):
    task = P.get(name, digits=d, min_digits=min_d)
    reverse = name == "addition_reversed"
    length = 4 * d + 3 if op == "*" else 3 * d + 4
    lengths = set()
    for toks, mask, _ in rows(task, length):
        a, b, ans, j, e = parse_diag(toks)
        if reverse:
            a, b, ans = a[::-1], b[::-1], ans[::-1]
        for num in (a, b, ans):
            assert num[0] != 0 or len(num) == 1, "leading zero"
        for num in (a, b):
            assert (min_d or d) <= len(num) <= d
            lengths.add(len(num))
        x, y = digits_of(a), digits_of(b)
        assert digits_of(ans) == (x * y if op == "*" else x + y)
        assert scored(mask) == list(range(j + 1, e + 1))  # answer digits and EOS
    assert len(lengths) == d - (min_d or d) + 1


def test_multiplication_reversed():
    task = P.get("multiplication", digits=2, reverse=True)
    for toks, _, _ in rows(task, 11, n=500):
        a, b, ans, _, _ = parse_diag(toks)
        assert digits_of(ans[::-1]) == digits_of(a[::-1]) * digits_of(b[::-1])


# ----------------------------------------------------------------------------- haystack
@pytest.mark.parametrize("n_pairs,min_pairs,length,query", [
    (30, 1, 63, "marked"), (3, 3, 8, "marked"), (64, 60, 130, "marked"),
    (128, 100, 300, "repeat"), (5, 1, 12, "repeat")])
def test_haystack(n_pairs, min_pairs, length, query):
    task = P.get("haystack", n_pairs=n_pairs, min_pairs=min_pairs, query=query)
    shift = n_pairs if query == "marked" else 0
    sizes, asked = set(), set()
    for toks, mask, _ in rows(task, length, n=1000):
        table, pos = {}, 0
        # pairs until the query: a query token (marked) or the first repeated key (repeat)
        while not (toks[pos] >= 128 + n_pairs if query == "marked" else toks[pos] in table):
            k, v = toks[pos], toks[pos + 1]
            assert 128 <= k < 128 + n_pairs and 1 <= v <= 127
            table[k] = v
            pos += 2
        m = len(table)
        sizes.add(m)
        assert min_pairs <= m <= n_pairs
        key = toks[pos] - shift
        assert key in table  # the query names one of the row's keys
        asked.add(key)
        assert toks[pos + 1] == table[key]
        assert all(t == 0 for t in toks[pos + 2:])
        assert scored(mask) == [pos + 1]
    assert min(sizes) == min_pairs and max(sizes) == n_pairs
    assert len(asked) == n_pairs  # every key gets queried


def test_haystack_matches_reference_layout():
    """The reference's condattendstream_30 layout: key j is token 128 + j and its query is
    128 + 30 + j (158 .. 187); a row's query token is its key's plus 30."""
    task = P.get("haystack")
    assert task.query_token(0) == 158 and task.query_token(29) == 187
    np.testing.assert_array_equal(task.query_token(np.array([1, 2])), [159, 160])
    assert P.get("haystack", query="repeat").query_token(5) == 133
    batch = task.sample(np.random.default_rng(1), 200, 63)
    pos = np.argmax(batch.loss_mask, axis=1) - 1  # the query sits just before the answer
    q = batch.tokens[np.arange(200), pos]
    assert ((q >= 158) & (q <= 187)).all()
    assert all(q[i] - 30 in batch.tokens[i, : pos[i]] for i in range(200))
    for bad in (30, -1, 2.5):
        with pytest.raises(MixoptError, match="key must be"):
            task.query_token(bad)
    strings = task.token_strings()
    assert len(strings) == 256 and strings[131] == "K3" and strings[158] == "Q0"


# ----------------------------------------------------------------------------- mixture rows
def test_mixture_rows_keep_their_format():
    mix = P.mixture({"dyck": 1, "sort": 1, "lego": 2}, dyck={"k": 3}, sort={"vocab": 10})
    batch = mix.sample(np.random.default_rng(3), 400, 40)
    for i in range(len(batch)):
        key, row = mix.split(batch, i)
        toks = row.tokens[0].tolist()
        if key == "dyck":
            check_dyck_row(toks, 3)
        elif key == "sort":
            assert toks[20:39] == sorted(toks[:19])
        else:
            values, _ = parse_lego(toks, 5, 26)
            assert toks[28] - 29 == values[toks[25]]
