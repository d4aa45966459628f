"""Each online rule against an independent transcription of its public reference code's update.

Every ``ref_*`` function below is written for this file from reading the reference repository's
update (named in its docstring); it loops the way the reference loops, in plain numpy, and shares
no code with ``mixopt.online``. The tests feed both the same hand-built multi-round loss sequences
and compare the mixtures to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixopt.online as mo

TOL = 1e-12


def _close(got, ref) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=0, atol=TOL)


def _run(rule, seq) -> list[np.ndarray]:
    return [rule.weights] + [rule.update(L) for L in seq]


# ----------------------------------------------------------------------------- Skill-It
def ref_skillit(A, evals, eta, window, per_update=1, targets=None, prior=None,
                eta_schedule=False, normalize=False):
    """HazyResearch/skill-it ``trainer/mw_trainer.py`` (MWTrainer.train), as a loop over
    evaluations: the mixture after every evaluation (the first entry is the initial one)."""
    G = np.array(A, dtype=float)
    if targets is not None:
        G = G[:, targets]
    base = np.ones(G.shape[0]) if prior is None else np.array(prior, dtype=float)
    start = np.ones(len(targets)) if targets is not None else base
    weights = base * np.exp(eta * G.dot(start))
    out = [weights / weights.sum()]
    seen = []
    loss_0 = None
    for t, L in enumerate(evals):
        row = np.array(L, dtype=float)
        if targets is not None:
            row = row[targets]
        if t in (0, 1):  # counter == 0, then counter == ckpt_steps
            loss_0 = row
        seen.append(row)
        if (t + 1) % per_update == 0:  # end of a round of update_steps
            idx = len(seen)
            eta_t = eta / (seen[-1].sum() / loss_0.sum()) if eta_schedule else eta
            block = np.array(seen[max(0, idx - window): idx])
            arr = block.mean(axis=0) if targets is not None else block.sum(axis=0)
            if normalize:
                arr = arr / loss_0
            weights = base * np.exp(eta_t * G.dot(arr))
        out.append(weights / weights.sum())
    return out


LEGO_GRAPH = np.array([[1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0],
                       [0, 0, 0, 0, 1]], dtype=float)
LEGO_GRAPH[(LEGO_GRAPH == 1) & ~np.eye(5, dtype=bool)] = 0.5  # the code's off-diagonal 0.5


def _decreasing(n_evals, m, seed):
    """Loss curves that fall at per-skill rates, with noise: a hand-sized test sequence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_evals)[:, None]
    rate = rng.uniform(0.01, 0.08, m)
    return 0.4 + 2.0 * np.exp(-rate * t) + rng.uniform(0, 0.05, (n_evals, m))


def test_skillit_equal_losses_and_hand_values():
    # equal losses [1, 1] on eye(2): every mixture stays uniform, as in the reference
    seq = [[1.0, 1.0]] * 4
    got = _run(mo.SkillIt(np.eye(2), eta=0.5, window=3), seq)
    _close(got, ref_skillit(np.eye(2), seq, 0.5, 3))
    _close(got, [[0.5, 0.5]] * 5)


def test_skillit_lego_paper_cadence():
    # pretraining LEGO: 120 evaluations, 20 per update (every 50 of 1,000 steps), window 3
    seq = _decreasing(120, 5, 0)
    rule = mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3, evals_per_update=20)
    got = _run(rule, seq)
    _close(got, ref_skillit(LEGO_GRAPH, seq, 0.5, 3, per_update=20))
    # the mixture changes only at the 20th, 40th, ... evaluation
    changes = [t for t in range(1, 121) if not np.array_equal(got[t], got[t - 1])]
    assert changes == [20, 40, 60, 80, 100, 120]
    # windowing 3 whole rounds instead (evals_per_update=1 on round-end losses) differs
    coarse = _run(mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3), seq[19::20])
    assert np.abs(coarse[3] - got[60]).max() > 0.01


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("schedule", [False, True])
@pytest.mark.parametrize("per_update", [1, 3])
def test_skillit_schedule_and_normalisation_use_the_second_evaluation(normalize, schedule,
                                                                      per_update):
    seq = _decreasing(12, 5, 1)
    rule = mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3, evals_per_update=per_update,
                      eta_schedule=schedule, normalize_losses=normalize)
    _close(_run(rule, seq), ref_skillit(LEGO_GRAPH, seq, 0.5, 3, per_update,
                                        eta_schedule=schedule, normalize=normalize))


