"""Study 1: Skill-It on LEGO (Chen et al., NeurIPS 2023, Sec. 4.1, Fig. 4).

5-variable chain LEGO (``mixopt.procedural`` task ``lego``); a row's skill is the chain position
of the queried variable. Four ways to spend the same number of training steps (equal token
budgets, same model initialisation):

* ``random``: the natural imbalanced mix 1:1:1:3:5 of the Skill-It code (``mixopt.online.Static``);
* ``stratified``: uniform over skills (``mixopt.online.Stratified``);
* ``curriculum``: skills in chain order, segment ``s`` of ``k`` uniform over skills ``0..s``
  (``mixopt.online.Schedule``);
* ``skillit``: ``mixopt.online.SkillIt`` (eta 0.5, window 3 evaluations,
  ``evals_per_update=20``): as in the paper's LEGO run (evaluate every 50 of the 1,000 steps of a
  round, window the last 3 evaluations), the held-out per-skill validation losses are measured
  ``evals_per_update`` times per round, at the start of the round and every
  ``steps / rounds / evals_per_update`` steps after, and the mixture changes at the end of each
  of the ``rounds`` rounds, with a skill graph that
  ``mixopt.skills.estimate(method="linear")`` reads from ablation runs mixopt trains here
  (``mixopt.skills.design(..., "linear")``: from a short stratified base run, train on each skill
  alone for ``ablation_steps`` and record every skill's validation loss before and after,
  A_ij = (L_j(0) - L_j(h)) / L_j(0), Sec. 2.3). Skill-It's edges are non-negative; by default
  (``--graph threshold``) negative estimates (interference: training on the root alone teaches
  "copy the root's literal" and raises the other skills' losses) are set to 0, since a strongly
  negative row drives that skill's weight to 0 forever (``--graph raw`` keeps them). The base
  run starts from the arms' shared initialisation so that the format tokens are learned before
  the ablations start; the ablation steps are not charged to the arms' budgets (as in the
  paper).

Metric: answer accuracy per skill on held-out rows (500 per skill), and its mean over skills:
the exact match of a row's scored tokens under teacher forcing (the answer bit; with
``--scratchpad`` every value of the scratchpad, which equals greedy decoding getting it right).
The CSV also has each skill's per-token accuracy (``var<i>_token``: with a scratchpad, each step
given the right steps before it, which is more lenient than the exact match).

``--scratchpad values|named|path`` and ``--distractors M`` (issue 20) are meant to make the
skills learnable from scratch: the answer lists the values on the path from the root to the
queried variable, all scored (``named``: each with its letter; ``path``: the letters from the
query back to the root first), and ``M`` distractor clauses off the chain remove the leaf's
shortcut (root value XOR the parity of all ``not`` tokens); see :class:`mixopt.procedural.Lego`.
The context grows to the task's ``min_length()`` when needed.

``--init dyck`` (issue 20's second route, the analogue of the paper's pretrained start) starts
every arm, and the graph's base run, from a model whose attention was trained on k-Dyck: the
haystack study's gated source of the same shape and seed
(:func:`benchmarks.studies.haystack_warmup.train_source`, cached with ``--cache``) is copied in
by :func:`mixopt.train.transfer` (attention only, token embeddings re-initialised).
The paper (GPT-Neo 125M, 6,000 steps) reports +36.5 points of Skill-It over random.

    python benchmarks/studies/skillit_lego.py            # default size (see --help)
    python benchmarks/studies/skillit_lego.py --smoke
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.studies import common  # noqa: E402

K = 5
NATURAL = np.array([1, 1, 1, 3, 5], dtype=float)
ARMS = ("random", "stratified", "curriculum", "skillit")
DEFAULTS: dict[str, Any] = dict(
    n_layers=6, n_heads=4, d_model=32, length=32, steps=1500, batch=64, lr=1e-3,
    warmup_frac=0.05, rounds=6, eta=0.5, window=3, evals_per_update=20, base_steps=150,
    ablation_steps=150,
    val_rows=128, test_rows=500, eval_every=200, graph="threshold", arms=ARMS,
    scratchpad="none", distractors=0, init="scratch", device="cpu", source_preset="full")
SMOKE: dict[str, Any] = dict(DEFAULTS, d_model=16, steps=12, batch=8, rounds=3, base_steps=4,
                             ablation_steps=4, val_rows=16, test_rows=32, eval_every=6,
                             evals_per_update=2, source_preset="smoke")
SKILLS = [f"var{i}" for i in range(K)]


def _onehot(i: int) -> np.ndarray:
    w = np.zeros(K)
    w[i] = 1.0
    return w


def lego(cfg: dict[str, Any], skill_weights: Any = None) -> Any:
    """The study's LEGO task (5-chain; the scratchpad and distractors of ``cfg``)."""
    import mixopt.procedural as P

    return P.get("lego", n=K, skill_weights=skill_weights, scratchpad=cfg["scratchpad"],
                 distractors=cfg["distractors"])


