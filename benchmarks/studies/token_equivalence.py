"""Study 3: token equivalence of a procedural warm-up before natural text (Jiang et al. 2026,
arXiv 2601.21725, Sec. 5: a warmed-up model reaches the baseline's final loss with 55/67/86% of
the natural tokens on C4 / CodeParrot / DeepMind-Math).

Natural domain: byte-level Python standard-library source of the installed Python (offline).
Baseline: a fresh TinyGPT trained on it for ``steps``. Treated arms: a fresh TinyGPT of the same
shape into which :func:`mixopt.train.transfer` copies selected weights of a Dyck source (token
embeddings re-initialised, fresh AdamW), then trained on the same natural stream for ``steps``.

The source (``--source gated``, the default; issue 20's working recipe) is the haystack study's:
:func:`benchmarks.studies.haystack_warmup.train_source` trains k-Dyck at constant learning rate
until its closing-bracket accuracy passes the gate (0.9) or its loss is within 0.1 nat of the
entropy floor, and caches it (``--cache``), so the two studies share sources of the same shape
and seed. ``--source steps`` is the earlier recipe: ``warm_steps`` of each ``--warmups`` task
with warm-up and cosine decay, whatever it learnt. Arms ``<task>:<components>`` name the
transferred parts (``--transfers``; default attention alone, the paper's choice for code-like
text, and attention + MLP + LayerNorms).

Held-out loss curves go through :func:`mixopt.curves.token_equivalence` (interpolation in log
tokens, and the fitted L(D) = E + B/D^beta), with and without the warm-up tokens. Tokens count
whole sequences (batch x length) in both stages.

    python benchmarks/studies/token_equivalence.py          # default size (see --help)
    python benchmarks/studies/token_equivalence.py --smoke
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.studies import common  # noqa: E402

TRANSFERS: dict[str, tuple[str, ...]] = {
    "attention": ("attention",), "attention+norms": ("attention", "norm"),
    "mlp": ("mlp",), "attention+mlp+norms": ("attention", "mlp", "norm")}
DEFAULTS: dict[str, Any] = dict(
    corpus="python", source="gated", warmups=("dyck",),
    transfers=("attention", "attention+mlp+norms"), n_layers=2, n_heads=4, d_model=16,
    length=64, steps=2000, warm_steps=400, batch=32, lr=1e-3, warmup_frac=0.05, eval_every=100,
    eval_batches=4, dyck_k=16, max_bytes=3_000_000, device="cpu", source_preset="full",
    warm_decay="matrices")
SMOKE: dict[str, Any] = dict(DEFAULTS, steps=12, warm_steps=6, batch=4, eval_every=4,
                             eval_batches=1, max_bytes=200_000, source_preset="smoke")


def warm_task(name: str, cfg: dict[str, Any]) -> Any:
    import mixopt.procedural as P

    return P.get(name, k=cfg["dyck_k"]) if name in ("dyck", "shuffle_dyck") else P.get(name)


def source(task_name: str, cfg: dict[str, Any], seed: int, cache: str | None = None
           ) -> tuple[Any, dict[str, Any]]:
    """The warm-up model of ``seed`` and its record ``warmup_tokens, source_steps,
    source_closer_accuracy, source_gap``: the haystack study's gated Dyck source (``source
    gated``) or ``warm_steps`` of ``task_name`` (``source steps``)."""
    from mixopt.train import TinyGPT

    L, B = cfg["length"], cfg["batch"]
    if cfg["source"] == "gated":
        if task_name != "dyck":
            raise ValueError(f"--source gated trains a Dyck source, not {task_name!r}")
        from benchmarks.studies import haystack_warmup as hw

        # the source's context is max(warm_length, length): L, the natural rows' length
        src, traj = hw.shared_source(
            seed, cache, smoke=cfg["source_preset"] == "smoke", n_layers=cfg["n_layers"],
            n_heads=cfg["n_heads"], d_model=cfg["d_model"], dyck_k=cfg["dyck_k"],
            warm_length=L, length=min(L, hw.DEFAULTS["length"]), device=cfg["device"],
            warm_decay=cfg["warm_decay"])
        end = traj[-1]
        return src, dict(warmup_tokens=int(end["tokens"]), source_steps=int(end["step"]),
                         source_closer_accuracy=float(end["closer_accuracy"]),
                         source_gap=float(end["loss"] - end["floor"]))
    task = warm_task(task_name, cfg)
    src = TinyGPT(task.vocab_size, context=L, n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
                  d_model=cfg["d_model"], seed=10_000 + seed).to(cfg["device"])
    rng = np.random.default_rng([seed, 3])
    common.train(src, lambda s, task=task, rng=rng: task.sample(rng, B, L),
                 cfg["warm_steps"], lr=cfg["lr"],
                 warmup=int(cfg["warmup_frac"] * cfg["warm_steps"]))
    return src, dict(warmup_tokens=cfg["warm_steps"] * B * L, source_steps=cfg["warm_steps"],
                     source_closer_accuracy=np.nan, source_gap=np.nan)


def run_seed(seed: int, cfg: dict[str, Any], cache: str | None = None
             ) -> list[dict[str, Any]]:
    """Curves ``arm, seed, step, tokens, loss`` (natural held-out loss) of every arm, with the
    source's record on the treated arms."""
    import torch

    from mixopt.train import TinyGPT, transfer

    torch.set_num_threads(1)
    nat = common.ByteCorpus(common.corpus(cfg["corpus"], max_bytes=cfg["max_bytes"]))
    L, B = cfg["length"], cfg["batch"]
    test = nat.heldout(seed, cfg["eval_batches"], 64, L)
    arch = dict(context=L, n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
                d_model=cfg["d_model"])
    rows: list[dict[str, Any]] = []
    arms: list[tuple[str, str | None, str | None]] = [("baseline", None, None)]
    arms += [(f"{t}:{c}", t, c) for t in cfg["warmups"] for c in cfg["transfers"]]
    sources: dict[str, tuple[Any, dict[str, Any]]] = {}
    for arm, task_name, comps in arms:
        model = TinyGPT(256, **arch, seed=seed).to(cfg["device"])
        record: dict[str, Any] = dict(warmup_tokens=0)
        if task_name is not None:
            if task_name not in sources:
                sources[task_name] = source(task_name, cfg, seed, cache)
            src, record = sources[task_name]
            transfer(src, model, TRANSFERS[comps], embeddings="reinit")
        warm_tokens = record["warmup_tokens"]
        rng = np.random.default_rng([seed, 4])  # same natural stream for every arm

        def evaluate(step: int, model: Any = model, arm: str = arm, wt: int = warm_tokens,
                     record: dict[str, Any] = record) -> None:
            rows.append(dict(record, arm=arm, seed=seed, step=step, tokens=step * B * L,
                             warmup_tokens=wt, loss=common.eval_loss(model, test)))

        common.train(model, lambda s, rng=rng: nat.sample(rng, B, L), cfg["steps"], lr=cfg["lr"],
                     warmup=int(cfg["warmup_frac"] * cfg["steps"]), every=cfg["eval_every"],
                     callback=evaluate)
    return rows