@pytest.mark.parametrize("schedule", [False, True])
def test_skillit_fine_tuning_targets_rectangular(schedule):
    # 3 trained x 4 evaluated skills; targets 1 and 3: the schedule sums the target columns
    A = np.array([[1.0, 0.5, 0.0, 0.2], [0.0, 1.0, 0.5, 0.0], [0.3, 0.0, 1.0, 1.0]])
    seq = _decreasing(9, 4, 2)
    seq[:, 0] *= 5.0  # a large non-target loss: it must not enter the schedule
    rule = mo.SkillIt(A, eta=0.8, window=2, targets=[1, 3], eta_schedule=schedule,
                      normalize_losses=True)
    ref = ref_skillit(A, seq, 0.8, 2, targets=[1, 3], eta_schedule=schedule, normalize=True)
    _close(_run(rule, seq), ref)
    if schedule:  # the departing option sums every evaluated column
        alt = mo.SkillIt(A, eta=0.8, window=2, targets=[1, 3], eta_schedule="all",
                         normalize_losses=True)
        assert np.abs(np.array(_run(alt, seq)) - np.array(ref)).max() > 1e-3


def test_skillit_prior_and_first_mixture():
    prior = np.array([1.0, 1.0, 1.0, 3.0, 5.0])
    seq = _decreasing(6, 5, 3)
    rule = mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3, prior=prior)
    got = _run(rule, seq)
    _close(got, ref_skillit(LEGO_GRAPH, seq, 0.5, 3, prior=prior))
    # first mixture: q * exp(eta A q), by hand for skill 1 vs skill 0:
    # row 1 of A is [0.5, 1, 0.5, 0.5, 0]: (A q)_1 = 0.5 + 1 + 0.5 + 1.5 = 3.5, (A q)_0 = 1;
    # q_0 = q_1 = 1, so p_1 / p_0 = exp(0.5 * 2.5)
    assert got[0][1] / got[0][0] == pytest.approx(np.exp(1.25), rel=1e-14)
    # the Prior wrapper keeps the A 1 start instead
    wrapped = mo.Prior(mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3), prior)
    assert np.abs(wrapped.weights - got[0]).max() > 0.01


def test_skillit_loss0_first_option_departs():
    seq = _decreasing(6, 5, 4)
    first = _run(mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3, normalize_losses=True,
                            loss0="first"), seq)
    # by hand: loss0="first" divides every window by the first evaluation's losses
    z = 0.5 * LEGO_GRAPH @ (seq[3:6].sum(axis=0) / seq[0])
    _close(first[6], np.exp(z - z.max()) / np.exp(z - z.max()).sum())


def test_skillit_resumes_mid_round_exactly():
    seq = _decreasing(50, 5, 5)
    a = mo.SkillIt(LEGO_GRAPH, eta=0.5, window=3, evals_per_update=20, eta_schedule=True,
                   normalize_losses=True, prior=[1, 1, 1, 3, 5])
    for L in seq[:27]:
        a.update(L)
    b = mo.from_state_dict(a.state_dict())
    for L in seq[27:]:
        assert np.array_equal(a.update(L), b.update(L))


# ----------------------------------------------------------------------------- DoReMi
class RefDoReMi:
    """sangmichaelxie/doremi ``doremi/trainer.py`` (DoReMiTrainer, ``doremiv1``) and the buffers
    ``doremi/train.py`` registers: per-token clipping, absent domains keep their last score,
    running average from the initial weights, loss reweighting at fixed sampling weights."""

    def __init__(self, config_weights, eta, eps, vocab):
        cfg = np.array(config_weights, dtype=float)
        self.w = cfg / cfg.sum()
        self.sampling = cfg  # the config's (unnormalised) training weights
        self.avg = self.w.copy()
        self.counter = 1
        self.scores = np.ones(len(cfg)) * np.log(vocab)
        self.eta, self.eps = eta, eps

    def step(self, excess, mask, ids):
        k = len(self.w)
        new = []
        for d in range(k):
            rows = ids == d
            if rows.sum() > 0:
                new.append(np.clip(excess[rows][mask[rows]], 0, None).mean())
            else:
                new.append(self.scores[d])
        self.scores = np.array(new)
        logw = np.log(self.w) + self.eta * self.scores
        logw = logw - np.log(np.exp(logw).sum())
        self.w = (1 - self.eps) * np.exp(logw) + self.eps / k
        self.counter += 1
        self.avg = (self.avg * (self.counter - 1) + self.w) / self.counter

    def loss(self, pertoken_loss, mask, ids):
        lw = self.w / self.sampling
        lw = lw / lw.sum()
        cur = lw[ids][:, None] * np.ones_like(pertoken_loss) * mask
        return (pertoken_loss * cur).sum() / max(cur.sum(), 1e-10)


