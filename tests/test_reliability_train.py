"""Validated persistence of the training adapter: sampler and controller state dicts.

A tampered state raises MixtureError naming the field and leaves the object as it was; a valid
one continues the stream exactly.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mixopt import online
from mixopt.errors import MixtureError

torch = pytest.importorskip("torch")
from mixopt.train import MixtureController, MixtureSampler  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from reliability_helpers import JSON, corrupt, time_limit  # noqa: E402


# ------------------------------------------------------------------------------ sampler
def _sampler_state():
    s = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    s.next_batch(17)
    s.set_weights([0.5, 0.0, 0.5])
    s.next_batch(6)
    return s.state_dict()


@pytest.mark.parametrize("field,value,message", [
    ("anchor_credits", [float("nan"), 0.0, 0.0], "anchor_credits[0]: expected a finite number"),
    ("anchor_credits", [None, 0.0, 0.0], "anchor_credits[0]: expected a finite number"),
    ("anchor_credits", [50.0, 0.0, -50.0], "expected within +-4"),
    ("anchor_credits", [0.3, 0.0, 0.3], "anchor_credits: expected credits summing to 0"),
    ("weights", [0.5, 0.5, 0.5], "weights: expected weights summing to 1"),
    ("weights", [0.5, 0.5], "weights: expected a list of length 3"),
    ("weights", [1.0, True, 0.0], "weights[1]: expected a finite number in [0, 1]"),
    ("since_anchor", -1, "since_anchor: expected an integer >= 0"),
    ("since_anchor", 7, "counts_since_anchor: expected counts summing to since_anchor=7"),
    ("position", 1.5, "position: expected an integer >= 0"),
    ("drawn", [1, 1, 1], "drawn: expected counts summing to position=23"),
    ("counts_since_anchor", [3, 0, "3"], "counts_since_anchor[2]: expected an integer"),
    ("version", 9, "version: expected an integer in [1, 1]"),
    ("sizes", [5, 7, 9], "sizes=[5, 7, 9]"),
])
def test_sampler_state_is_validated(field, value, message):
    state = _sampler_state()
    state[field] = value
    s = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    before = s.state_dict()
    with pytest.raises(MixtureError) as info:
        s.load_state_dict(state)
    assert message in str(info.value)
    assert s.state_dict() == before


def test_sampler_state_with_nan_credit_does_not_hang():
    """Issue 16, item 2: ``anchor_credits = [nan, 0, 0]`` loaded and next_batch never returned."""
    state = _sampler_state()
    state["anchor_credits"] = [float("nan"), 0.0, 0.0]
    s = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    with time_limit(10):
        with pytest.raises(MixtureError):
            s.load_state_dict(state)
        d, _ = s.next_batch(5)
    assert d.shape == (5,)


def test_valid_sampler_state_still_continues_the_stream():
    a = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    a.next_batch(17)
    a.set_weights([0.5, 0.0, 0.5])
    a.next_batch(6)
    b = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for x, y in zip(a.next_batch(40), b.next_batch(40)):
        assert np.array_equal(x, y)


# ------------------------------------------------------------------------------ controller
def _controller(rule=None):
    rule = rule or online.ODM(3, warmup_steps=0, update_interval=2)
    sampler = MixtureSampler([5, 7, None], rule.weights)
    losses = iter(np.random.default_rng(0).uniform(1, 3, size=(100, 3)))
    return MixtureController(rule, sampler, lambda: next(losses))


def test_controller_state_weights_must_agree_with_the_sampler():
    c = _controller()
    for step in range(1, 7):
        c.step(step)
    state = c.state_dict()
    bad = copy.deepcopy(state)
    bad["controller"]["weights"] = [1.0, 0.0, 0.0]
    fresh = _controller()
    before = fresh.state_dict()
    with pytest.raises(MixtureError, match="disagree with the sampler's weights"):
        fresh.load_state_dict(bad)
    assert fresh.state_dict() == before  # rule and sampler restored too
    fresh.load_state_dict(json.loads(json.dumps(state)))
    assert np.array_equal(fresh.weights, c.weights)
    assert fresh.next_update == c.next_update


@pytest.mark.parametrize("field,value,message", [
    ("next_update", -1, "controller.next_update: expected an integer >= 0"),
    ("next_update", 0, "controller.next_update: expected >= segment_start"),
    ("weights", [None, 0.5, 0.5], "controller.weights[0]: expected a finite number"),
    ("weights", [0.5, 0.5], "controller.weights: expected a list of length 3"),
    ("history", [{"step": "a"}], "controller.history[0]"),
])
def test_controller_state_fields(field, value, message):
    c = _controller()
    for step in range(1, 7):
        c.step(step)
    state = copy.deepcopy(c.state_dict())
    state["controller"][field] = value
    with pytest.raises(MixtureError) as info:
        _controller().load_state_dict(state)
    assert message in str(info.value)


def test_controller_exposes_doremi_loss_weights():
    ref = [2.0, 1.0, 3.0]
    rule = online.DoReMi(ref, mode="reweight", update_interval=1)
    c = _controller(rule)
    assert _controller().loss_weights is None  # ODM: no loss reweighting
    c.step(1)
    lw = c.loss_weights
    assert lw is not None and lw.dtype == np.float64
    assert np.array_equal(lw, rule.loss_weights)
    assert math.isclose(float(lw.sum()), 1.0)
    # sampling stays on the rule's sampling weights while the loss factors move
    assert np.array_equal(c.weights, rule.weights)


# ------------------------------------------------------------------------------ skip
def _random_pair(rng, trial):
    K = int(rng.integers(1, 6))
    ws = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 40)) if rng.random() < 0.7 else None for _ in range(K)]
    w0 = rng.dirichlet(np.ones(K))
    rank = int(rng.integers(ws))
    return (MixtureSampler(sizes, w0, seed=trial, rank=rank, world_size=ws),
            MixtureSampler(sizes, w0, seed=trial, rank=rank, world_size=ws))


def test_skip_leaves_exactly_the_state_of_next_batch():
    """skip(n) counts most draws in closed form; the state must equal next_batch(n)'s."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        a, b = _random_pair(rng, trial)
        for _ in range(3):
            w = rng.dirichlet(np.full(a.k, rng.choice([0.2, 1.0, 10.0])))
            if rng.random() < 0.3 and a.k > 1:
                w[rng.integers(a.k)] = 0.0
                w /= w.sum()
            a.set_weights(w)
            b.set_weights(w)
            n = int(rng.choice([0, 3, 700, 5000]))
            a.skip(n)
            b.next_batch(n)
            assert a.state_dict() == b.state_dict()
        x, y = a.next_batch(40), b.next_batch(40)
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])


