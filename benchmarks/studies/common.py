"""Shared helpers of the studies: argument parsing, training with warm-up and cosine decay,
per-skill accuracy, byte-level corpora available offline, parallel seeds and output.

Training is :func:`mixopt.train.train_steps` in the diagnostic setup of Jiang et al. (arXiv
2601.21725, Sec. 5; Zhong & Andreas 2024): AdamW, linear warm-up then cosine decay, masked
next-token cross-entropy, a fresh optimizer per stage.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "studies" / "results"
if str(ROOT) not in sys.path:  # the study scripts run as files; tests import them as modules
    sys.path.insert(0, str(ROOT))

from mixopt.procedural import Batch  # noqa: E402

__all__ = ["parser", "train", "eval_loss", "score", "corpus", "ByteCorpus",
           "run_seeds", "spread", "write", "Timer", "progress", "seed_list"]


# ------------------------------------------------------------------------------------ CLI
def parser(description: str, *, seeds: int = 3) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="seconds-sized run (for tests)")
    p.add_argument("--seeds", type=int, default=seeds, help="number of training seeds")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds are first-seed .. first-seed + seeds - 1 (split runs by seed)")
    p.add_argument("--out", default=str(RESULTS), help="output folder (CSV + PNG)")
    p.add_argument("--n-jobs", type=int, default=2, help="seeds run in parallel (joblib)")
    p.add_argument("--device", default="cpu", help="torch device for the models (e.g. cuda)")
    return p


def seed_list(args: argparse.Namespace) -> list[int]:
    """The seeds a study's command line asks for (``--first-seed``, ``--seeds``)."""
    return list(range(args.first_seed, args.first_seed + args.seeds))


def progress(row: dict[str, Any]) -> None:
    """One progress line (JSON) on stderr, so that long or killed runs leave a trace."""
    import json

    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                      if not isinstance(v, (list, tuple, dict))}, default=str),
          file=sys.stderr, flush=True)


class Timer:
    def __init__(self) -> None:
        self.t0 = time.time()

    def __call__(self) -> float:
        return time.time() - self.t0


# ------------------------------------------------------------------------------- training
class _Every:
    """A controller for :func:`mixopt.train.train_steps` that calls ``callback(step)`` at step 0
    and after every ``every`` steps (none when ``every`` is 0), and gives the ``frozen``
    parameters back their gradients once ``thaw_at`` steps are done."""

    def __init__(self, every: int, callback: Callable[[int], None] | None,
                 frozen: Sequence[Any] = (), thaw_at: int = 0) -> None:
        self.every, self.callback = every, callback
        self.frozen, self.thaw_at = list(frozen), thaw_at

    def step(self, step: int, tokens: int = 0) -> None:
        if self.frozen and step >= self.thaw_at:
            for p in self.frozen:
                p.requires_grad_(True)
            self.frozen = []
        if self.callback is not None and self.every and step % self.every == 0:
            self.callback(step)


def train(model: Any, next_batch: Callable[[int], Any], steps: int, *, lr: float = 1e-3,
          weight_decay: float = 0.0, warmup: int = 0, schedule: str = "cosine",
          clip: float | None = 1.0, every: int = 0,
          callback: Callable[[int], None] | None = None, frozen: Sequence[Any] = (),
          freeze_steps: int = 0) -> list[float]:
    """Train ``steps`` steps with a fresh AdamW (:func:`mixopt.train.train_steps`: batches on the
    model's device, warm-up then ``schedule``); ``callback(step)`` at step 0 and every ``every``
    steps. ``next_batch(step)`` returns a batch with ``tokens``/``loss_mask``. The ``frozen``
    parameters get no gradient, hence no AdamW update and no weight decay, for the first
    ``freeze_steps`` steps (the schedule is not changed). Returns the training losses."""
    import itertools

    from mixopt.train import train_steps

    frozen = list(frozen) if freeze_steps > 0 else []
    for p in frozen:
        p.requires_grad_(False)
    ctl = (_Every(every, callback, frozen, freeze_steps)
           if frozen or (callback is not None and every) else None)
    try:
        log = train_steps(model, (next_batch(s) for s in itertools.count()), steps, lr=lr,
                          weight_decay=weight_decay, warmup=warmup, schedule=schedule,
                          clip=clip or None, controller=ctl)
    finally:  # a run shorter than freeze_steps, or one that fails, leaves nothing frozen
        for p in frozen:
            p.requires_grad_(True)
    return log["loss"].tolist()