def context(cfg: dict[str, Any]) -> int:
    """The row length: ``cfg["length"]``, or the task's minimum when that is longer."""
    return max(cfg["length"], lego(cfg).min_length())


def initial_model(cfg: dict[str, Any], seed: int, cache: str | None = None
                  ) -> tuple[Any, dict[str, Any]]:
    """The arms' shared initialisation and its source's last gate record (``{}`` from
    scratch): a fresh TinyGPT, or (``init="dyck"``) one whose attention is the gated Dyck
    source's of the same shape and seed."""
    from mixopt.train import TinyGPT, transfer

    init = TinyGPT(lego(cfg).vocab_size, context=context(cfg), n_layers=cfg["n_layers"],
                   n_heads=cfg["n_heads"], d_model=cfg["d_model"], seed=seed)
    record: dict[str, Any] = {}
    if cfg["init"] == "dyck":
        from benchmarks.studies import haystack_warmup as hw

        src, traj = hw.shared_source(seed, cache, smoke=cfg["source_preset"] == "smoke",
                                     n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
                                     d_model=cfg["d_model"], device="cpu")
        transfer(src, init, ("attention",), embeddings="reinit")
        record = traj[-1]
    elif cfg["init"] != "scratch":
        raise ValueError(f"init must be 'scratch' or 'dyck', got {cfg['init']!r}")
    return init.to(cfg["device"]), record


def estimate_graph(init: Any, cfg: dict[str, Any], val: list[Any], seed: int
                   ) -> tuple[Any, pd.DataFrame]:
    """Skill graph from linear-approximation ablations (``mixopt.skills.design`` /
    ``estimate``), trained from ``init`` after ``base_steps`` stratified steps."""
    import mixopt.skills as S

    L, B = context(cfg), cfg["batch"]
    base = copy.deepcopy(init)
    task = lego(cfg)
    rng = np.random.default_rng([seed, 11])
    common.train(base, lambda s: task.sample(rng, B, L), cfg["base_steps"], lr=cfg["lr"],
                 warmup=int(cfg["warmup_frac"] * cfg["base_steps"]), schedule="constant")
    des = S.design(SKILLS, "linear", steps=cfg["ablation_steps"], seeds=[seed])
    rows = []
    for r in des:
        mix = np.array([r["mixture"][s] for s in SKILLS])
        net = copy.deepcopy(base)
        src = lego(cfg, mix)
        rng = np.random.default_rng([seed, 12, int(np.argmax(mix))])
        for step in (0, r["steps"]):
            if step:
                common.train(net, lambda s, src=src, rng=rng: src.sample(rng, B, L), r["steps"],
                             lr=cfg["lr"], schedule="constant")
            rows += [dict(run=r["run"], seed=r["seed"], step=step, skill=s,
                          loss=common.eval_loss(net, [v])) for s, v in zip(SKILLS, val)]
    evals = pd.DataFrame(rows)
    est = S.estimate(des.mixtures, evals, method="linear")
    graph = est.graph
    if cfg.get("graph", "raw") == "threshold":  # Skill-It's A holds non-negative edge weights
        graph = graph.threshold(0.0)
    elif cfg.get("graph") == "binary":  # the released graphs' convention: 1 diagonal, 0.5 edges
        graph = graph.binary(0.0)
    return graph, evals


def make_rule(arm: str, cfg: dict[str, Any], graph: Any = None) -> Any:
    import mixopt.online as O

    seg = cfg["steps"] / K
    if arm == "random":
        return O.Static(NATURAL, SKILLS, normalize=True)
    if arm == "stratified":
        return O.Stratified(SKILLS)
    if arm == "curriculum":
        pieces = [((s + 1) * seg if s < K - 1 else None,
                   {SKILLS[i]: 1.0 / (s + 1) for i in range(s + 1)}) for s in range(K)]
        return O.Schedule(pieces, unit="step", skills=SKILLS)
    if arm == "skillit":
        return O.SkillIt(graph, eta=cfg["eta"], window=cfg["window"],
                         evals_per_update=cfg["evals_per_update"])
    raise ValueError(f"unknown arm {arm!r}")


