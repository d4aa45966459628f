"""Lightning: MixtureCallback streams equal the plain loop, exact resume, workers, 2 gloo ranks."""

from __future__ import annotations

import json
import os
import socket
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

from mixopt.errors import MixtureError  # noqa: E402
from mixopt.online import SkillIt  # noqa: E402
from mixopt.train import MixtureController, MixtureDataset, TinyGPT  # noqa: E402
from mixopt.train.evaluate import masked_lm_loss  # noqa: E402
from mixopt.train.lightning import MixtureCallback  # noqa: E402

V, SIZES, A = 64, (11, 17, 23), np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sources():
    """Item i of domain d starts with tokens (d, i): the model's inputs name their stream slot."""
    mask = torch.tensor([False] + [True] * 7)
    return [[{"tokens": torch.tensor([d, i] + [(7 * i + d + j) % V for j in range(6)]),
              "loss_mask": mask} for i in range(n)] for d, n in enumerate(SIZES)]


def build(batch_size=4):
    """Skill-It every 3 steps on losses that fall with the *consumed* draws of each domain."""
    ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=batch_size)
    ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                            lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0), every=3)
    return ds, ctl


def plain_loop(steps, accum=1):
    ds, ctl = build()
    it, out = iter(ds), []
    ctl.step(0)
    for s in range(1, steps + 1):
        step = []
        for _ in range(accum):
            b = next(it)
            step += [[d, i] for d, i in zip(b["domain"].tolist(), b["index"].tolist())]
        out.append(step)
        ctl.step(s)
    return out, ds, ctl


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = TinyGPT(V, context=8, n_layers=1, n_heads=2, d_model=16, seed=0)
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch["tokens"][:, :2].tolist())  # what the model trains on
        return masked_lm_loss(self.model, batch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def fit(tmp, *, workers=0, steps=8, save=4, accum=1, ckpt=None, strict=False, loader=None):
    ds, ctl = build()
    cb = MixtureCallback(ctl, strict=strict)
    module = Module()
    callbacks = [cb, L.callbacks.ModelCheckpoint(dirpath=str(tmp), every_n_train_steps=save,
                                                 save_top_k=-1, filename="{step}")]
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        accumulate_grad_batches=accum, callbacks=callbacks,
                        num_sanity_val_steps=0, limit_val_batches=0)
    dl = cb.loader(num_workers=workers) if loader is None else loader(ds)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|resuming from a"
                                " checkpoint that ended|bottleneck).*")
        trainer.fit(module, train_dataloaders=dl, ckpt_path=ckpt)
    per_step = [sum(module.seen[k:k + accum], []) for k in range(0, len(module.seen), accum)]
    return per_step, ds, ctl, module


@pytest.mark.parametrize("workers, accum", [(0, 1), (2, 2)])
def test_lightning_stream_equals_the_plain_loop(tmp_path, workers, accum):
    got, ds, ctl, _ = fit(tmp_path, workers=workers, accum=accum)
    ref, ref_ds, ref_ctl = plain_loop(8, accum)
    assert got == ref  # Lightning fetched each batch one step early; the weights still match
    assert ds.state_dict() == ref_ds.state_dict()
    h = ctl.history
    assert h.drop(columns="tokens").equals(ref_ctl.history.drop(columns="tokens"))
    assert len(h) == 1 + 8 // 3 and not np.allclose(ctl.weights, 1 / 3)
    saved = torch.load(tmp_path / "step=4.ckpt", weights_only=False)
    (state,) = [v for k, v in saved["callbacks"].items() if k.startswith("MixtureCallback")]
    assert state["global_step"] == 4
    assert state["controller"]["sampler"]["sampler"]["position"] == 16 * accum


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, workers):
    full, ds_full, _, mod_full = fit(tmp_path, workers=workers)
    rest, ds_rest, _, mod_rest = fit(tmp_path / "again", workers=workers,
                                     ckpt=str(tmp_path / "step=4.ckpt"))
    assert rest == full[4:]
    assert ds_rest.state_dict() == ds_full.state_dict()
    for p, q in zip(mod_full.parameters(), mod_rest.parameters()):
        torch.testing.assert_close(p, q)


def test_resume_without_mixture_state_warns_or_raises(tmp_path):
    fit(tmp_path, steps=4, save=4)
    ckpt = torch.load(tmp_path / "step=4.ckpt", weights_only=False)
    ckpt["callbacks"] = {k: v for k, v in ckpt["callbacks"].items()
                         if not k.startswith("MixtureCallback")}
    torch.save(ckpt, tmp_path / "bare.ckpt")
    with pytest.warns(RuntimeWarning, match="restarts at position 0"):
        fit(tmp_path / "a", steps=5, ckpt=str(tmp_path / "bare.ckpt"))
    with pytest.raises(MixtureError, match="without mixture state"):
        fit(tmp_path / "b", steps=5, ckpt=str(tmp_path / "bare.ckpt"), strict=True)


def test_a_loader_that_is_not_the_mixture_loader_is_refused(tmp_path):
    with pytest.raises(MixtureError, match="mixture's own loader"):
        fit(tmp_path, steps=2, loader=lambda ds: torch.utils.data.DataLoader(ds, batch_size=None))
    with pytest.raises(MixtureError, match="commit='next'"):
        fit(tmp_path, steps=2, loader=lambda ds: ds.loader(commit="next"))


# ----------------------------------------------------------------------------- DDP (gloo)
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, port: int, path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2", NODE_RANK="0")
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=2)
    ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                            lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0) + 0.1 * rank, every=3)
    cb, module = MixtureCallback(ctl), Module()
    trainer = L.Trainer(max_steps=6, accelerator="cpu", devices=2, strategy="ddp", logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, callbacks=[cb])
    trainer.fit(module, train_dataloaders=cb.loader())
    with open(f"{path}/rank{rank}.json", "w") as fh:
        json.dump({"seen": module.seen, "history": ctl.history["weight[0]"].tolist(),
                   "params": float(sum(p.double().sum() for p in module.parameters()))}, fh)


def test_two_gloo_ranks_under_lightning_agree_and_split_the_stream(tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    mp.start_processes(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["history"] == r1["history"] and r0["params"] == r1["params"]
    rows = [tuple(x) for r in (r0, r1) for b in r["seen"] for x in b]
    assert len(rows) == 24 and len(set(rows)) == 24
    ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=4)
    ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                            lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0) + 0.05, every=3)
    it = iter(ds)
    for s in range(6):
        b = next(it)
        both = [[d, i] for d, i in zip(b["domain"].tolist(), b["index"].tolist())]
        assert both[0::2] == r0["seen"][s] and both[1::2] == r1["seen"][s]
        ctl.step(s + 1)
    np.testing.assert_allclose(ctl.history["weight[0]"], r0["history"], rtol=1e-12)
