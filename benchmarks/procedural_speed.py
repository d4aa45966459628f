"""Tokens per second of every mixopt.procedural task against a plain per-sample generator.

For each task, mixopt samples batches of 512 rows and a straightforward pure-Python generator
of the same format (``random.Random``, lists, one row at a time, the way the papers' code
writes them) makes 512 rows; each side is timed as the best of at least ``--repeats`` runs
(more while under ``--budget`` CPU seconds per side and task, at most 200), so both figures
are best-of-N under the same rule. Both outputs go through the
same plain-Python validity checker, and the mean number of scored tokens per row is compared
(the two use different random streams, so rows differ; the means must agree within 4.5
standard errors).
Times are CPU time of this process (``time.process_time``), so other jobs on a shared
machine do not distort the ratio; numpy runs single-threaded here.
Targets: >= 10x the reference for the sequence tasks, >= 3x for the Dyck languages,
>= 10 M tokens/s for every task on one core.

    .venv/bin/python benchmarks/procedural_speed.py [--batch 512] [--repeats 5] [--budget 0.5]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

import mixopt.procedural as P

V = 100  # content vocabulary of the sequence tasks
SEP, PAD = V, V + 1


# ----------------------------------------------------------------------------- references
def pad_row(seq, start, out, length, pad):
    row = seq + out + [pad] * (length - len(seq) - len(out))
    mask = [False] * len(seq) + [True] * len(out) + [False] * (length - len(seq) - len(out))
    return row[:length], mask[:length]


def ref_sequence(fn, n_extra=1):
    def gen(r, length):
        n = (length - n_extra) // 2
        x = [r.randint(1, V - 1) for _ in range(n)]
        return pad_row(x + [SEP], 0, fn(x), length, PAD)
    return gen


def _dedup(x):
    seen, out = set(), []
    for v in x:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def ref_union(r, length):
    h = (length - 2) // 4
    a = [r.randint(1, V - 1) for _ in range(h)]
    b = [r.randint(1, V - 1) for _ in range(h)]
    return pad_row(a + [SEP] + b + [SEP], 0, _dedup(a + b), length, PAD)


def ref_delete(r, length):
    n = (length - 3) // 2
    x = [r.randint(1, V - 1) for _ in range(n)]
    t = r.randint(1, V - 1)
    out = list(x)
    if t in out:
        out.remove(t)
    return pad_row(x + [SEP, t, SEP], 0, out, length, PAD)


def ref_stack(r, length):
    n = (length - 1) // 2
    stack, ops = [], []
    for s in range(n):
        if s == n - 1:
            push = len(stack) <= 1
        else:
            q = 0.75 if s < int(n * 2 / 3) else 0.25
            push = len(stack) <= 1 or r.random() < q
        push = push and len(stack) < V - 1
        if push:
            tok = r.randint(1, V - 1)
            while tok in stack:
                tok = r.randint(1, V - 1)
            stack.append(tok)
            ops.append(tok)
        else:
            stack.pop()
            ops.append(0)
    return pad_row(ops + [SEP], 0, stack[::-1], length, PAD)


def ref_dyck(r, length, k=64, p_open=0.49):
    seq, stack = [], []
    for t in range(length):
        remaining = length - t
        if not stack or (len(stack) + 1 < remaining and r.random() < p_open):
            b = r.randrange(k)
            stack.append(b)
            seq.append(b)
        else:
            seq.append(stack.pop() + k)
    return seq, [False] + [True] * (length - 1)


def ref_shuffle(r, length, k=64, p_open=0.5, max_depth=16):
    seq, counts = [], [0] * k
    for t in range(length):
        d = sum(counts)
        if d == 0 or (d < max_depth and d + 1 < length - t and r.random() < p_open):
            b = r.randrange(k)
            counts[b] += 1
            seq.append(b)
        else:
            b = r.choice([i for i in range(k) if counts[i] > 0])
            counts[b] -= 1
            seq.append(b + k)
    return seq, [False] + [True] * (length - 1)


def ref_eca(r, length, width=16, rule=110):
    state = [r.randint(0, 1) for _ in range(width)]
    row, mask, first = [], [], True
    while len(row) < length:
        row += state + [2]
        mask += [not first] * width + [False]
        first = False
        state = [
            (rule >> (4 * state[i - 1] + 2 * state[i] + state[(i + 1) % width])) & 1
            for i in range(width)
        ]
    return row[:length], mask[:length]


def ref_lego(r, length, n=5, L=26):
    letters = r.sample(range(L), n)
    vals = [r.randint(0, 1)]
    clauses = [[letters[0], L, L + 1, L + 3 + vals[0], L + 5]]
    for i in range(1, n):
        neg = r.random() < 0.5
        vals.append(vals[i - 1] ^ neg)
        clauses.append([letters[i], L, L + 2 if neg else L + 1, letters[i - 1], L + 5])
    r.shuffle(clauses)
    row = [t for c in clauses for t in c]
    row[-1] = L + 6
    q = r.randrange(n)
    row += [letters[q], L, L + 1]
    return pad_row(row, 0, [L + 3 + vals[q]], length, L + 7)


def ref_skill_addition(r, length, d=3):
    a, b, i = r.randrange(10**d), r.randrange(10**d), r.randrange(d)
    digits = [int(c) for c in f"{a:0{d}d}"] + [10] + [int(c) for c in f"{b:0{d}d}"]
    return pad_row(digits + [12, 14 + i, 11], 0, [(a + b) // 10**i % 10], length, 13)


def ref_diag(op, reverse, d):
    def gen(r, length):
        def draw():
            o = r.randint(d, d)
            return r.randint(10 ** (o - 1), 10**o - 1)
        a, b = draw(), draw()
        c = a * b if op == "*" else a + b
        sa, sb, sc = str(a), str(b), str(c)
        if reverse:
            sa, sb, sc = sa[::-1], sb[::-1], sc[::-1]
        head = [int(x) for x in sa] + [10] + [int(x) for x in sb] + [11]
        return pad_row(head, 0, [int(x) + 20 for x in sc] + [30], length, 12)
    return gen


def ref_haystack(r, length, max_pairs=30):
    m = r.randint(1, max_pairs)
    keys = r.sample(range(max_pairs), m)
    vals = [r.randint(1, 127) for _ in range(m)]
    row = [t for k, v in zip(keys, vals) for t in (k + 128, v)]
    q = r.randrange(m)
    return pad_row(row + [keys[q] + 128 + max_pairs], 0, [vals[q]], length, 0)


# ----------------------------------------------------------------------------- checkers
def check_dyck(row, k=64):
    st = []
    for t in row:
        if t < k:
            st.append(t)
        elif not st or st.pop() != t - k:
            return False
    return not st


def check_shuffle(row, k=64, max_depth=16):
    c = [0] * k
    for t in row:
        if t < k:
            c[t] += 1
            if sum(c) > max_depth:
                return False
        else:
            if c[t - k] == 0:
                return False
            c[t - k] -= 1
    return sum(c) == 0


def scored_tokens(row, mask):
    return [t for t, m in zip(row, mask) if m]


def check_seq(fn, n_extra=1):
    def check(row, mask):
        n = (len(row) - n_extra) // 2
        return row[n] == SEP and scored_tokens(row, mask) == fn(row[:n])
    return check


def check_union(row, mask):
    h = (len(row) - 2) // 4
    return scored_tokens(row, mask) == _dedup(row[:h] + row[h + 1: 2 * h + 1])


def check_delete(row, mask):
    n = (len(row) - 3) // 2
    out = list(row[:n])
    if row[n + 1] in out:
        out.remove(row[n + 1])
    return scored_tokens(row, mask) == out


def check_stack(row, mask):
    n = (len(row) - 1) // 2
    st = []
    for op in row[:n]:
        if op == 0:
            if not st:
                return False
            st.pop()
        else:
            if op in st:
                return False
            st.append(op)
    return scored_tokens(row, mask) == st[::-1]


def check_eca(row, mask, width=16, rule=110):
    state = row[:width]
    for s in range(1, len(row) // (width + 1) + 1):
        state = [
            (rule >> (4 * state[i - 1] + 2 * state[i] + state[(i + 1) % width])) & 1
            for i in range(width)
        ]
        got = row[s * (width + 1): s * (width + 1) + width]
        if got != state[: len(got)]:
            return False
    return True


def check_lego(row, mask, n=5, L=26):
    assign = {row[5 * i]: (row[5 * i + 2], row[5 * i + 3]) for i in range(n)}
    vals = {}
    while len(vals) < n:
        for y, (op, x) in assign.items():
            if y not in vals and (x >= L or x in vals):
                vals[y] = (x - L - 3) if x >= L else (vals[x] ^ (op == L + 2))
    return scored_tokens(row, mask) == [L + 3 + vals[row[5 * n]]]


def check_skill_addition(row, mask, d=3):
    a = int("".join(map(str, row[:d])))
    b = int("".join(map(str, row[d + 1: 2 * d + 1])))
    i = row[2 * d + 2] - 14
    return scored_tokens(row, mask) == [(a + b) // 10**i % 10]


def check_diag(op, reverse):
    def check(row, mask):
        i, j = row.index(10), row.index(11)
        sa = "".join(map(str, row[:i]))
        sb = "".join(map(str, row[i + 1: j]))
        if reverse:
            sa, sb = sa[::-1], sb[::-1]
        c = int(sa) * int(sb) if op == "*" else int(sa) + int(sb)
        sc = str(c)[::-1] if reverse else str(c)
        return scored_tokens(row, mask) == [int(x) + 20 for x in sc] + [30]
    return check


def check_haystack(row, mask, n_pairs=30):
    table, pos = {}, 0
    while row[pos] < 128 + n_pairs:  # query tokens are 128 + n_pairs + key
        table[row[pos]] = row[pos + 1]
        pos += 2
    return scored_tokens(row, mask) == [table[row[pos] - n_pairs]]


# ----------------------------------------------------------------------------- table
SEQ = {
    "identity": lambda x: list(x),
    "reverse": lambda x: x[::-1],
    "sort": sorted,
    "set": _dedup,
}

CASES = [  # name, options, length, reference generator, checker, target ratio
    *[(n, {}, 129, ref_sequence(f), lambda r, m, f=f: check_seq(f)(r, m), 10.0)
      for n, f in SEQ.items()],
    ("union", {}, 130, ref_union, check_union, 10.0),
    ("delete", {}, 131, ref_delete, check_delete, 10.0),
    ("stack", {}, 129, ref_stack, check_stack, 10.0),
    ("dyck", {}, 2048, ref_dyck, lambda r, m: check_dyck(r), 3.0),
    ("shuffle_dyck", {}, 2048, ref_shuffle, lambda r, m: check_shuffle(r), 3.0),
    ("eca", {}, 128, ref_eca, check_eca, None),
    ("lego", {}, 32, ref_lego, check_lego, None),
    ("addition", {}, 16, ref_skill_addition, check_skill_addition, None),
    ("addition_forward", {}, 34, ref_diag("+", False, 10), check_diag("+", False), None),
    ("addition_reversed", {}, 34, ref_diag("+", True, 10), check_diag("+", True), None),
    ("multiplication", {}, 15, ref_diag("*", False, 3), check_diag("*", False), None),
    ("haystack", {}, 63, ref_haystack, check_haystack, None),
]


def best_time(fn, min_runs: int, budget: float) -> tuple[float, object, int]:
    """Best CPU time of ``fn()`` over at least ``min_runs`` runs, more while the total stays
    under ``budget`` seconds (at most 200); returns (best, last result, runs)."""
    best, spent, runs, out = np.inf, 0.0, 0, None
    while runs < min_runs or (spent < budget and runs < 200):
        t0 = time.process_time()
        out = fn()
        dt = time.process_time() - t0
        best, spent, runs = min(best, dt), spent + dt, runs + 1
    return best, out, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.5,
                        help="CPU seconds per side and task for extra repeats")
    args = parser.parse_args(argv)
    b = args.batch
    rng = np.random.default_rng(0)
    r = random.Random(0)
    header = (f"{'task':18s} {'T':>5s} {'mixopt Mtok/s':>13s} {'ref Mtok/s':>10s} {'ratio':>7s} "
              f"{'target':>7s} {'met':>4s} {'valid':>11s} {'scored/row':>17s} agree")
    print(header)
    print("-" * len(header))
    all_ok = all_met = True
    for name, opts, length, ref, check, target in CASES:
        task = P.get(name, **opts)
        best, batch, _ = best_time(
            lambda task=task, length=length: task.sample(rng, b, length), args.repeats, args.budget
        )
        ours = b * length / best
        ref_time, ref_rows, _ = best_time(
            lambda ref=ref, length=length: [ref(r, length) for _ in range(b)],
            args.repeats, args.budget,
        )
        theirs = b * length / ref_time
        ours_rows = list(zip(batch.tokens.tolist(), batch.loss_mask.tolist()))
        ok_ours = sum(check(row, m) for row, m in ours_rows)
        ok_ref = sum(check(row, m) for row, m in ref_rows)
        n_ours = batch.loss_mask.sum(axis=1).astype(float)
        n_ref = np.array([sum(m) for _, m in ref_rows], dtype=float)
        s_ours, s_ref = n_ours.mean(), n_ref.mean()
        se = np.sqrt(n_ours.var() / b + n_ref.var() / b)
        agree = ok_ours == b and ok_ref == b and abs(s_ours - s_ref) <= 4.5 * se + 1e-9
        ratio = ours / theirs
        met = ours >= 1e7 and (target is None or ratio >= target)
        all_ok &= agree
        all_met &= met
        target_text = f"{target:.0f}x+10M" if target else "10M"
        print(f"{name:18s} {length:5d} {ours / 1e6:13.1f} {theirs / 1e6:10.2f} {ratio:7.1f} "
              f"{target_text:>7s} {'yes' if met else 'NO':>4s} {f'{ok_ours}/{ok_ref}':>11s} "
              f"{f'{s_ours:.1f} vs {s_ref:.1f}':>17s} {'yes' if agree else 'NO'}")
    print(f"\nall outputs valid and statistics agree: {all_ok}")
    print(f"all speed targets met: {all_met}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