def _device(model: Any) -> Any:
    p = next(iter(model.parameters()), None)
    return None if p is None else p.device


def eval_loss(model: Any, batches: Sequence[Any]) -> float:
    """Mean masked next-token loss over ``batches`` (no gradient, eval mode)."""
    import torch

    from mixopt.train import masked_lm_loss

    was = model.training
    model.eval()
    with torch.no_grad():
        out = float(np.mean([float(masked_lm_loss(model, b, _device(model))) for b in batches]))
    model.train(was)
    return out


def score(model: Any, batch: Batch) -> Any:
    """The task's :class:`~mixopt.procedural.Score` of the model's argmax predictions
    (per-answer-token accuracy under teacher forcing, broken down by skill)."""
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        tokens = torch.as_tensor(batch.tokens).to(_device(model))
        pred = model(tokens).argmax(-1).cpu().numpy()
    model.train(was)
    return batch.task.score(pred, batch, aligned="next")


# ------------------------------------------------------------------------------ corpora
PYTHON_LIB = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
PROSE_DIRS = (Path("/usr/share/common-licenses"), Path("/usr/share/doc"))


def _read(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile):
        return b""


@functools.lru_cache(maxsize=8)
def corpus(name: str, *, max_bytes: int = 2_000_000, seed: int = 0) -> np.ndarray:
    """A byte-level corpus available offline, as uint8.

    ``"python"``: the installed Python's standard-library source (``lib/python3.X/*.py``);
    ``"prose"``: English text shipped with the system (``/usr/share/common-licenses`` and the
    README / copyright / markdown files of ``/usr/share/doc``); ``"arithmetic"``: generated
    lines ``a+b=c`` and ``a*b=c`` with operands up to 3 digits (``seed``). Cached per process;
    the array is read-only.

    With the environment variable ``MIXOPT_CORPUS_DIR`` set, ``"python"`` and ``"prose"`` are
    read from ``$MIXOPT_CORPUS_DIR/<name>.bin`` instead (raw bytes, e.g. written by
    ``python benchmarks/studies/common.py DIR`` on another machine), so that runs on different
    machines train on the same text.
    """
    chunks: list[bytes] = []
    saved = os.environ.get("MIXOPT_CORPUS_DIR")
    if saved and name in ("python", "prose"):
        path = Path(saved) / f"{name}.bin"
        if not path.is_file():
            raise FileNotFoundError(f"MIXOPT_CORPUS_DIR is set but {path} does not exist "
                                    "(save it with `python benchmarks/studies/common.py DIR`)")
        chunks.append(_read(path))
    elif name == "python":
        for p in sorted(PYTHON_LIB.glob("*.py")):
            chunks.append(_read(p))
    elif name == "prose":
        files = sorted(PROSE_DIRS[0].glob("*")) if PROSE_DIRS[0].exists() else []
        if PROSE_DIRS[1].exists():
            files += sorted(q for q in PROSE_DIRS[1].rglob("*")
                            if q.is_file() and not q.is_symlink()
                            and (q.name.lower().startswith("readme") or q.name == "copyright"
                                 or q.name.endswith((".md", ".md.gz", ".txt"))))
        for p in files:
            if p.is_file():
                text = _read(p)
                if text and sum(32 <= c < 127 or c in (9, 10) for c in text[:512]) > 500:
                    chunks.append(text)
    elif name == "arithmetic":
        rng = np.random.default_rng(seed)
        n = max_bytes // 10 + 1
        a, b = rng.integers(0, 1000, n), rng.integers(0, 1000, n)
        op = rng.random(n) < 0.5
        lines = [f"{x}+{y}={x + y}\n" if o else f"{x}*{y}={x * y}\n"
                 for x, y, o in zip(a.tolist(), b.tolist(), op.tolist())]
        chunks.append("".join(lines).encode())
    else:
        raise ValueError(f"unknown corpus {name!r}; choose 'python', 'prose' or 'arithmetic'")
    data = b"".join(chunks)[:max_bytes]
    if len(data) < 10_000:
        raise FileNotFoundError(f"corpus {name!r} has only {len(data)} bytes on this machine")
    return np.frombuffer(data, dtype=np.uint8)