def equivalence(curves: pd.DataFrame) -> pd.DataFrame:
    """:func:`mixopt.curves.token_equivalence` of each warm-up arm against the baseline, per
    seed and estimator."""
    from mixopt.curves import token_equivalence

    out = []
    for (seed, arm), g in curves[curves["arm"] != "baseline"].groupby(["seed", "arm"]):
        base = curves[(curves["arm"] == "baseline") & (curves["seed"] == seed)]
        base, g = base[base["tokens"] > 0], g[g["tokens"] > 0]
        for method in ("interpolate", "fit"):
            try:
                te = token_equivalence(base["tokens"], base["loss"], g["tokens"], g["loss"],
                                       warmup_tokens=float(g["warmup_tokens"].iloc[0]),
                                       method=method)
                out.append(dict(seed=seed, arm=arm, **te.to_dict()))
            except Exception as exc:  # a failed fit is reported, not fatal
                out.append(dict(seed=seed, arm=arm, method=method, reached=False,
                                fraction=np.nan, fraction_with_warmup=np.nan, note=str(exc)))
    return pd.DataFrame(out)


def run(cfg: dict[str, Any], seeds: Sequence[int], n_jobs: int = 2, cache: str | None = None
        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = common.run_seeds(run_seed, [(s, cfg, cache) for s in seeds], n_jobs)
    curves = pd.DataFrame([r for rows in out for r in rows])
    return curves, equivalence(curves)


def figure(curves: pd.DataFrame, te: pd.DataFrame) -> Any:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    c = curves[curves["tokens"] > 0]
    for arm, g in c.groupby("arm", sort=False):
        m = g.groupby("tokens")["loss"].agg(["mean", "min", "max"])
        axes[0].plot(m.index, m["mean"], label=arm)
        axes[0].fill_between(m.index, m["min"], m["max"], alpha=0.2)
    axes[0].set(xscale="log", xlabel="natural tokens", ylabel="held-out loss (nats/byte)",
                title="Python source, after a procedural warm-up")
    axes[0].legend()
    t = te[te["method"] == "interpolate"]
    if len(t):
        s = t.groupby("arm")[["fraction", "fraction_with_warmup"]].agg(["mean", "std"])
        x = np.arange(len(s))
        for i, col in enumerate(("fraction", "fraction_with_warmup")):
            axes[1].bar(x + 0.4 * i - 0.2, 100 * s[(col, "mean")],
                        yerr=100 * s[(col, "std")].fillna(0), width=0.4,
                        label=col.replace("_", " "))
        axes[1].axhline(100, color="k", lw=0.8)
        if float(s[("fraction_with_warmup", "mean")].max()) > 3:  # warm-up tokens dominate
            axes[1].set_yscale("log")
        axes[1].set(xticks=x, xticklabels=list(s.index), ylabel="% of baseline tokens",
                    title="tokens to reach the baseline's final loss")
        axes[1].legend()
    return fig


def main(argv: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = common.parser(__doc__.splitlines()[0])
    for k in ("steps", "warm_steps", "batch", "d_model", "eval_every"):
        p.add_argument(f"--{k.replace('_', '-')}", type=int, default=None)
    p.add_argument("--warmups", nargs="+", default=None,
                   help="procedural tasks (default dyck; --source gated takes dyck only)")
    p.add_argument("--source", choices=("gated", "steps"), default=None,
                   help="gated: the haystack study's Dyck source trained to its gate (default); "
                        "steps: warm_steps of each warm-up task")
    p.add_argument("--transfers", nargs="+", default=None, choices=tuple(TRANSFERS),
                   help="transferred parts, one arm each (default attention, "
                        "attention+mlp+norms)")
    p.add_argument("--cache", default=None,
                   help="folder of trained Dyck sources (shared with haystack_warmup.py)")
    p.add_argument("--corpus", default=None, choices=("python", "prose", "arithmetic"))
    p.add_argument("--warm-decay", choices=("matrices", "all"), default=None,
                   help="the gated source's weight decay (haystack_warmup.py --warm-decay; "
                        "all = the session-6 sources)")
    args = p.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else DEFAULTS)
    cfg.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items()
                if k in cfg and v is not None})
    timer = common.Timer()
    curves, te = run(cfg, common.seed_list(args), args.n_jobs, args.cache)
    csv, png = common.write(curves, figure(curves, te), args.out, "token_equivalence")
    te.to_csv(Path(args.out) / "token_equivalence_summary.csv", index=False,
              float_format="%.6g")
    print(f"token-equivalence study, {args.seeds} seeds, {timer():.0f} s; config {cfg}")
    src = curves[curves["arm"] != "baseline"].drop_duplicates("seed")
    for r in src.itertuples():
        print(f"  source seed {r.seed}: {int(r.source_steps):,} steps ({int(r.warmup_tokens):,} "
              "tokens), "
              f"closer accuracy {r.source_closer_accuracy:.3f}, loss - floor "
              f"{r.source_gap:.3f}")
    last = curves[curves["step"] == curves["step"].max()]
    for r in common.spread(last, "arm", "loss").itertuples():
        print(f"  final loss {r.arm:10s} {r.mean:.4f} +- {r.std if r.std == r.std else 0:.4f}")
    for (arm, method), g in te.groupby(["arm", "method"]):
        f, fw = 100 * g["fraction"], 100 * g["fraction_with_warmup"]
        print(f"  {arm} [{method}]: {f.mean():.1f}% +- {f.std():.1f} of the baseline's tokens "
              f"without warm-up tokens, {fw.mean():.1f}% +- {fw.std():.1f} with them "
              f"(reached in {int(g['reached'].sum())}/{len(g)} seeds; paper 55/67/86%)")
    print(f"  wrote {csv} and {png}")
    return curves, te


if __name__ == "__main__":
    main()