def _doremi_batches(n_rounds, k, seed, absent=()):
    """Per-token excess losses (some below the reference), masks and row domains per round."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n_rounds):
        ids = rng.integers(0, k, 12)
        for d, rounds in absent:
            if t in rounds:
                ids[ids == d] = (d + 1) % k
        excess = rng.normal(0.3, 0.6, (12, 5)) * (1 + ids[:, None])  # mixed signs per token
        mask = rng.uniform(size=(12, 5)) < 0.8
        mask[:, 0] = True
        out.append((excess, mask, ids))
    return out


def test_doremi_per_token_excess_equals_the_code():
    k = 4
    batches = _doremi_batches(7, k, 0, absent=[(2, {0, 1}), (3, {4})])
    ref = RefDoReMi([0.4, 0.3, 0.2, 0.1], eta=1.0, eps=1e-3, vocab=50277)
    rule = mo.DoReMi(np.zeros(k), initial_weights=[0.4, 0.3, 0.2, 0.1], average="code",
                     initial_score=np.log(50277))
    for excess, mask, ids in batches:
        ref.step(excess, mask, ids)
        _close(rule.update_tokens(excess, ids, mask), ref.w)
        _close(rule.scores, ref.scores)
    _close(rule.average_weights, ref.avg)
    # the paper's average leaves alpha_0 out: 1/7 sum of alpha_1..alpha_7
    paper = mo.DoReMi(np.zeros(k), initial_weights=[0.4, 0.3, 0.2, 0.1],
                      initial_score=np.log(50277))
    ws = [paper.update_tokens(e, i, m) for e, m, i in batches]
    _close(paper.average_weights, np.mean(ws, axis=0))
    assert np.abs(paper.average_weights - ref.avg).max() > 1e-3


def test_doremi_clipping_per_token_differs_from_clipping_the_mean():
    # domain 0's tokens: excess [2, -1] -> per token mean(max(., 0)) = 1; clip of mean = 0.5
    excess = np.array([[2.0, -1.0], [0.0, 0.0]])
    ids = np.array([0, 1])
    r = mo.DoReMi([1.0, 1.0], smoothing=0.0)
    r.update_tokens(excess, ids)
    _close(r.scores, [1.0, 0.0])
    m = mo.DoReMi([1.0, 1.0], smoothing=0.0)
    m.update([1.5, 1.0])  # the same domain means: L - L_ref = [0.5, 0]
    _close(m.scores, [0.5, 0.0])


def test_doremi_mean_losses_equal_the_code_when_no_token_is_clipped():
    # update(L) with per-domain means equals the code whenever a domain's tokens are all above
    # (or all below) the reference; losses below reference give a zero score
    k = 3
    ref_losses = np.array([2.0, 2.5, 3.0])
    rng = np.random.default_rng(1)
    seq = ref_losses + rng.uniform(-0.5, 1.0, (6, k))
    code = RefDoReMi(np.ones(k), eta=1.0, eps=0.2, vocab=100)
    rule = mo.DoReMi(ref_losses, smoothing=0.2)
    for L in seq:
        excess = np.repeat((L - ref_losses)[:, None], 3, axis=1)  # 3 equal tokens per domain
        code.step(excess, np.ones_like(excess, dtype=bool), np.arange(k))
        _close(rule.update(L), code.w)
        assert rule.weights.min() >= 0.2 / k - 1e-15  # the smoothing floor c / k binds
    assert (seq < ref_losses).any()


def test_doremi_equal_losses_only_smooth():
    code = RefDoReMi([0.7, 0.2, 0.1], eta=1.0, eps=0.3, vocab=100)
    rule = mo.DoReMi([1.0, 1.0, 1.0], smoothing=0.3, initial_weights=[0.7, 0.2, 0.1])
    for _ in range(3):
        code.step(np.zeros((3, 2)), np.ones((3, 2), dtype=bool), np.arange(3))
        _close(rule.update([1.0, 1.0, 1.0]), code.w)


def test_doremi_absent_domain_keeps_its_score_and_skip_departs():
    # round 2: domain 1 absent (NaN): the code reuses its round-1 score 0.5
    r = mo.DoReMi([1.0, 1.0], smoothing=0.0)
    r.update([1.2, 1.5])
    w = r.update([1.4, np.nan])
    _close(r.scores, [0.4, 0.5])
    # by hand: log alpha = eta * (sum of scores) = [0.2 + 0.4, 0.5 + 0.5]
    z = np.array([0.6, 1.0])
    _close(w, np.exp(z) / np.exp(z).sum())
    s = mo.DoReMi([1.0, 1.0], smoothing=0.0, nan_policy="skip")
    s.update([1.2, 1.5])
    with pytest.warns(RuntimeWarning, match="skipped"):
        assert np.abs(s.update([1.4, np.nan]) - w).max() > 0.01


def test_doremi_reweight_mode_equals_the_code_loss():
    k = 3
    cfg = np.array([0.5, 0.3, 0.2])
    batches = _doremi_batches(5, k, 2)
    code = RefDoReMi(cfg, eta=1.0, eps=1e-3, vocab=1000)
    rule = mo.DoReMi(np.zeros(k), initial_weights=cfg, mode="reweight", initial_score=np.log(1000))
    rng = np.random.default_rng(3)
    for excess, mask, ids in batches:
        code.step(excess, mask, ids)
        w = rule.update_tokens(excess, ids, mask)
        _close(w, cfg)  # sampling stays at the configured weights
        _close(rule.domain_weights, code.w)
        tok = rng.uniform(1, 4, excess.shape)
        f = rule.loss_weights[ids][:, None] * mask
        assert (tok * f).sum() / f.sum() == pytest.approx(code.loss(tok, mask, ids), abs=TOL)
    assert mo.DoReMi(np.zeros(k)).loss_weights is None
    # through a wrapper too, and it resumes exactly
    wrapped = mo.Floor(mo.DoReMi(np.zeros(k), initial_weights=cfg, mode="reweight"), 0.1)
    for excess, mask, ids in batches[:3]:
        wrapped.update_tokens(excess, ids, mask)
    again = mo.from_state_dict(wrapped.state_dict())
    _close(again.loss_weights, wrapped.loss_weights)
    for excess, mask, ids in batches[3:]:
        assert np.array_equal(wrapped.update_tokens(excess, ids, mask),
                              again.update_tokens(excess, ids, mask))
        assert np.array_equal(wrapped.loss_weights, again.loss_weights)


# ----------------------------------------------------------------------------- ODM
class RefODM:
    """alon-albalak/online-data-mixing ``megatron/data/data_sampling_utils.py``:
    ``Exp3WeightUpdater`` / ``SmoothedMeanWeightUpdater.group_update`` behind
    ``DynamicDataSamplingWeight`` and its ``UpdateScheduler`` (iteration > warm-up and a
    multiple of the update frequency)."""

    def __init__(self, weights, method="exp3", warmup=2000, freq=1, smoothing=0.9):
        w = np.array(weights, dtype=float)
        self.K = len(w)
        self.probs = w / w.sum()
        self.R = np.zeros(self.K)
        self.eps = 1 / self.K
        self.method, self.warmup, self.freq, self.a = method, warmup, freq, smoothing

    def iteration(self, it, rewards):
        """``rewards``: {domain index: loss} of the iteration's batch(es)."""
        if not (it > self.warmup and it % self.freq == 0):
            return self.probs
        prev = self.eps
        self.eps = min(1 / self.K, np.sqrt(np.log(self.K) / (self.K * it)))
        for d, r in rewards.items():
            if self.method == "exp3":
                self.R[d] += (r / 10) / self.probs[d]
            else:
                self.R[d] = self.a * self.R[d] + (1 - self.a) * np.exp(r)
        if self.method == "exp3":
            total = sum(np.exp(r * prev) for r in self.R)
            w = np.exp(self.R * prev) * ((1 - self.K * self.eps) / total) + self.eps
        else:
            total = sum(r * prev for r in self.R)
            w = self.R * prev * ((1 - self.K * self.eps) / total) + self.eps
        self.probs = w / w.sum()
        return self.probs


