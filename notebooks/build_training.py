"""Build notebooks/training.ipynb (run: .venv/bin/python notebooks/build_training.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

cells = [
    ("md", """# Driving real training with mixopt: Skill-It on LEGO

A plain PyTorch loop on the 5-skill LEGO task (Chen et al. 2023; skill *i* = the queried
variable's position in the chain). The steps:

1. **Ablations.** `mixopt.skills.design(..., method="linear")` plans one short run per skill;
   `mixopt.train.run_ablations` trains them; `mixopt.skills.estimate` turns the losses into the
   skill graph `A` (rows trained, columns evaluated).
2. **Online mixture.** `mixopt.online.SkillIt` on that graph, a `MixtureDataset` over the five
   skill sources and a `MixtureController` that evaluates held-out losses every few steps and
   moves the mixture.
3. **Results.** Weight trajectories, per-skill accuracy, and a JSON checkpoint of controller, rule
   and sampler.

It takes a few minutes on a CPU; with `MIXOPT_SMOKE=1` (as in the tests) it shrinks to seconds."""),
    ("code", """import json
import os

import numpy as np
import pandas as pd
import torch

import mixopt.online
import mixopt.procedural
import mixopt.skills
from mixopt.train import (
    Evaluator,
    MixtureController,
    MixtureDataset,
    TinyGPT,
    make_optimizer,
    masked_lm_loss,
    run_ablations,
    train_steps,
)

SMOKE = os.environ.get("MIXOPT_SMOKE") == "1"
torch.set_num_threads(1)  # tiny models train fastest on one thread
LENGTH = 32               # LEGO with 5 variables needs 29 tokens
BATCH = 8 if SMOKE else 32
BASE_STEPS = 4 if SMOKE else 300
ABLATION_STEPS = 4 if SMOKE else 150
TRAIN_STEPS = 24 if SMOKE else 1200
EVERY = 8 if SMOKE else 100  # Skill-It update interval (steps)
MODEL = dict(n_layers=2 if SMOKE else 4, n_heads=2 if SMOKE else 4, d_model=16 if SMOKE else 64,
             context=LENGTH)
print("smoke run" if SMOKE else "full run", MODEL, TRAIN_STEPS, "steps")"""),
    ("md", "## The five skills\nOne LEGO source per skill (`skill_weights` one-hot), so the "
           "sampler can mix skills with any weights."),
    ("code", """K = 5
skills = [f"var{i}" for i in range(K)]
sources = [mixopt.procedural.get("lego", skill_weights=np.eye(K)[i]) for i in range(K)]
vocab = sources[0].vocab_size
example = sources[3].sample(np.random.default_rng(0), 1, LENGTH)
print(example.text(0))"""),
    ("md", "## 1. Ablations and the estimated skill graph"),
    ("md", """Skill-It's linear approximation continues a *base* model on each skill alone. From a
fresh initialisation every run would mostly learn LEGO's shared format, so first train a base
model briefly on the uniform mixture, then start every ablation run from it (`init=base`)."""),
    ("code", """base = TinyGPT(vocab, seed=0, **MODEL)
base_data = MixtureDataset(sources, np.full(K, 1 / K), seed=0, length=LENGTH, batch_size=BATCH)
train_steps(base, base_data, BASE_STEPS, lr=1e-3)
plan = mixopt.skills.design(skills, method="linear", steps=ABLATION_STEPS)
print(plan.summary())
ablations = run_ablations(plan, dict(zip(skills, sources)), model=MODEL, batch_size=BATCH,
                          length=LENGTH, lr=1e-3, eval_batch_size=64, seed=0, init=base)
print(ablations.summary())
estimate = mixopt.skills.estimate(ablations.mixtures, ablations.evals, method="linear")
estimate.graph.to_frame().round(3)"""),
    ("md", """Training on the root variable alone teaches the model to copy the root's literal,
which *raises* the loss on the other skills: their entries in that row come out negative. Skill-It's
graphs are non-negative (an edge says training on i helps j), and a strongly negative row would
pin that skill's weight near zero for the whole run, so keep only the positive entries
(`SkillGraph.threshold(0)`)."""),
    ("code", """graph = estimate.graph.threshold(0.0)
graph.to_frame().round(3)"""),
    ("md", "## 2. Skill-It drives the mixture of a plain torch loop"),
    ("code", """model = TinyGPT(vocab, seed=1, **MODEL)
print(f"N (non-embedding) = {model.num_params():,}")
data = MixtureDataset(sources, np.full(K, 1 / K), seed=1, length=LENGTH, batch_size=BATCH)
heldout = [[src.sample(np.random.default_rng([123, i]), 64, LENGTH)] for i, src in
           enumerate(sources)]
rule = mixopt.online.SkillIt(graph, eta=0.5, window=3)
controller = MixtureController(rule, data, Evaluator(model, heldout), every=EVERY)
accuracy = Evaluator(model, heldout, metric="accuracy")

opt = make_optimizer(model, lr=1e-3)
batches = iter(data)  # in-process: weight changes reach the very next batch
acc_rows, losses = [], []
for step in range(1, TRAIN_STEPS + 1):
    loss = masked_lm_loss(model, next(batches))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
    controller.step(step)
    if step % EVERY == 0 or step == 1:
        acc_rows.append({"step": step, **dict(zip(skills, accuracy()))})
acc = pd.DataFrame(acc_rows).set_index("step")
print(controller.summary())
acc.iloc[[0, -1]].round(3)"""),
    ("md", "## 3. Weights and per-skill accuracy"),
    ("code", """fig = controller.plot()
fig.axes[0].set_title("Skill-It mixture over training")"""),
    ("code", """ax = acc.plot(marker="o", ms=3, figsize=(6, 3.2))
ax.set_ylabel("held-out answer accuracy")
ax.set_title("per-skill accuracy (LEGO)")
history = controller.history
w_cols = [c for c in history.columns if c.startswith("weight[")]
moved = float(np.abs(history[w_cols].iloc[-1].to_numpy() - 1 / K).max())
print(f"largest move of a weight away from uniform: {moved:.3f}")
print("mean accuracy first/last:", round(acc.iloc[0].mean(), 3), round(acc.iloc[-1].mean(), 3))"""),
    ("md", """## Checkpoint and resume
One `state_dict` covers controller, rule and sampler; it is plain JSON. Loading it into freshly
built objects continues the same data stream bit for bit (see `tests/test_train_controller.py`).
With DataLoader workers, iterate `data.take(EVERY)` segments instead of the live dataset so each
segment's workers see the weights in force."""),
    ("code", """state = json.dumps(controller.state_dict())
print(f"checkpoint: {len(state):,} bytes of JSON")
fresh = MixtureDataset(sources, np.full(K, 1 / K), seed=1, length=LENGTH, batch_size=BATCH)
again = MixtureController(mixopt.online.SkillIt(graph, eta=0.5, window=3), fresh,
                          Evaluator(model, heldout), every=EVERY)
again.load_state_dict(json.loads(state))
a, b = next(iter(data)), next(iter(fresh))
assert torch.equal(a["tokens"], b["tokens"])
print("resumed stream matches:", bool(torch.equal(a["index"], b["index"])))"""),
]

nb = nbf.v4.new_notebook()
nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
            for kind, src in cells]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).resolve().parent / "training.ipynb"
nbf.write(nb, out)
print(f"wrote {out}")
