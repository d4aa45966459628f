"""HF Trainer: MixtureCallback streams equal the plain loop, exact resume, workers, datasets."""

from __future__ import annotations

import json
import os
import socket
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it

from mixopt.errors import MixtureError  # noqa: E402
from mixopt.online import SkillIt  # noqa: E402
from mixopt.train import MixtureController, MixtureDataset  # noqa: E402
from mixopt.train.hf import STATE_NAME, MixtureCallback, model_fields  # noqa: E402

V, SIZES, A = 64, (11, 17, 23), np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sources():
    """Item i of domain d starts with tokens (d, i): the model's inputs name their stream slot."""
    return [[{"input_ids": torch.tensor([d, i] + [(7 * i + d + j) % V for j in range(6)]),
              "labels": torch.tensor([d, i] + [(7 * i + d + j) % V for j in range(6)])}
             for i in range(n)] for d, n in enumerate(SIZES)]


def build(batch_size=4):
    """Skill-It every 3 steps on losses that fall with the *consumed* draws of each domain."""
    ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=batch_size)
    ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                            lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0), every=3)
    return ds, ctl


def plain_loop(steps, accum=1):
    """The reference: a plain loop, weights set after step s reach step s + 1."""
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


def tiny_gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=V, n_positions=16,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def record(model, seen):
    """What the model actually trains on: (domain, index) of every row it is called with."""
    return model.register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["input_ids"][:, :2].tolist()), with_kwargs=True)


def trainer_run(tmp, *, workers=0, steps=8, save=4, accum=1, resume=None, callback=True,
                strict=False):
    ds, ctl = build()
    model, seen = tiny_gpt2(), []
    record(model, seen)
    args = transformers.TrainingArguments(
        output_dir=str(tmp), max_steps=steps, per_device_train_batch_size=4, save_steps=save,
        save_strategy="steps", report_to=[], use_cpu=True, disable_tqdm=True, logging_steps=1000,
        dataloader_num_workers=workers, gradient_accumulation_steps=accum, learning_rate=1e-3)
    trainer = transformers.Trainer(model=model, args=args)
    if callback:
        MixtureCallback(ctl, strict=strict).attach(trainer)
    trainer.train(resume_from_checkpoint=resume)
    per_step = [sum(seen[k:k + accum], []) for k in range(0, len(seen), accum)]
    return per_step, ds, ctl, model


@pytest.mark.parametrize("workers, accum", [(0, 1), (2, 2)])
def test_trainer_stream_equals_the_plain_loop(tmp_path, workers, accum):
    got, ds, ctl, _ = trainer_run(tmp_path, workers=workers, accum=accum)
    ref, ref_ds, ref_ctl = plain_loop(8, accum)
    assert got == ref  # per step, the rows the model was called with
    assert ds.state_dict() == ref_ds.state_dict()
    h = ctl.history
    assert h.drop(columns="tokens").equals(ref_ctl.history.drop(columns="tokens"))
    assert h["tokens"].tolist()[1:] == [32 * accum * s for s in h["step"].tolist()[1:]]
    assert len(ctl.history) == 1 + 8 // 3 and not np.allclose(ctl.weights, 1 / 3)
    saved = json.loads((tmp_path / "checkpoint-4" / STATE_NAME).read_text())
    assert saved["global_step"] == 4
    assert saved["controller"]["sampler"]["sampler"]["position"] == 16 * accum


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, workers):
    full, ds_full, _, model_full = trainer_run(tmp_path, workers=workers)
    # the Trainer's default ignore_data_skip=False would skip 4 more batches: attach() stops it
    rest, ds_rest, _, model_rest = trainer_run(tmp_path, workers=workers,
                                               resume=str(tmp_path / "checkpoint-4"))
    assert rest == full[4:]
    assert ds_rest.state_dict() == ds_full.state_dict()
    for p, q in zip(model_full.parameters(), model_rest.parameters()):
        torch.testing.assert_close(p, q)


def test_resume_without_mixture_state_warns_or_raises(tmp_path):
    trainer_run(tmp_path, steps=4, save=4)
    os.remove(tmp_path / "checkpoint-4" / STATE_NAME)
    with pytest.warns(RuntimeWarning, match="restarts at position 0"):
        trainer_run(tmp_path, steps=5, save=100, resume=True)  # resumes from checkpoint-4
    with pytest.raises(MixtureError, match="mixopt_state.json does not exist"):
        trainer_run(tmp_path, steps=5, save=100, resume=str(tmp_path / "checkpoint-4"),
                    strict=True)