def _odm_stream(n_iters, K, seed, per_iter=1):
    """Per iteration: the sampled domain(s) and their training losses (falling, noisy)."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(1, n_iters + 1):
        doms = rng.choice(K, size=per_iter, replace=False)
        out.append({int(d): float(2.0 + d * 0.3 + 3.0 / np.sqrt(it) + rng.uniform(0, 0.2))
                    for d in doms})
    return out


def _odm_losses(K, rewards):
    L = np.full(K, np.nan)
    for d, r in rewards.items():
        L[d] = r
    return L


@pytest.mark.parametrize("method", ["exp3", "smoothed_mean"])
@pytest.mark.parametrize("warmup,freq,per_iter", [(2000, 1, 1), (10, 3, 2), (0, 1, 3)])
def test_odm_equals_the_code(method, warmup, freq, per_iter):
    K = 5
    init = [0.4, 0.1, 0.2, 0.2, 0.1]
    stream = _odm_stream(warmup + 14 * freq, K, 0, per_iter)
    ref = RefODM(init, method, warmup, freq)
    rule = mo.ODM(K, method=method, warmup_steps=warmup, steps_per_update=freq,
                  initial_weights=init)
    _close(rule.weights, ref.probs)
    for it, rewards in enumerate(stream, start=1):
        probs = ref.iteration(it, rewards)
        if it > warmup and it % freq == 0:
            _close(rule.update(_odm_losses(K, rewards)), probs)
            assert rule.t == it
    assert rule.rounds == 14


def test_odm_iteration_passed_by_the_caller():
    # updates at irregular iterations: step= gives the code's clock
    K = 4
    stream = _odm_stream(60, K, 1, 2)
    ref = RefODM(np.ones(K), "exp3", warmup=0, freq=1)
    rule = mo.ODM(K)
    for it in (3, 7, 8, 20, 41, 60):
        _close(rule.update(_odm_losses(K, stream[it - 1]), step=it),
               ref.iteration(it, stream[it - 1]))


def test_odm_counting_updates_stays_uniform_for_k_ln_k_updates():
    # the departing clock (warmup 0, one step per update): eps_t = 1/K for t <= K ln K = 68.0
    K = 22
    rule = mo.ODM(K, warmup_steps=0, reward_scale=1.0)
    stream = _odm_stream(70, K, 2)
    ws = [rule.update(_odm_losses(K, r)) for r in stream]
    assert all(np.abs(w - 1 / K).max() < 1e-15 for w in ws[:68])
    assert np.abs(ws[68] - 1 / K).max() > 1e-6
    # the code's clock (2,000 warm-up iterations) moves from the first update on
    code = mo.ODM(K)
    assert np.abs(code.update(_odm_losses(K, stream[0])) - 1 / K).max() > 1e-4


def test_odm_equal_losses_and_no_observation():
    K = 3
    ref = RefODM(np.ones(K), "exp3", warmup=0)
    rule = mo.ODM(K, warmup_steps=0)
    for it in range(1, 6):  # every domain observed with the same loss
        rewards = {0: 2.0, 1: 2.0, 2: 2.0}
        _close(rule.update([2.0, 2.0, 2.0]), ref.iteration(it, rewards))
    _close(rule.weights, np.full(K, 1 / K))
    R = rule.rewards.copy()
    _close(rule.update([np.nan] * K), ref.iteration(6, {}))
    assert np.array_equal(rule.rewards, R)


# ----------------------------------------------------------------------------- Aioli
A_ENV = np.array([[0.30, 0.05, -0.04], [0.02, 0.20, 0.06], [-0.03, 0.04, 0.25]])  # eval x train


def _env_step(L, L0, x, steps, rnd):
    """A loss drop that is not linear in the mixture history: it shrinks as the loss falls and
    the interaction matrix drifts with the round (so rounds estimate different A)."""
    A = A_ENV * (1.0 + 0.3 * np.sin(rnd))
    return L - steps * (A @ x) * (L / L0)


def ref_aioli(k, rounds, seed, eta, lp_rounds, lp_steps, f, ema, update_steps, normalize=True,
              diagonal=False, prior=None, prior_steps=0):
    """HazyResearch/aioli ``trainer/aioli_trainer.py`` (AioliTrainer.train and
    learn_params_subroutine) on the environment above; the probe orders come from a Generator
    seeded like the rule's (the code draws them from numpy's global state)."""
    rng = np.random.default_rng(seed)
    L0 = np.array([4.0, 3.5, 3.0])
    L = L0.copy()
    if prior is not None:  # the static prior phase
        q = np.array(prior, dtype=float)
        L = _env_step(L, L0, q / q.sum(), prior_steps, -1)
    weights_init = np.ones(k)  # the dynamic updates start from 1 either way
    lp_duration = lp_rounds * lp_steps * k
    out, graphs = [], []
    ema_graph = None
    for i in range(rounds):
        loss_0 = L.copy()
        previous = loss_0.copy()
        new_graph = np.zeros((k, k))
        order = np.concatenate([rng.permutation(k) for _ in range(lp_rounds)])
        for j in order:
            x = np.ones(k) * (1 - f) / (k - 1)
            x[j] = f
            L = _env_step(L, L0, x, lp_steps, i)
            new_graph[:, j] += previous - L
            previous = L.copy()
        new_graph /= lp_rounds
        if not diagonal:
            W = np.zeros((k, k))
            for r in range(k):
                W[r] = (1 - f) / (k - 1)
                W[r, r] = f
            A = np.zeros((k, k))
            for r, row in enumerate(new_graph):
                A[r] = np.linalg.solve(W, row)
        else:
            A = np.zeros((k, k))
            for r in range(k):
                A[r, r] = new_graph[r, r] / f
        if normalize:
            low = A.min()
            if low < 0:
                A -= low
            A /= A.sum()
        graphs.append(A)
        if ema is not None:
            ema_graph = A if i == 0 else (1 - ema) * A + ema * ema_graph
            weights = weights_init * np.exp(eta * ema_graph.sum(axis=0))
        else:
            weights = (weights_init if i == 0 else weights) * np.exp(eta * A.sum(axis=0))
        p = weights / weights.sum()
        out.append(p)
        L = _env_step(L, L0, p, update_steps - lp_duration, i)
    return out, graphs


def _drive(rule, rounds):
    L0 = np.array([4.0, 3.5, 3.0])
    L = _env_step(L0.copy(), L0, rule.weights, rule.segment_steps, -1)
    rule.update(L)  # baseline (prior_steps on initial_weights)
    out, graphs = [], []
    for i in range(rounds):
        while rule.segment[0] == "probe":
            L = _env_step(L, L0, rule.weights, rule.segment_steps, i)
            rule.update(L)
        out.append(rule.mixture.copy())
        graphs.append(rule.A.copy())
        L = _env_step(L, L0, rule.weights, rule.segment_steps, i)
        rule.update(L)
    return out, graphs


@pytest.mark.parametrize("ema,normalize,diagonal", [
    (0.1, True, False), (0.5, True, False), (None, True, False), (0.1, False, False),
    (0.1, True, True)])
def test_aioli_equals_the_code(ema, normalize, diagonal):
    kw = dict(eta=0.2, lp_rounds=2, lp_steps=3, one_hot_factor=0.625)
    rule = mo.Aioli(3, ema=ema, update_every=40, normalize=normalize, diagonal=diagonal, seed=7,
                    **kw)
    got, gA = _drive(rule, 5)
    ref, rA = ref_aioli(3, 5, 7, kw["eta"], kw["lp_rounds"], kw["lp_steps"],
                        kw["one_hot_factor"], ema, 40, normalize, diagonal)
    _close(got, ref)
    _close(gA, rA)
    if normalize and not diagonal:
        assert min(a.min() for a in gA) == 0.0  # the drift makes some entries negative: shifted


def test_aioli_default_is_the_scripts_ema():
    rule = mo.Aioli(3, update_every=40, lp_rounds=2, lp_steps=3, seed=3)
    assert rule.ema == 0.1
    got, _ = _drive(rule, 4)
    ref, _ = ref_aioli(3, 4, 3, 0.2, 2, 3, 0.625, 0.1, 40)
    _close(got, ref)


def test_aioli_prior_is_a_baseline_mixture_and_anchor_departs():
    prior = [0.6, 0.3, 0.1]
    rule = mo.Aioli(3, update_every=40, lp_rounds=2, lp_steps=3, seed=2, initial_weights=prior,
                    prior_steps=25)
    assert rule.segment == ("baseline", None) and rule.segment_steps == 25
    _close(rule.weights, prior)
    got, _ = _drive(rule, 3)
    ref, _ = ref_aioli(3, 3, 2, 0.2, 2, 3, 0.625, 0.1, 40, prior=prior, prior_steps=25)
    _close(got, ref)  # the updates start from uniform, as in the code
    alt = mo.Aioli(3, update_every=40, lp_rounds=2, lp_steps=3, seed=2, initial_weights=prior,
                   anchor="initial")
    moved, _ = _drive(alt, 3)
    assert np.abs(np.array(moved) - np.array(ref)).max() > 0.05


def test_aioli_resumes_mid_probe_exactly():
    a = mo.Aioli(3, update_every=40, lp_rounds=2, lp_steps=3, seed=9, ema=None)
    L = np.array([4.0, 3.5, 3.0])
    a.update(L)
    for _ in range(8):
        L = L - 0.01 * a.weights
        a.update(L)
    b = mo.from_state_dict(a.state_dict())
    for _ in range(20):
        L = L - 0.01 * a.weights
        assert np.array_equal(a.update(L), b.update(L))


# ----------------------------------------------------------------------------- ADO
class RefADO:
    """yidingjiang/ado ``src/data_selectors/ado.py`` (AdoSelector.update, curr_dist,
    compute_scaling_law_params with ``y_axis="train_loss"``, ``use_same_step_size=True``,
    clip_min_probability), with the jax L-BFGS fit replaced by ``fit_fn(D, L) -> (a, e, alpha)``
    and the floor ``1e-2`` as an argument."""

    def __init__(self, token_counts, ignore_steps, start_step, update_interval, fit_fn,
                 floor=1e-2):
        tc = np.array(token_counts, dtype=float)
        self.k = len(tc)
        self.empirical = tc / tc.sum()
        self.p = self.p_avg = self.p_history = self.empirical
        self.cnt = np.empty((0, self.k), dtype=np.int32)
        self.loss = np.empty((0, self.k))
        self.params = None
        self.ignore, self.start, self.interval = ignore_steps, start_step, update_interval
        self.fit_fn, self.floor = fit_fn, floor

    def update(self, task_ids, losses, itr):
        counts = np.zeros(self.k, dtype=np.int32)
        ids, c = np.unique(task_ids, return_counts=True)
        counts[ids] = c
        self.cnt = np.append(self.cnt, np.ones_like(counts[None]) * counts.sum(), axis=0)
        self.p_history = 0.9 * self.p_history + 0.1 * (counts / counts.sum())
        avg = np.mean(losses)
        row = np.zeros(self.k)
        for i in range(self.k):
            if np.sum(task_ids == i) > 0:
                row[i] = np.mean(losses[task_ids == i])
            elif self.loss.shape[0] > 0:
                row[i] = self.loss[-1, i]
            else:
                row[i] = avg
        self.loss = np.append(self.loss, row[None], axis=0)
        if itr >= self.start and itr % self.interval == 0:
            from scipy.signal import savgol_filter

            X = np.cumsum(self.cnt, 0)[self.ignore::10].T
            Y = savgol_filter(self.loss.T, 101, 3, axis=-1)[:, self.ignore::10]
            params = np.array([self.fit_fn(X[i], Y[i]) for i in range(self.k)])
            if np.isfinite(params.sum()):
                self.params = params

    def curr_dist(self, itr):
        if itr < self.start or self.params is None:
            return None
        a, e, al = self.params[:, 0], self.params[:, 1], self.params[:, 2]
        irred = np.exp(e)
        expnt = np.maximum(al, 0.05)
        n = np.float64(np.sum(self.cnt, 0))
        curr = np.exp(e) + np.exp(a) / n**al
        slope = expnt * (curr - irred) / n
        dist = slope * self.empirical * self.p_history**0.5
        dist = dist / dist.sum()
        deficit = max(self.floor * len(dist) - dist.sum(), 0)
        dist = np.maximum(dist * ((1 - deficit) / dist.sum()), self.floor)
        dist = dist / dist.sum()
        self.p = 0.9 * self.p_avg + 0.1 * dist
        self.p_avg = (1 - 1 / (itr + 1)) * self.p_avg + 1 / (itr + 1) * dist
        return self.p


def _toy_fit(D, L):
    """A deterministic stand-in for the per-domain fit: ``(eps, beta, alpha)``."""
    alpha = 0.3 + 0.1 * np.tanh(np.mean(np.log(L)) - 1.0)
    eps = 0.8 * np.min(L)
    x = D ** -alpha
    beta = np.sum((L - eps) * x) / np.sum(x * x)
    return float(eps), float(beta), float(alpha)


def _toy_fit_log(D, L):
    eps, beta, alpha = _toy_fit(D, L)
    return np.log(beta), np.log(eps), alpha


ADO_EPS = np.array([1.0, 2.0, 1.5, 2.5])
ADO_BETA = np.array([8.0, 3.0, 6.0, 2.0])
ADO_ALPHA = np.array([0.35, 0.25, 0.45, 0.3])


def _ado_batch(rng, p, n_total, first):
    ids = rng.choice(4, size=16, p=p)
    if first:  # the first batch misses domain 3: imputed with the batch's mean loss
        ids[ids == 3] = 0
    n = max(n_total, 1.0)
    losses = ADO_EPS[ids] + ADO_BETA[ids] * n ** -ADO_ALPHA[ids] + rng.normal(0, 0.05, 16)
    return ids, losses


@pytest.mark.parametrize("floor", [0.01, 0.2])
def test_ado_equals_the_code(floor):
    tokens = np.array([4.0, 2.0, 1.0, 0.5])
    ref = RefADO(tokens, ignore_steps=20, start_step=150, update_interval=100,
                 fit_fn=_toy_fit_log, floor=floor)
    rule = mo.ADO(4, prior=tokens, ignore_steps=20, start_step=150, refit_every=100,
                  fitter=_toy_fit, floor=floor)
    rng = np.random.default_rng(0)
    n_total, missing = 0.0, 0
    for itr in range(400):
        ids, losses = _ado_batch(rng, ref.p, n_total, itr == 0)
        n_total += len(ids)
        ref.update(ids, losses, itr)
        new = ref.curr_dist(itr)
        counts = np.bincount(ids, minlength=4)
        means = np.array([losses[ids == i].mean() if counts[i] else np.nan for i in range(4)])
        missing += int((counts == 0).sum())
        got = rule.update(means, counts=counts)
        _close(got, ref.p if new is not None else ref.empirical)
    assert missing > 1  # imputation was exercised beyond the first step
    _close(rule.h, ref.p_history)
    if floor == 0.2:  # the floor binds: some normalised preference lies below it
        r = rule.preference()
        assert (r / r.sum() < floor).any()


def test_ado_reference_objective_and_its_eps_bound():
    from mixopt.online.ado_fit import fit_laws, fit_mixopt, fit_reference, reference_objective

    def loss_fn(theta, D, L):  # the code's loss_fn, in numpy
        a, e, alpha = theta
        arg1 = a - alpha * np.log(D)
        arg2 = e + np.zeros(arg1.shape)
        m = np.maximum(arg1, arg2)
        pred = m + np.log(np.exp(arg1 - m) + np.exp(arg2 - m))
        diff = np.abs(np.log(L) - pred)
        hub = np.where(diff > 1e-3, 1e-3 * (diff - 0.5 * 1e-3), 0.5 * diff**2)
        return (hub.sum() + max(alpha - 0.8, 0) - min(alpha, 0.001) + max(a - 6.5, 0)
                - min(e - 0.5, 0))

    rng = np.random.default_rng(0)
    D = np.geomspace(1e3, 1e6, 60)
    L = 1.0 + 5.0 * D ** -0.3
    for theta in [(1.0, 0.2, 0.3), (7.0, 0.7, 0.9), (-1.0, 1.2, -0.2)] + list(
            rng.uniform([-2, -2, 0], [6, 2, 0.8], (5, 3))):
        assert reference_objective(theta, D, L) == pytest.approx(loss_fn(theta, D, L), abs=TOL)
    # exact data with eps = 1: the code's penalty max(0.5 - e, 0) keeps eps >= e^0.5
    eps, beta, alpha, _ = fit_reference(D, L)
    assert eps == pytest.approx(np.exp(0.5), rel=1e-3)
    assert fit_mixopt(D, L)[0] == pytest.approx(1.0, rel=1e-6)
    assert fit_laws(D[None], L[None])["eps"][0] == pytest.approx(1.0, rel=1e-6)
    # above the bound the reference fit recovers the truth too
    eps2, beta2, alpha2, _ = fit_reference(D, 2.5 + 5.0 * D ** -0.3)
    np.testing.assert_allclose([eps2, beta2, alpha2], [2.5, 5.0, 0.3], rtol=1e-4)


def test_ado_departing_options_differ():
    tokens = np.array([4.0, 2.0, 1.0, 0.5])
    base = dict(prior=tokens, ignore_steps=0, start_step=30, refit_every=30, fit_stride=1,
                fitter=_toy_fit)
    rules = {"code": mo.ADO(4, **base),
             "domain": mo.ADO(4, x_axis="domain", **base),
             "mixture": mo.ADO(4, credit="mixture", **base),
             "inclusive": mo.ADO(4, average="inclusive", **base),
             "alpha0": mo.ADO(4, alpha_min=0.4, **base)}
    rng = np.random.default_rng(1)
    p, n_total = rules["code"].weights, 0.0
    for _ in range(90):
        ids, losses = _ado_batch(rng, p, n_total, False)
        n_total += len(ids)
        counts = np.bincount(ids, minlength=4)
        means = np.array([losses[ids == i].mean() if counts[i] else np.nan for i in range(4)])
        out = {name: r.update(means, counts=counts) for name, r in rules.items()}
        p = out["code"]
    for name in ("domain", "mixture", "inclusive", "alpha0"):
        assert np.abs(out[name] - out["code"]).max() > 1e-4, name
    # a callable fitter is named in the state; a rule built with it loads the state exactly
    state = rules["code"].state_dict()
    assert state["params"]["fitter"] == "callable:_toy_fit"
    twin = mo.ADO(4, **base)
    twin.load_state_dict(state)
    L = np.array([2.0, 2.5, 2.2, 2.8])
    assert np.array_equal(twin.update(L, counts=[5, 5, 3, 3]),
                          rules["code"].update(L, counts=[5, 5, 3, 3]))


def test_ado_resumes_exactly_with_the_reference_fitter():
    a = mo.ADO(3, start_step=0, refit_every=8, ignore_steps=0, fit_stride=1, max_points=12)
    rng = np.random.default_rng(2)
    n = 0.0
    for _ in range(9):
        n += 10
        a.update(1.5 + 4.0 * n ** -0.4 + 0.01 * rng.random(3), counts=[4, 3, 3])
    b = mo.from_state_dict(a.state_dict())
    for _ in range(8):
        n += 10
        L = 1.5 + 4.0 * n ** -0.4 + 0.01 * rng.random(3)
        assert np.array_equal(a.update(L, counts=[4, 3, 3]), b.update(L, counts=[4, 3, 3]))
    assert not np.isnan(a.params["alpha"]).any()
