"""MixtureController: updates, segments, schedules, resume, distributed (gloo), end to end."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixopt.errors import MixtureError  # noqa: E402
from mixopt.online import Aioli, Schedule, SkillIt, Static  # noqa: E402
from mixopt.train import (  # noqa: E402
    MixtureController,
    MixtureDataset,
    MixtureSampler,
    TinyGPT,
    train_steps,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest (and steadiest on a shared machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


A = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def count_losses(sampler: MixtureSampler, shift: float = 0.0):
    """Deterministic stand-in for held-out losses: fall with the draws of each domain."""
    return lambda: 1.0 / (1.0 + sampler.counts / 50.0) + shift


def test_skillit_update_matches_the_formula_and_reaches_the_sampler():
    s = MixtureSampler([50, 50, 50], [1 / 3] * 3)
    rule = SkillIt(A, eta=0.5, window=3)
    ctl = MixtureController(rule, s, count_losses(s), every=5)
    # the controller starts the sampler on Skill-It's p_1 proportional to exp(eta A 1)
    np.testing.assert_array_equal(s.weights, rule.weights)
    assert not ctl.step(4)
    for _ in range(5):
        s.next_batch(4)
    losses = 1.0 / (1.0 + s.counts / 50.0)
    assert ctl.step(5)
    z = 0.5 * A @ losses  # one evaluation in the window
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(s.weights, expected, rtol=1e-12)
    h = ctl.history
    assert list(h["step"]) == [0, 5]
    np.testing.assert_allclose(h.loc[1, ["loss[0]", "loss[1]", "loss[2]"]].to_numpy(float),
                               losses)
    assert ctl.next_update == 10


def test_aioli_probe_segments_run_through_the_controller():
    s = MixtureSampler([None, None], [0.5, 0.5])
    rule = Aioli(2, lp_rounds=1, lp_steps=2, update_every=10, seed=0)
    ctl = MixtureController(rule, s, count_losses(s))
    ctl.step(0)  # 0-step baseline: evaluated at once, the first probe starts
    assert ctl.history["segment"].tolist() == ["initial", "baseline"]
    np.testing.assert_array_equal(s.weights, rule.weights)
    assert rule.segment[0] == "probe" and ctl.next_update == 2
    probe_weights = []
    for step in range(1, 11):
        s.next_batch(4)
        ctl.step(step)
        probe_weights.append(s.weights)
    kinds = ctl.history["segment"].tolist()
    assert kinds == ["initial", "baseline", "probe", "probe", "exploit"]
    assert ctl.history["step"].tolist() == [0, 0, 2, 4, 10]
    assert sorted(probe_weights[0].round(3).tolist()) == [0.375, 0.625]


def test_schedule_switches_at_the_token_count():
    s = MixtureSampler([None, None], [0.5, 0.5])
    rule = Schedule.warmup("dyck", "text", warmup_tokens=1000, total_tokens=5000)
    ctl = MixtureController(rule, s, tokens_per_step=300)
    np.testing.assert_array_equal(s.weights, [1.0, 0.0])
    assert not ctl.step(3)  # 900 tokens: still warm-up
    assert ctl.step(4)  # 1200 tokens: natural data only
    np.testing.assert_array_equal(s.weights, [0.0, 1.0])
    assert ctl.history["step"].tolist() == [0, 4]


def _run(ctl_state=None, stop=None, total=40):
    """Draw 6 items per step for `total` steps with a Skill-It controller (every 7 steps)."""
    s = MixtureSampler([13, 17, None], [1 / 3] * 3, seed=4)
    rule = SkillIt(A, eta=2.0, window=2)
    ctl = MixtureController(rule, s, count_losses(s), every=7)
    start = 0
    if ctl_state is not None:
        ctl.load_state_dict(json.loads(ctl_state[0]))
        start = ctl_state[1]
    draws, weights = [], []
    for step in range(start + 1, total + 1):
        d, i = s.next_batch(6)
        draws.append(np.stack([d, i]).tolist())
        ctl.step(step)
        weights.append(s.weights.tolist())
        if step == stop:
            return json.dumps(ctl.state_dict()), step
    return draws, weights, ctl


def test_resume_of_controller_rule_and_sampler_is_bit_for_bit():
    draws, weights, ctl = _run()
    checkpoint = _run(stop=12)  # weights change at 14, 21, ... after the checkpoint
    d2, w2, ctl2 = _run(ctl_state=checkpoint)
    assert d2 == draws[12:] and w2 == weights[12:]
    assert ctl2.state_dict() == ctl.state_dict()
    assert len(ctl.history) == 1 + 40 // 7


def test_bad_controller_inputs_raise():
    s = MixtureSampler([3, 3], [0.5, 0.5])
    with pytest.raises(MixtureError, match="needs evaluate="):
        MixtureController(SkillIt(np.eye(2)), s, every=3)
    with pytest.raises(MixtureError, match="has no segment_steps; pass every="):
        MixtureController(SkillIt(np.eye(2)), s, lambda: [1.0, 1.0])
    with pytest.raises(MixtureError, match="every must be a positive integer"):
        MixtureController(Static([0.5, 0.5]), s, every=0)
    with pytest.raises(MixtureError, match="lacks .weights"):
        MixtureController(object(), s)
    three = MixtureDataset({"code": [1], "web": [2], "math": [3]}, [1 / 3] * 3)
    with pytest.raises(MixtureError, match=r"Static has 4 domains \(weights of length 4\) but the "
                                           r"MixtureDataset \(sources \['code', 'web', 'math'\]\) "
                                           "has 3"):
        MixtureController(Static([0.25] * 4), three)
    ctl = MixtureController(SkillIt(np.eye(2)), s, lambda: [1.0, 2.0, 3.0], every=1)
    with pytest.raises(MixtureError, match=r"returned shape \(3,\); expected \(2,\)"):
        ctl.step(1)
    ctl = MixtureController(SkillIt(np.eye(2)), s, lambda: {"0": 1.0}, every=1)
    with pytest.raises(MixtureError, match=r"no loss for skill\(s\) \['1'\]"):
        ctl.step(1)
    tok = MixtureController(Schedule([(10, [1.0, 0.0]), (None, [0.0, 1.0])], unit="tokens"), s)
    with pytest.raises(MixtureError, match="counts tokens"):
        tok.step(1)


# ----------------------------------------------------------------------------- distributed
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dist_worker(rank: int, port: int, path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        s = MixtureSampler([80, 60, None], [1 / 3] * 3, seed=9, rank=rank, world_size=2)
        # each rank evaluates its own shard: losses differ by rank, the controller averages
        ctl = MixtureController(SkillIt(A, eta=2.0), s, count_losses(s, shift=0.1 * rank),
                                every=3)
        draws, weights = [], []
        for step in range(1, 13):
            d, i = s.next_batch(5)
            draws.append(np.stack([d, i]).tolist())
            ctl.step(step)
            weights.append(s.weights.tolist())
        with open(f"{path}/rank{rank}.json", "w") as fh:
            json.dump({"draws": draws, "weights": weights}, fh)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_agree_on_weights_and_split_the_stream(tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    mp.spawn(_dist_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["weights"] == r1["weights"]  # bit-identical after every update
    # one process, world_size 1, mean losses (shift 0.05), 10 draws per step: same stream
    s = MixtureSampler([80, 60, None], [1 / 3] * 3, seed=9)
    ctl = MixtureController(SkillIt(A, eta=2.0), s, count_losses(s, shift=0.05), every=3)
    ideal = np.zeros(3)
    for step in range(1, 13):
        ideal += 10 * s.weights  # together the ranks follow the weights in force
        d, i = s.next_batch(10)
        both = np.stack([d, i])
        assert both[:, 0::2].tolist() == r0["draws"][step - 1]
        assert both[:, 1::2].tolist() == r1["draws"][step - 1]
        ctl.step(step)
        np.testing.assert_allclose(s.weights, r0["weights"][step - 1], rtol=1e-12)
    pairs = [tuple(p) for r in (r0, r1) for st in r["draws"] for p in zip(*st)]
    finite = [p for p in pairs if p[0] == 0]  # domain 0: 80 items, fewer draws -> one epoch
    assert len(finite) == len(set(finite)) and len(finite) <= 80
    counts = np.bincount([p[0] for p in pairs], minlength=3)
    assert np.all(np.abs(counts - ideal) < (3 + 1) / 2)  # credit bound (sampler docstring)
    assert len(r0["weights"]) == 12 and r0["weights"][0] != r0["weights"][-1]


# ----------------------------------------------------------------------------- end to end
class ShiftTask:
    """Two-skill stand-in: the next token is (previous + skill + 1) mod 8 (skill 1 is harder)."""

    vocab_size = 8

    def __init__(self, skill: int) -> None:
        self.skill = skill

    def sample(self, rng, batch_size, length):
        start = rng.integers(0, 8, size=(batch_size, 1))
        tokens = (start + (self.skill + 1) * np.arange(length)) % 8

        class B:
            pass

        b = B()
        b.tokens = tokens.astype(np.int64)
        b.loss_mask = np.ones_like(b.tokens, dtype=bool)
        b.loss_mask[:, 0] = False
        b.skill = None
        return b


def test_tiny_end_to_end_loss_falls_and_weights_move():
    tasks = [ShiftTask(0), ShiftTask(1)]
    ds = MixtureDataset(tasks, [0.5, 0.5], seed=0, length=12, batch_size=16)
    model = TinyGPT(8, context=12, n_layers=1, n_heads=2, d_model=16, seed=0)
    held = [[t.sample(np.random.default_rng([99, i]), 32, 12)] for i, t in enumerate(tasks)]
    from mixopt.train import Evaluator

    rule = SkillIt(np.eye(2), eta=3.0, window=1)
    ctl = MixtureController(rule, ds, Evaluator(model, held), every=10)
    log = train_steps(model, iter(ds), 60, lr=1e-2, controller=ctl)
    assert log["loss"].iloc[-10:].mean() < 0.6 * log["loss"].iloc[:5].mean()
    h = ctl.history
    assert len(h) == 7 and not np.allclose(h["weight[0]"], 0.5)
    np.testing.assert_array_equal(ds.weights, rule.weights)