def test_callback_misuse_is_refused(tmp_path):
    ds, ctl = build()
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=2, use_cpu=True,
                                          per_device_train_batch_size=4, report_to=[])
    trainer = transformers.Trainer(model=tiny_gpt2(), args=args, train_dataset=ds,
                                   callbacks=[MixtureCallback(ctl)])
    with pytest.raises(MixtureError, match=r"attach\(trainer\)"):
        trainer.train()
    args8 = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=2, use_cpu=True,
                                           per_device_train_batch_size=8, report_to=[])
    with pytest.raises(MixtureError, match="per_device_train_batch_size=8 but the "
                                           "MixtureDataset has batch_size=4"):
        MixtureCallback(ctl).attach(transformers.Trainer(model=tiny_gpt2(), args=args8))
    with pytest.raises(MixtureError, match="live MixtureDataset"):
        MixtureCallback(MixtureController(SkillIt(A), ds.take(3), lambda: [1, 1, 1], every=1))


def test_model_fields_turn_tokens_and_mask_into_labels():
    batch = {"tokens": torch.tensor([[5, 6, 7]]), "loss_mask": torch.tensor([[False, True, True]]),
             "domain": torch.tensor([1]), "index": torch.tensor([4])}
    out = model_fields(batch)
    assert set(out) == {"input_ids", "labels"}
    assert out["labels"].tolist() == [[-100, 6, 7]]


# ----------------------------------------------------------------------------- HF datasets
def test_datasets_map_source_collates_into_batch_tensors():
    datasets = pytest.importorskip("datasets")
    rows = {"input_ids": [[d, i, 1, 2] for d in range(2) for i in range(6)]}
    a = datasets.Dataset.from_dict({"input_ids": rows["input_ids"][:6]})
    b = datasets.Dataset.from_dict({"input_ids": rows["input_ids"][6:]})
    ds = MixtureDataset([a, b], [0.5, 0.5], seed=0, batch_size=4)
    batch = next(iter(ds.loader(num_workers=0)))
    assert torch.is_tensor(batch["input_ids"]) and batch["input_ids"].shape == (4, 4)
    assert batch["input_ids"][:, 1].tolist() == batch["index"].tolist()
    assert batch["input_ids"][:, 0].tolist() == batch["domain"].tolist()


def test_datasets_iterable_source_is_endless_and_resumes_exactly():
    datasets = pytest.importorskip("datasets")

    def gen(d):
        def rows():
            for i in range(9 + d):
                yield {"input_ids": [d, i, 0, 0]}
        return rows

    def build_stream():
        streams = [datasets.IterableDataset.from_generator(gen(d)) for d in range(2)]
        return MixtureDataset(streams, [0.4, 0.6], seed=1, batch_size=3)

    ref_ds = build_stream()
    it = iter(ref_ds)
    ref = [next(it)["input_ids"][:, :2].tolist() for _ in range(12)]  # 36 draws: streams wrap
    for d, n in ((0, 9), (1, 10)):  # draw p of domain d is example p mod n of its stream
        rows = [r for b in ref for r in b if r[0] == d]
        assert [r[1] for r in rows] == [p % n for p in range(len(rows))]
    first = build_stream()
    # (range first: zip would take, and so consume, a sixth batch before range ends)
    got = [b["input_ids"][:, :2].tolist() for _, b in zip(range(5), first.loader(num_workers=2))]
    state = json.loads(json.dumps(first.state_dict()))
    second = build_stream()
    second.load_state_dict(state)
    got += [b["input_ids"][:, :2].tolist()
            for _, b in zip(range(7), second.loader(num_workers=2))]
    assert got == ref