def test_skip_of_a_trillion_draws_returns_and_tracks_the_weights():
    """Issue 16, item 10: skip(n) allocated per draw (1e9 draws timed out)."""
    s = MixtureSampler([3, 3, None], [0.2, 0.3, 0.5])
    with time_limit(10):
        s.skip(10**12)
    assert s.position == 10**12
    assert np.array_equal(s.counts, [2 * 10**11, 3 * 10**11, 5 * 10**11])
    assert np.abs(s.credits()).max() < 2.0  # |n_i - w_i t| < 1/2 + K w_i / 2
    with pytest.raises(MixtureError, match="exceeds"):
        s.next_batch(10**12)


# ------------------------------------------------------------------------------ properties
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
STATE = _sampler_state()
FIELDS = [(k,) for k in STATE] + [(k, i) for k, v in STATE.items() if isinstance(v, list)
                                   for i in range(len(v))]


@FAST
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_sampler_load_of_a_corrupted_state_refuses_or_keeps_streaming(field, value):
    state = corrupt(STATE, field, value)
    s = MixtureSampler([5, 7, None], [0.2, 0.3, 0.5], seed=4)
    with time_limit():
        try:
            s.load_state_dict(state)
        except MixtureError:
            pass
        d, idx = s.next_batch(8)
    assert d.shape == idx.shape == (8,)
    assert np.all((d >= 0) & (d < 3)) and np.all(idx >= 0)
    for i, size in enumerate([5, 7, None]):
        if size is not None:
            assert np.all(idx[d == i] < size)
    assert np.abs(s.credits()).max() <= s.k + 1


@FAST
@given(sizes=JSON | st.lists(st.integers(-1, 5) | st.none(), max_size=3), weights=JSON,
       seed=JSON | st.integers(-1, 3), n=JSON | st.integers(-1, 10))
def test_sampler_construction_and_draws(sizes, weights, seed, n):
    with time_limit():
        try:
            s = MixtureSampler(sizes, weights, seed=seed)
            d, idx = s.next_batch(n)
            s.skip(n)
        except MixtureError:
            return
    assert d.shape == idx.shape == (n,) and np.all(np.isfinite(s.weights))


def test_controller_refuses_losses_whose_keys_collide_as_strings():
    """Issue 16, item 10: labels colliding after str() (1 and "1") were accepted."""
    rule = online.ODM(["0", "1", "2"], warmup_steps=0, update_interval=1)
    c = MixtureController(rule, MixtureSampler([5, 7, None], rule.weights),
                          lambda: {0: 1.0, 1: 2.0, "1": 3.0, 2: 1.5})
    with pytest.raises(MixtureError, match="name the same skill"):
        c.step(1)