class ByteCorpus:
    """Random windows of a byte corpus as a procedural-like task (``vocab_size`` 256): every
    next byte is scored. The last ``holdout`` fraction of the bytes is kept for evaluation."""

    vocab_size = 256
    name = "bytes"

    def __init__(self, data: np.ndarray, *, holdout: float = 0.05) -> None:
        n = len(data)
        cut = int(n * (1 - holdout))
        self.train_data, self.test_data = data[:cut], data[cut:]

    def _windows(self, data: np.ndarray, rng: np.random.Generator, b: int, t: int) -> Batch:
        starts = rng.integers(0, len(data) - t, size=b)
        tokens = data[starts[:, None] + np.arange(t)[None, :]].astype(np.int64)
        mask = np.ones((b, t), dtype=bool)
        mask[:, 0] = False
        return Batch(tokens, mask)

    def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        return self._windows(self.train_data, rng, batch_size, length)

    def heldout(self, seed: int, n_batches: int, batch_size: int, length: int) -> list[Batch]:
        rng = np.random.default_rng([seed, 7919])
        return [self._windows(self.test_data, rng, batch_size, length) for _ in range(n_batches)]


class MixedBytes:
    """Rows drawn from several :class:`ByteCorpus` with fixed proportions (the general mix)."""

    vocab_size = 256
    name = "bytes-mix"

    def __init__(self, parts: Sequence[ByteCorpus], weights: Sequence[float]) -> None:
        self.parts = list(parts)
        w = np.asarray(weights, dtype=float)
        self.weights = w / w.sum()

    def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        from mixopt.procedural import allocate

        counts = allocate(self.weights, batch_size, rng)
        bs = [p.sample(rng, int(c), length) for p, c in zip(self.parts, counts) if c > 0]
        return Batch(np.concatenate([b.tokens for b in bs]),
                     np.concatenate([b.loss_mask for b in bs]))


# ------------------------------------------------------------------------------ seeds, output
def run_seeds(fn: Callable[..., Any], jobs: Sequence[tuple], n_jobs: int = 2) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in ``n_jobs`` processes (joblib/loky) when > 1."""
    if n_jobs <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in jobs]
    from joblib import Parallel, delayed

    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return Parallel(n_jobs=n_jobs)(delayed(fn)(*job) for job in jobs)


def spread(df: pd.DataFrame, by: Sequence[str] | str, value: str) -> pd.DataFrame:
    """Mean, standard deviation, min, max and count of ``value`` over seeds, per group."""
    g = df.groupby(by, sort=False)[value]
    return g.agg(["mean", "std", "min", "max", "count"]).reset_index()


def write(df: pd.DataFrame, fig: Any, out: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``name.csv`` and ``name.png`` under ``out``; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv, png = out / f"{name}.csv", out / f"{name}.png"
    df.to_csv(csv, index=False, float_format="%.6g")
    fig.savefig(png, dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return csv, png


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


if __name__ == "__main__":  # save this machine's corpora for MIXOPT_CORPUS_DIR elsewhere
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpora")
    target.mkdir(parents=True, exist_ok=True)
    for _name in ("python", "prose"):
        (target / f"{_name}.bin").write_bytes(corpus(_name).tobytes())
        print(f"wrote {target / (_name + '.bin')}")