# ----------------------------------------------------------------------------- torchrun
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, port: int, path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=2)
        # each rank evaluates its own shard: the controller averages the losses over ranks
        ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                                lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0) + 0.1 * rank,
                                every=3)
        model, seen = tiny_gpt2(), []
        record(model, seen)
        args = transformers.TrainingArguments(
            output_dir=f"{path}/out", max_steps=6, per_device_train_batch_size=2,
            report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="steps", save_steps=3,
            ddp_backend="gloo", learning_rate=1e-3)
        trainer = MixtureCallback(ctl).attach(transformers.Trainer(model=model, args=args))
        trainer.train()
        with open(f"{path}/rank{rank}.json", "w") as fh:
            json.dump({"seen": seen, "history": ctl.history["weight[0]"].tolist(),
                       "params": float(sum(p.double().sum() for p in model.parameters()))}, fh)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_under_the_trainer_agree_and_split_the_stream_and_resume_on_one(
        tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    # fork: the children inherit the imported Trainer (spawn would import it twice again)
    assert transformers.Trainer and transformers.TrainingArguments and transformers.GPT2LMHeadModel
    mp.start_processes(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["history"] == r1["history"] and r0["params"] == r1["params"]
    rows = [tuple(x) for r in (r0, r1) for b in r["seen"] for x in b]
    assert len(rows) == 24 and len(set(rows)) == 24  # disjoint (within each domain's epoch)
    # one process with 4 rows per step and the mean losses draws the same global stream
    ds = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=4)
    ctl = MixtureController(SkillIt(A, eta=2.0), ds,
                            lambda: 1.0 / (1.0 + ds.sampler.counts / 20.0) + 0.05, every=3)
    it, ref = iter(ds), []
    for s in range(6):
        b = next(it)
        both = [[d, i] for d, i in zip(b["domain"].tolist(), b["index"].tolist())]
        assert both[0::2] == r0["seen"][s] and both[1::2] == r1["seen"][s]
        ref.append(both)
        ctl.step(s + 1)
    np.testing.assert_allclose(ctl.history["weight[0]"], r0["history"], rtol=1e-12)
    # elastic: the 2-rank checkpoint at step 3 resumes in one process with 4 rows per step
    ds1 = MixtureDataset(sources(), [1 / 3] * 3, seed=2, batch_size=4)
    ctl1 = MixtureController(SkillIt(A, eta=2.0), ds1,
                             lambda: 1.0 / (1.0 + ds1.sampler.counts / 20.0) + 0.05, every=3)
    model, seen = tiny_gpt2(), []
    record(model, seen)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "one"), max_steps=6, per_device_train_batch_size=4,
        report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no", learning_rate=1e-3)
    trainer = MixtureCallback(ctl1).attach(transformers.Trainer(model=model, args=args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-3"))
    assert seen == ref[3:]
    a, b = ds1.state_dict()["sampler"], ds.state_dict()["sampler"]
    assert a["drawn"] == b["drawn"] and a["position"] == b["position"] == 24
    np.testing.assert_allclose(a["weights"], b["weights"], rtol=1e-12)  # mean of 2 vs x + 0.05


# ----------------------------------------------------------------------------- Evaluator
def test_evaluator_scores_hf_models_on_both_batch_conventions():
    from mixopt.errors import MixoptError
    from mixopt.train import Evaluator
    from mixopt.train.evaluate import masked_accuracy, masked_lm_loss

    model = tiny_gpt2().eval()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, V, (3, 8), generator=g)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[:, :3] = False
    labels = torch.where(mask, tokens, torch.full_like(tokens, -100))
    with torch.no_grad():
        hf = model(input_ids=tokens, labels=labels).loss  # HF's own shifted, -100-masked mean
        logits = model(tokens[:, :-1]).logits
        by_hand = torch.nn.functional.cross_entropy(logits[mask[:, 1:]], tokens[:, 1:][mask[:, 1:]])
    mixopt_batch = {"tokens": tokens, "loss_mask": mask}
    hf_batch = {"input_ids": tokens, "labels": labels, "attention_mask": torch.ones_like(tokens)}
    with torch.no_grad():
        torch.testing.assert_close(masked_lm_loss(model, mixopt_batch), by_hand)
        torch.testing.assert_close(masked_lm_loss(model, hf_batch), hf)
    ev = Evaluator(model, {"a": [mixopt_batch], "b": [hf_batch]})
    np.testing.assert_allclose(ev(), [float(by_hand), float(hf)], rtol=1e-6)
    acc = masked_accuracy(model, hf_batch)
    assert 0.0 <= acc <= 1.0

    class LossOnly(torch.nn.Module):  # returns only .loss, like a model with a custom head
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, input_ids, labels=None, attention_mask=None):
            out = self.inner(input_ids=input_ids, labels=labels)
            return transformers.modeling_outputs.CausalLMOutput(loss=out.loss)

    with torch.no_grad():
        torch.testing.assert_close(masked_lm_loss(LossOnly(), hf_batch), hf)
    with pytest.raises(MixoptError, match="accuracy needs logits"):
        masked_accuracy(LossOnly(), hf_batch)
    with pytest.raises(MixoptError, match=r"token id 70 but GPT2LMHeadModel has a vocabulary of "
                                          r"64 \(ids 0..63\)"):
        masked_lm_loss(model, {"tokens": tokens.clamp(max=0) + 70, "loss_mask": mask})
    with pytest.raises(MixoptError, match=r"labels of the same shape; got input_ids \(3, 8\), "
                                          r"labels \(3, 7\)"):
        masked_lm_loss(model, {"input_ids": tokens, "labels": labels[:, 1:]})
    with pytest.raises(MixoptError, match="labels all -100"):
        masked_lm_loss(model, {"input_ids": tokens, "labels": torch.full_like(tokens, -100)})
