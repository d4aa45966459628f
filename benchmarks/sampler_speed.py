"""Speed of MixtureSampler against torch.multinomial, and the controller's overhead per step.

Run: ``.venv/bin/python benchmarks/sampler_speed.py [--quick]``

1. Indices per second: ``MixtureSampler.next_batch`` (vectorised) and its iterator, against a
   per-draw ``torch.multinomial`` reference (one call per draw, then the next index of that
   domain's permutation), and a batched ``torch.multinomial(w, n, replacement=True)`` (domains
   only, no within-domain order). Both follow the same weights; the benchmark prints the
   per-domain frequencies of each and the worst deviation from ``w`` over windows of 1,000 draws
   (the sampler's is bounded, multinomial's grows like sqrt(n)).
2. Controller overhead: time of ``controller.step(step)`` (Skill-It every 100 steps, evaluation
   excluded: it is the user's held-out pass) and of drawing the batch's indices, as a fraction of
   one training step (forward, backward, AdamW) of a small TinyGPT.

3. Framework callbacks (issue 15): time spent in mixopt per optimisation step inside a real
   ``transformers.Trainer`` (``mixopt.train.hf.MixtureCallback``: the loader's consume/commit,
   field mapping, ``on_step_end``) and a real Lightning fit (``mixopt.train.lightning``:
   ``on_train_batch_start`` consume, ``on_train_batch_end``), as a fraction of the measured step
   of a tiny model (GPT-2 with 2 layers, width 64 / TinyGPT with 2 layers, width 64; batch
   16 x 64). Building the batches' items is data loading, not overhead, and is excluded; the
   controller's evaluation is the user's held-out pass and is excluded (fixed losses).

Targets (issue 7): >= 5 million indices/s; overhead < 1% of a step (issues 7 and 15).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mixopt.online import SkillIt
from mixopt.train import MixtureController, MixtureSampler, TinyGPT, make_optimizer
from mixopt.train.evaluate import masked_lm_loss


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def window_deviation(domains: np.ndarray, w: np.ndarray, window: int = 1000) -> float:
    k = len(w)
    n = (len(domains) // window) * window
    counts = np.stack([np.bincount(c, minlength=k) for c in domains[:n].reshape(-1, window)])
    return float(np.abs(counts - window * w).max())


def sampler_speed(quick: bool) -> None:
    k, size = 8, 1_000_000
    w = np.random.default_rng(0).dirichlet(np.ones(k))
    n_batch = 2_000_000 if quick else 10_000_000
    chunk = 1 << 20

    s = MixtureSampler([size] * k, w, seed=0)
    s.next_batch(chunk)  # warm the permutation cache

    def batched():
        for _ in range(n_batch // chunk):
            s.next_batch(chunk)

    t_batch = best_of(batched) / ((n_batch // chunk) * chunk)
    n_iter = 300_000 if quick else 1_000_000
    it = MixtureSampler([size] * k, w, seed=0)

    def iterate():
        for _ in range(n_iter):
            next(it)

    t_iter = best_of(iterate) / n_iter

    n_ref = 20_000 if quick else 100_000
    wt = torch.tensor(w)
    perms = [torch.randperm(size, generator=torch.Generator().manual_seed(i)) for i in range(k)]

    def reference():
        pos = [0] * k
        out = np.empty(n_ref, dtype=np.int64)
        for j in range(n_ref):
            d = int(torch.multinomial(wt, 1))
            int(perms[d][pos[d] % size])
            pos[d] += 1
            out[j] = d
        return out

    t = time.perf_counter()
    ref_domains = reference()
    t_ref = (time.perf_counter() - t) / n_ref
    n_mb = 10_000_000
    t_mb = best_of(lambda: torch.multinomial(wt, n_mb, replacement=True)) / n_mb

    d_s, _ = MixtureSampler([size] * k, w, seed=0).next_batch(n_ref)
    freq_s, freq_r = np.bincount(d_s, minlength=k) / n_ref, np.bincount(ref_domains,
                                                                         minlength=k) / n_ref
    print(f"weights:                 {np.round(w, 4).tolist()}")
    print(f"frequency mixopt:        {np.round(freq_s, 4).tolist()}")
    print(f"frequency multinomial:   {np.round(freq_r, 4).tolist()}")
    agree = np.abs(freq_s - w).max() < 1e-3 and np.abs(freq_r - w).max() < 5 * np.sqrt(
        w.max() / n_ref)
    print(f"agree with w:            {agree} (max |freq - w|: mixopt "
          f"{np.abs(freq_s - w).max():.2e}, multinomial {np.abs(freq_r - w).max():.2e})")
    print(f"worst |count - w m| over windows of 1,000 draws: mixopt "
          f"{window_deviation(d_s, w):.2f} (bound 1 + K w_max = {1 + k * w.max():.2f}), "
          f"multinomial {window_deviation(ref_domains, w):.2f}")
    print(f"MixtureSampler.next_batch: {1 / t_batch / 1e6:8.2f} M indices/s")
    print(f"MixtureSampler iterator:   {1 / t_iter / 1e6:8.2f} M indices/s")
    print(f"torch.multinomial per draw:{1 / t_ref / 1e6:8.3f} M indices/s "
          f"(next_batch is {t_ref / t_batch:,.0f}x faster, iterator {t_ref / t_iter:,.0f}x)")
    print(f"torch.multinomial batched (domains only, no indices): {1 / t_mb / 1e6:8.2f} M/s "
          f"(next_batch / batched multinomial: {t_mb / t_batch:.2f}x)")
    print(f"target >= 5 M indices/s (batched): {'met' if 1 / t_batch >= 5e6 else 'NOT met'}")


def controller_overhead(quick: bool) -> None:
    torch.set_num_threads(1)
    k, batch, length = 5, 16, 64
    model = TinyGPT(64, context=length, n_layers=2, n_heads=4, d_model=128, seed=0)
    opt = make_optimizer(model, 1e-3)
    x = {"tokens": torch.randint(0, 64, (batch, length)),
         "loss_mask": torch.ones(batch, length, dtype=torch.bool)}
    n_steps = 20 if quick else 60

    def train():
        for _ in range(n_steps):
            loss = masked_lm_loss(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()

    train()
    t_step = best_of(train) / n_steps
    s = MixtureSampler([100_000] * k, np.full(k, 1 / k))
    fixed = np.linspace(1.0, 2.0, k)
    ctl = MixtureController(SkillIt(np.eye(k), eta=0.5), s, lambda: fixed, every=100)
    n_ctl = 100_000
    start = [0]

    def control():
        for j in range(start[0] + 1, start[0] + n_ctl + 1):
            ctl.step(j)
        start[0] += n_ctl

    t_ctl = best_of(control) / n_ctl
    t_draw = best_of(lambda: [s.next_batch(batch) for _ in range(2000)]) / 2000
    print(f"training step (TinyGPT N={model.num_params():,}, batch {batch}x{length}): "
          f"{t_step * 1e3:.2f} ms")
    print(f"controller.step (Skill-It every 100, evaluation excluded): {t_ctl * 1e6:.2f} us "
          f"= {100 * t_ctl / t_step:.4f}% of a step")
    print(f"sampler.next_batch({batch}): {t_draw * 1e6:.1f} us = {100 * t_draw / t_step:.3f}% "
          f"of a step")
    total = 100 * (t_ctl + t_draw) / t_step
    print(f"overhead total {total:.3f}% (target < 1%: {'met' if total < 1 else 'NOT met'})")


class _Timer:
    """Wall time of wrapped calls (each wrapped function runs once per step here)."""

    WARMUP = 10  # calls per function left out of the steady state (first-call costs)

    def __init__(self) -> None:
        self.total = 0.0
        self.inside = 0
        self.calls: dict[str, list[float]] = {}

    def wrap(self, fn, name: str):
        calls = self.calls.setdefault(name, [])

        def timed(*args, **kwargs):
            if self.inside:
                return fn(*args, **kwargs)
            self.inside += 1
            self.total = 0.0
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - t + self.total)
                self.inside -= 1
        return timed

    def per_step(self) -> tuple[float, float]:
        """(steady-state seconds per step, one-time seconds of the warm-up calls)."""
        steady = sum(float(np.mean(c[self.WARMUP:])) for c in self.calls.values())
        warm = sum(float(np.sum(c[:self.WARMUP]) - self.WARMUP * np.mean(c[self.WARMUP:]))
                   for c in self.calls.values())
        return steady, max(warm, 0.0)


def _mixture(batch: int, length: int, k: int = 5):
    from mixopt.train import MixtureDataset

    rng = np.random.default_rng(0)
    sources = [[{"tokens": torch.from_numpy(rng.integers(0, 64, length)),
                 "loss_mask": torch.ones(length, dtype=torch.bool)} for _ in range(200)]
               for _ in range(k)]
    ds = MixtureDataset(sources, np.full(k, 1 / k), seed=0, batch_size=batch)
    ctl = MixtureController(SkillIt(np.eye(k), eta=0.5), ds, lambda: np.linspace(1.0, 2.0, k),
                            every=100)
    return ds, ctl


def _exclude_items(ds, timer: _Timer) -> None:
    """Item building (data loading) inside a timed call is subtracted from the timer."""
    emit = ds._emit

    def untimed(*args, **kwargs):
        if not timer.inside:  # a producer building the next batch: not inside mixopt's hooks
            return emit(*args, **kwargs)
        t = time.perf_counter()
        out = emit(*args, **kwargs)
        timer.total -= time.perf_counter() - t
        return out

    ds._emit = untimed


def hf_overhead(quick: bool) -> None:
    try:
        import transformers

        from mixopt.train.hf import MixtureCallback as HFCallback
    except ImportError as exc:
        print(f"HF Trainer callback: skipped ({exc})")
        return
    import tempfile
    import warnings

    torch.set_num_threads(1)
    batch, length, steps = 16, 64, (30 if quick else 120)
    ds, ctl = _mixture(batch, length)
    cb = HFCallback(ctl)
    timer = _Timer()
    ds.consume = timer.wrap(ds.consume, "consume")
    cb._output = timer.wrap(cb._output, "fields")
    cb.on_step_end = timer.wrap(cb.on_step_end, "on_step_end")
    _exclude_items(ds, timer)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=64,
                                  n_positions=length, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = transformers.TrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=batch, report_to=[],
            use_cpu=True, disable_tqdm=True, save_strategy="no", logging_steps=10**6)
        trainer = cb.attach(transformers.Trainer(model=model, args=args))
        t = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t
    t_cb, warm = timer.per_step()
    t_step = (wall - warm) / steps
    met = "met" if t_cb < 0.01 * t_step else "NOT met"
    print(f"HF Trainer step (GPT-2 2x64, batch {batch}x{length}, {steps} steps): "
          f"{t_step * 1e3:.2f} ms; mixopt per step {t_cb * 1e6:.1f} us = "
          f"{100 * t_cb / t_step:.3f}% (target < 1%: {met}); first calls once: "
          f"{warm * 1e3:.1f} ms")


def lightning_overhead(quick: bool) -> None:
    try:
        import lightning.pytorch as pl

        from mixopt.train.lightning import MixtureCallback as PLCallback
    except ImportError as exc:
        print(f"Lightning callback: skipped ({exc})")
        return
    import warnings

    torch.set_num_threads(1)
    batch, length, steps = 16, 64, (30 if quick else 120)
    ds, ctl = _mixture(batch, length)
    cb = PLCallback(ctl)
    timer = _Timer()
    cb.on_train_batch_start = timer.wrap(cb.on_train_batch_start, "on_train_batch_start")
    cb.on_train_batch_end = timer.wrap(cb.on_train_batch_end, "on_train_batch_end")
    ds._deliver = timer.wrap(ds._deliver, "deliver")
    _exclude_items(ds, timer)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = TinyGPT(64, context=length, n_layers=2, n_heads=2, d_model=64, seed=0)

        def training_step(self, b, i):
            return masked_lm_loss(self.model, b)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        trainer.fit(Module(), train_dataloaders=cb.loader())
        wall = time.perf_counter() - t
    t_cb, warm = timer.per_step()
    t_step = (wall - warm) / steps
    met = "met" if t_cb < 0.01 * t_step else "NOT met"
    print(f"Lightning step (TinyGPT 2x64, batch {batch}x{length}, {steps} steps): "
          f"{t_step * 1e3:.2f} ms; mixopt per step {t_cb * 1e6:.1f} us = "
          f"{100 * t_cb / t_step:.3f}% (target < 1%: {met}); first calls once: "
          f"{warm * 1e3:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", choices=["sampler", "controller", "callbacks"], default=None,
                        help="run one part")
    args = parser.parse_args()
    if args.only in (None, "sampler"):
        sampler_speed(args.quick)
    if args.only in (None, "controller"):
        controller_overhead(args.quick)
    if args.only in (None, "callbacks"):
        hf_overhead(args.quick)
        lightning_overhead(args.quick)