def run_seed(seed: int, cfg: dict[str, Any], cache: str | None = None
             ) -> dict[str, list[dict[str, Any]]]:
    """Train every arm for ``cfg['steps']`` steps; rows of accuracies and of mixtures."""
    import torch

    torch.set_num_threads(1)
    L, B = context(cfg), cfg["batch"]
    init, source = initial_model(cfg, seed, cache)
    val = [lego(cfg, _onehot(i)).sample(
        np.random.default_rng([seed, 21, i]), cfg["val_rows"], L) for i in range(K)]
    test = lego(cfg).sample(np.random.default_rng([seed, 31]), K * cfg["test_rows"], L)
    graph, _ = estimate_graph(init, cfg, val, seed) if "skillit" in cfg["arms"] else (None, None)
    acc_rows: list[dict[str, Any]] = []
    mix_rows: list[dict[str, Any]] = []
    update_every = max(1, cfg["steps"] // cfg["rounds"])
    per = cfg["evals_per_update"]
    if per > update_every:
        raise ValueError(f"evals_per_update={per} exceeds the {update_every} steps of a round")
    eval_gap = update_every // per  # evaluations at offsets 0, gap, ..., (per - 1) gap

    def evaluates(step: int) -> bool:
        off = step % update_every
        return off % eval_gap == 0 and off // eval_gap < per and step < cfg["steps"]

    for arm in cfg["arms"]:
        rule = make_rule(arm, cfg, graph)
        model = copy.deepcopy(init)
        task = lego(cfg)
        rng = np.random.default_rng([seed, 41])
        state = {"w": np.asarray(rule.weights, dtype=float)}

        def next_batch(step: int, rule: Any = rule, model: Any = model, task: Any = task,
                       rng: Any = rng, state: dict = state, arm: str = arm) -> Any:
            if step % update_every == 0 or arm == "curriculum":
                w = rule.weights_at(step) if arm == "curriculum" else rule.weights
                state["w"] = np.asarray(w, dtype=float)
                if step % update_every == 0:
                    mix_rows.append(dict(arm=arm, seed=seed, step=step,
                                         **dict(zip(SKILLS, state["w"]))))
            if arm == "skillit" and evaluates(step):
                # the rule recomputes at the round's last evaluation; the new mixture applies
                # from the next round's first step, as in the reference trainer
                rule.update(np.array([common.eval_loss(model, [v]) for v in val]))
            task.set_weights(state["w"])
            return task.sample(rng, B, L)

        def evaluate(step: int, model: Any = model, arm: str = arm) -> None:
            sc = common.score(model, test)
            row = dict(arm=arm, seed=seed, step=step, init=cfg["init"],
                       source_closer_accuracy=source.get("closer_accuracy", np.nan),
                       mean_accuracy=float(np.mean([sc.by_skill[i]["exact_match"]
                                                    for i in range(K)])))
            row.update({s: sc.by_skill[i]["exact_match"] for i, s in enumerate(SKILLS)})
            # per scored token (with a scratchpad: each step given the right steps before it)
            row.update({f"{s}_token": sc.by_skill[i]["token_accuracy"]
                        for i, s in enumerate(SKILLS)})
            acc_rows.append(row)
            common.progress(row)

        common.train(model, next_batch, cfg["steps"], lr=cfg["lr"],
                     warmup=int(cfg["warmup_frac"] * cfg["steps"]), every=cfg["eval_every"],
                     callback=evaluate)
    graph_rows = [] if graph is None else [
        dict(seed=seed, trained=a, evaluated=b, A=float(graph.matrix[i, j]))
        for i, a in enumerate(SKILLS) for j, b in enumerate(SKILLS)]
    return {"accuracy": acc_rows, "mixture": mix_rows, "graph": graph_rows}


def run(cfg: dict[str, Any], seeds: Sequence[int], n_jobs: int = 2,
        cache: str | None = None) -> dict[str, pd.DataFrame]:
    out = common.run_seeds(run_seed, [(s, cfg, cache) for s in seeds], n_jobs)
    return {k: pd.DataFrame([r for o in out for r in o[k]]) for k in out[0]}


def figure(res: dict[str, pd.DataFrame]) -> Any:
    plt = common.pyplot()
    acc = res["accuracy"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for arm, g in acc.groupby("arm", sort=False):
        m = g.groupby("step")["mean_accuracy"].agg(["mean", "min", "max"])
        axes[0].plot(m.index, 100 * m["mean"], label=arm)
        axes[0].fill_between(m.index, 100 * m["min"], 100 * m["max"], alpha=0.2)
    axes[0].set(xlabel="step", ylabel="mean accuracy over skills (%)", title="LEGO, 5-chain")
    axes[0].legend()
    last = acc[acc["step"] == acc["step"].max()]
    per = last.groupby("arm", sort=False)[SKILLS].mean()
    x = np.arange(K)
    for i, (arm, row) in enumerate(per.iterrows()):
        axes[1].bar(x + 0.2 * i - 0.3, 100 * row.to_numpy(), width=0.2, label=arm)
    axes[1].set(xticks=x, xticklabels=SKILLS, ylabel="final accuracy (%)", title="per skill")
    mix = res["mixture"]
    sk = mix[mix["arm"] == "skillit"]
    if len(sk):
        m = sk.groupby("step")[SKILLS].mean()
        axes[2].stackplot(m.index, m.to_numpy().T, labels=SKILLS, step="post")
        axes[2].set(xlabel="step", ylabel="weight", title="Skill-It mixture (mean over seeds)")
        axes[2].legend(fontsize=7)
    return fig


def final(acc: pd.DataFrame) -> pd.DataFrame:
    last = acc[acc["step"] == acc["step"].max()]
    return common.spread(last, "arm", "mean_accuracy")


def main(argv: list[str] | None = None) -> dict[str, pd.DataFrame]:
    p = common.parser(__doc__.splitlines()[0])
    for k in ("steps", "batch", "d_model", "n_layers", "rounds", "ablation_steps", "base_steps",
              "eval_every", "evals_per_update", "window"):
        p.add_argument(f"--{k.replace('_', '-')}", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--eta", type=float, default=None)
    p.add_argument("--graph", choices=("raw", "threshold", "binary"), default=None,
                   help="post-processing of the estimated graph (default threshold at 0)")
    p.add_argument("--scratchpad", choices=("none", "values", "named", "path"), default=None,
                   help="LEGO answer format (default none: the answer bit only)")
    p.add_argument("--distractors", type=int, default=None,
                   help="distractor clauses off the chain (default 0)")
    p.add_argument("--n-heads", type=int, default=None)
    p.add_argument("--init", choices=("scratch", "dyck"), default=None,
                   help="scratch (default) or attention from the gated Dyck source")
    p.add_argument("--cache", default=None,
                   help="folder of trained Dyck sources (shared with haystack_warmup.py)")
    p.add_argument("--name", default="skillit_lego", help="output file stem")
    p.add_argument("--arms", default=None, help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--length", type=int, default=None)
    args = p.parse_args(argv)
    if args.arms:
        args.arms = tuple(a.strip() for a in args.arms.split(","))
        if not set(args.arms) <= set(ARMS):
            p.error(f"--arms must be a subset of {','.join(ARMS)}")
    cfg = dict(SMOKE if args.smoke else DEFAULTS)
    cfg.update({k: v for k, v in vars(args).items() if k in cfg and v is not None})
    timer = common.Timer()
    res = run(cfg, common.seed_list(args), args.n_jobs, args.cache)
    acc = res["accuracy"]
    csv, png = common.write(acc, figure(res), args.out, args.name)
    out = Path(args.out)
    res["mixture"].to_csv(out / f"{args.name}_mixtures.csv", index=False, float_format="%.6g")
    if len(res["graph"]):
        res["graph"].to_csv(out / f"{args.name}_graph.csv", index=False, float_format="%.6g")
    summ = final(acc)
    print(f"Skill-It LEGO study, {args.seeds} seeds, {timer():.0f} s; config {cfg}")
    last = acc[acc["step"] == acc["step"].max()]
    for r in summ.itertuples():
        per = last[last["arm"] == r.arm][SKILLS].mean()
        print(f"  {r.arm:10s} mean accuracy {100 * r.mean:5.1f}% +- {100 * (r.std or 0):.1f} "
              f"(min {100 * r.min:.1f}, max {100 * r.max:.1f}); per skill "
              + " ".join(f"{100 * v:.0f}" for v in per))
    if {"random", "skillit"} <= set(summ["arm"]):
        piv = last.pivot(index="seed", columns="arm", values="mean_accuracy")
        d = 100 * (piv["skillit"] - piv["random"])
        print(f"  Skill-It - random: {d.mean():+.1f} points (per seed {d.round(1).tolist()}; "
              "paper +36.5 at 125M, target >= +10)")
    if len(res["graph"]):
        g = res["graph"].groupby(["trained", "evaluated"], sort=False)["A"].mean().unstack()
        print("  estimated graph A (rows trained, cols evaluated; mean over seeds):")
        print("  " + g.round(3).to_string().replace("\n", "\n  "))
    print(f"  wrote {csv} and {png}")
    return res


if __name__ == "__main__":
    main()
