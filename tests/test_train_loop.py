"""train_steps' learning-rate schedule: warm-up + cosine by hand, resume, callables, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixopt.errors import MixoptError  # noqa: E402
from mixopt.train import TinyGPT, lr_factor, make_optimizer, train_steps  # noqa: E402


def batches(seed: int = 0):
    rng = np.random.default_rng(seed)
    while True:
        tokens = rng.integers(0, 8, size=(4, 6))
        yield {"tokens": tokens, "loss_mask": np.ones_like(tokens, dtype=bool)}


def model():
    return TinyGPT(8, context=6, n_layers=1, n_heads=1, d_model=8, seed=0)


def test_lr_factor_by_hand():
    # warm-up 10 of 110: step 4 -> 5/10; step 10 starts the cosine at 1; step 60 is halfway,
    # cos(pi/2) -> 0.5; step 35 is a quarter: (1 + cos(pi/4)) / 2
    assert lr_factor(4, 110, 10) == pytest.approx(0.5)
    assert lr_factor(10, 110, 10) == pytest.approx(1.0)
    assert lr_factor(60, 110, 10) == pytest.approx(0.5)
    assert lr_factor(35, 110, 10) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert lr_factor(200, 110, 10) == pytest.approx(0.0)
    assert lr_factor(50, 110, 10, "constant") == 1.0
    with pytest.raises(MixoptError, match="non-negative"):
        lr_factor(5, 110, -1)
    with pytest.raises(MixoptError, match="schedule must be"):
        lr_factor(5, 110, 0, "linear")


def test_train_steps_applies_warmup_and_cosine_per_step():
    log = train_steps(model(), batches(), 20, lr=1e-2, warmup=4, schedule="cosine")
    expected = [1e-2 * lr_factor(s, 20, 4, "cosine") for s in range(20)]
    np.testing.assert_allclose(log["lr"], expected, rtol=1e-12)
    assert log["lr"].iloc[3] == pytest.approx(1e-2) and log["lr"].iloc[-1] < 1e-3


def test_resumed_schedule_continues_where_it_stopped():
    full = train_steps(model(), batches(), 12, lr=1e-2, warmup=2, schedule="cosine")
    net = model()
    opt = make_optimizer(net, 1e-2)
    it = batches()
    a = train_steps(net, it, 5, optimizer=opt, warmup=2, schedule="cosine", total_steps=12)
    b = train_steps(net, it, 7, optimizer=opt, warmup=2, schedule="cosine", total_steps=12,
                    start_step=5)
    np.testing.assert_allclose(np.r_[a["lr"], b["lr"]], full["lr"], rtol=1e-12)
    np.testing.assert_allclose(np.r_[a["loss"], b["loss"]], full["loss"], rtol=1e-5)


def test_callable_schedule_and_untouched_default():
    log = train_steps(model(), batches(), 4, lr=1e-2, schedule=lambda s: 0.5 ** s)
    np.testing.assert_allclose(log["lr"], [1e-2, 5e-3, 2.5e-3, 1.25e-3])
    net = model()
    opt = make_optimizer(net, 3e-3)
    log = train_steps(net, batches(), 3, optimizer=opt)  # constant, no warm-up: left alone
    assert (log["lr"] == 3e-3).all() and "initial_lr" not in opt.param_groups[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(schedule="linear"), "schedule"),
    (dict(warmup=-1), "warmup"),
    (dict(schedule=lambda s: float("nan")), "schedule gave"),
    (dict(total_steps=2.5), "total_steps must be"),
])
def test_bad_schedules_raise(kwargs, match):
    with pytest.raises(MixoptError, match=match):
        train_steps(model(), batches(), 3, lr=1e-2, **kwargs)


def test_log_counts_tokens_and_keeps_every_loss():
    log = train_steps(model(), batches(), 5, lr=1e-2, start_tokens=100)
    assert list(log.columns) == ["step", "loss", "tokens", "lr"]
    assert log["step"].tolist() == [1, 2, 3, 4, 5]
    assert log["tokens"].tolist() == [100 + 24 * k for k in range(1, 6)]  # 4 rows x 6 tokens
    assert np.isfinite(log["loss"]).all() and log["loss"].iloc[0] > 0
    assert len(train_steps(model(), batches(), 0)) == 0
    # a run shorter than its warm-up only warms up (smoke-sized runs do this)
    short = train_steps(model(), batches(), 3, lr=1e-2, warmup=10, schedule="cosine")
    np.testing.assert_allclose(short["lr"], [1e-3, 2e-3, 3e-3])


def _decay_only(net, decay: str, steps: int = 3, lr: float = 0.1, wd: float = 0.5):
    """``steps`` AdamW steps on a zero gradient: Adam's update is 0, so every parameter moves by
    decoupled decay alone, p <- (1 - lr * wd) p per step where it is decayed."""
    opt = make_optimizer(net, lr, wd, decay=decay)
    for _ in range(steps):
        opt.zero_grad()
        (0.0 * sum(p.sum() for p in net.parameters())).backward()
        opt.step()
    return opt


@pytest.mark.parametrize("decay", ["matrices", "all"])
def test_weight_decay_spares_norm_gains_and_biases_by_default(decay):
    net = model()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt = _decay_only(net, decay)
    shrink = (1 - 0.1 * 0.5) ** 3
    vectors = [k for k, v in before.items() if v.ndim < 2]
    assert any("ln" in k for k in vectors) and any(k.endswith("bias") for k in vectors)
    for k, v in net.named_parameters():
        decayed = decay == "all" or v.ndim >= 2
        expected = before[k] * (shrink if decayed else 1.0)
        torch.testing.assert_close(v.detach(), expected, rtol=1e-6, atol=0.0, msg=k)
    # the LayerNorm gains start at 1: kept at exactly 1 unless every parameter is decayed
    gain = dict(net.named_parameters())["ln_f.weight"].detach()
    assert torch.all(gain == 1.0) if decay == "matrices" else torch.all(gain < 1.0)
    assert [g["weight_decay"] for g in opt.param_groups] == ([0.5, 0.0] if decay == "matrices"
                                                            else [0.5])
    with pytest.raises(MixoptError, match="decay must be one of"):
        make_optimizer(net, 1e-3, 0.1, decay="norms")
