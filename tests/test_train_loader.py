"""MixtureLoader: consumption-exact state with workers, lookahead, persistent workers; elastic."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from mixopt.errors import MixtureError  # noqa: E402
from mixopt.online import Schedule  # noqa: E402
from mixopt.train import MixtureController, MixtureDataset, MixtureSampler  # noqa: E402

# weights set after steps 3, 6, 9, ... (cycling): every prefetched batch around them is stale
HISTORY = [[0.3, 0.3, 0.4], [0.9, 0.05, 0.05], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


def sources():
    return [[{"x": 100 + i} for i in range(12)], [{"x": 200 + i} for i in range(20)],
            [{"x": 300 + i} for i in range(7)]]


def pairs(batch):
    return list(zip(batch["domain"].tolist(), batch["index"].tolist()))


def reference(steps=20, every=3):
    """Plain in-process loop: batch s+1 is drawn after the weights set at step s."""
    ds = MixtureDataset(sources(), HISTORY[0], seed=3, batch_size=4)
    it, out = iter(ds), []
    for step in range(1, steps + 1):
        out.append(pairs(next(it)))
        if step % every == 0:
            ds.set_weights(HISTORY[(step // every) % 4])
    return out, ds.state_dict()


def run_loader(num_workers, *, persistent=False, commit="next", steps=20, every=3, passes=2,
               lookahead=0):
    """Same weight history through ds.loader(); `lookahead` batches are fetched before use (as
    Lightning/accelerate do); the loop restarts the loader `passes` times."""
    ds = MixtureDataset(sources(), HISTORY[0], seed=3, batch_size=4)
    ld = ds.loader(num_workers=num_workers, persistent_workers=persistent, commit=commit)
    out, step, per_pass = [], 0, steps // passes
    for _ in range(passes):
        it, queue = iter(ld), []
        for _ in range(per_pass):
            while len(queue) <= lookahead:
                queue.append(next(it))
            batch = queue.pop(0)
            if commit == "manual":
                batch = ds.consume(batch)
            assert "mixopt_block" not in batch
            out.append(pairs(batch))
            step += 1
            if step % every == 0:
                ds.set_weights(HISTORY[(step // every) % 4])
    return out, ds.state_dict(), ds


@pytest.mark.parametrize("workers, persistent", [(0, False), (2, False), (2, True)])
def test_loader_stream_and_state_equal_the_plain_loop(workers, persistent):
    ref, ref_state = reference()
    out, state, ds = run_loader(workers, persistent=persistent)
    assert out == ref
    assert state == ref_state  # the position of the 20 consumed batches, not of the prefetched
    if workers:
        assert ds.repaired > 0  # prefetched batches built under old weights were rebuilt


def test_manual_commit_is_exact_under_one_batch_lookahead():
    ref, ref_state = reference()
    out, state, _ = run_loader(2, commit="manual", lookahead=1, passes=1)
    assert out == ref and state == ref_state
    # the same lookahead with commit on hand-out is what frameworks did: one batch late
    late, late_state, _ = run_loader(0, commit="next", lookahead=1, passes=1)
    assert late != ref and late_state != ref_state


def test_checkpoint_and_resume_equal_the_uninterrupted_run():
    ref, _ = reference(steps=20)

    def leg(state, start, stop, workers):
        ds = MixtureDataset(sources(), HISTORY[0], seed=3, batch_size=4)
        if state is not None:
            ds.load_state_dict(json.loads(state))
        out = []
        step = start
        for batch in ds.loader(num_workers=workers):
            out.append(pairs(batch))
            step += 1
            if step % 3 == 0:
                ds.set_weights(HISTORY[(step // 3) % 4])
            if step == stop:
                return out, json.dumps(ds.state_dict())

    first, ckpt = leg(None, 0, 8, 2)  # workers have prefetched past step 8 when it is saved
    second, _ = leg(ckpt, 8, 20, 0)
    assert first + second == ref


def test_controller_through_the_loader_reaches_workers():
    """A token schedule switches to domain 2 only after step 5: later batches hold nothing else."""
    ds = MixtureDataset(sources(), [0.5, 0.5, 0.0], seed=0, batch_size=4)
    rule = Schedule([(5, [0.5, 0.5, 0.0]), (None, [0.0, 0.0, 1.0])])
    ctl = MixtureController(rule, ds)
    seen = []
    for step, batch in enumerate(ds.loader(num_workers=2), start=1):
        seen.append(set(batch["domain"].tolist()))
        ctl.step(step)
        if step == 12:
            break
    assert all(2 not in s for s in seen[:5]) and all(s == {2} for s in seen[5:])
    assert ds.sampler.position == 48 and ds.sampler.counts.tolist()[2] == 28


def test_plain_dataloader_workers_on_a_live_dataset_are_refused():
    ds = MixtureDataset(sources(), HISTORY[0], batch_size=4)
    with pytest.raises(MixtureError, match=r"ds.loader\(num_workers=N"):
        next(iter(DataLoader(ds, batch_size=None, num_workers=1)))


def test_a_segment_replayed_by_persistent_workers_is_refused():
    seg = MixtureDataset(sources(), HISTORY[0], batch_size=4).take(4)
    dl = DataLoader(seg, batch_size=None, num_workers=1, persistent_workers=True)
    assert len(list(dl)) == 4
    with pytest.raises(MixtureError, match="one pass of the stream"):
        list(dl)


def test_misuse_raises():
    ds = MixtureDataset(sources(), HISTORY[0], batch_size=4)
    it = iter(ds.loader(commit="manual"))
    a, b = next(it), next(it)
    with pytest.raises(MixtureError, match="expected batch 0"):
        ds.consume(b)
    ds.consume(a)
    with pytest.raises(MixtureError, match="needs a batch from this dataset's loader"):
        ds.consume({"x": 1})
    with pytest.raises(MixtureError, match="handed out but not consumed"):
        for _ in range(20):
            next(it)
    with pytest.raises(MixtureError, match="persistent_workers=True needs num_workers"):
        ds.loader(persistent_workers=True)
    with pytest.raises(MixtureError, match="live MixtureDataset"):
        ds.take(3).loader()


# ----------------------------------------------------------------------------- elastic
@pytest.mark.parametrize("new_world", [1, 3])
def test_elastic_sampler_resume_keeps_the_global_stream(new_world):
    sizes, w = [20, 30, None], [0.2, 0.3, 0.5]
    full = MixtureSampler(sizes, w, seed=1)
    d, i = full.next_batch(40)
    full.set_weights([0.6, 0.2, 0.2])
    d2, i2 = full.next_batch(60)
    ranks = [MixtureSampler(sizes, w, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in ranks:
        s.next_batch(20)
        s.set_weights([0.6, 0.2, 0.2])
    state = json.loads(json.dumps(ranks[1].state_dict()))  # saved at world size 2
    new = [MixtureSampler(sizes, w, seed=1, rank=r, world_size=new_world)
           for r in range(new_world)]
    for r, s in enumerate(new):
        s.load_state_dict(state)
        dr, ir = s.next_batch(60 // new_world)
        np.testing.assert_array_equal(dr, d2[r::new_world])
        np.testing.assert_array_equal(ir, i2[r::new_world])
    np.testing.assert_array_equal(new[0].counts, full.counts)


def test_elastic_controller_and_dataset_resume_from_two_ranks_to_one():
    rule = Schedule([(4, HISTORY[1]), (None, HISTORY[2])])
    full = MixtureDataset(sources(), HISTORY[1], seed=5, batch_size=4)
    ctl = MixtureController(rule, full)
    it = iter(full)
    ref = []
    for step in range(1, 9):
        ref.append(pairs(next(it)))
        ctl.step(step)
    # two ranks of 2 items per batch for 4 steps = the first 4 global batches of 4
    parts = []
    for r in range(2):
        s = MixtureSampler(full.sampler.sizes, HISTORY[1], seed=5, rank=r, world_size=2)
        ds = MixtureDataset(sources(), s, seed=5, batch_size=2)
        c = MixtureController(Schedule([(4, HISTORY[1]), (None, HISTORY[2])]), ds)
        it_r = iter(ds)
        parts.append([pairs(next(it_r)) for _ in range(4)])
        for step in range(1, 5):
            c.step(step)
        saved = json.loads(json.dumps(c.state_dict()))
    merged = [[p for pair in zip(a, b) for p in pair] for a, b in zip(*parts)]
    assert merged == ref[:4]
    one = MixtureDataset(sources(), HISTORY[0], seed=5, batch_size=4)
    c1 = MixtureController(Schedule([(4, HISTORY[1]), (None, HISTORY[2])]), one)
    c1.load_state_dict(saved)
    it1 = iter(one)
    assert [pairs(next(it1)) for _ in range(4)] == ref[4:]
