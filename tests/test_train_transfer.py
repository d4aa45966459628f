"""TinyGPT (parameter count, determinism, causality) and weight transfer / assembly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from mixopt.errors import MixoptError  # noqa: E402
from mixopt.train import TinyGPT, assemble, classify, transfer  # noqa: E402
from mixopt.train.models import count_non_embedding  # noqa: E402


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ----------------------------------------------------------------------------- model
def test_non_embedding_count_matches_12_L_d2_formula():
    # L = 2, d = 16: 12*2*256 + 13*2*16 + 2*16 = 6144 + 416 + 32 = 6592
    m = TinyGPT(50, context=16, n_layers=2, n_heads=2, d_model=16)
    assert m.num_params(non_embedding=True) == 6592 == count_non_embedding(2, 16)
    assert m.num_params(non_embedding=False) == 6592 + 50 * 16 + 16 * 16
    assert m.flops_per_token() == 6 * 6592


def test_init_is_deterministic_and_model_is_causal():
    a, b = TinyGPT(20, 8, 1, 2, 8, seed=3), TinyGPT(20, 8, 1, 2, 8, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    c = TinyGPT(20, 8, 1, 2, 8, seed=4)
    assert not torch.equal(a.wte.weight, c.wte.weight)
    x = torch.randint(0, 20, (2, 8))
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 20
    with torch.no_grad():
        assert torch.allclose(a(x)[:, :5], a(y)[:, :5])  # positions < 5 do not see the change
        assert a(x).shape == (2, 8, 20)
    with pytest.raises(MixoptError, match="n_heads=3 must divide d_model=8"):
        TinyGPT(20, 8, 1, 3, 8)
    with pytest.raises(MixoptError, match="sequence length 9 exceeds the model context 8"):
        a(torch.zeros(1, 9, dtype=torch.long))


# ----------------------------------------------------------------------------- transfer
def test_transfer_copies_exactly_the_chosen_components():
    src = TinyGPT(30, 8, 2, 2, 8, seed=1)
    tgt = TinyGPT(30, 8, 2, 2, 8, seed=2)
    before = snapshot(tgt)
    report = transfer(src, tgt, ("attention",))
    after, s = snapshot(tgt), snapshot(src)
    attn = {n for n in after if ".attn." in n}
    assert set(report.copied) == attn and len(attn) == 8  # 2 layers x qkv/proj x weight/bias
    for n in after:
        if n in attn:
            assert torch.equal(after[n], s[n])
        else:
            assert torch.equal(after[n], before[n])
    assert set(report.kept) == set(after) - attn
    assert "copy  blocks.1.attn.qkv.bias <- source:blocks.1.attn.qkv.bias" in report.summary()


def test_mean_embeddings_across_vocab_sizes_and_default_components():
    src = TinyGPT(30, 8, 1, 2, 8, seed=1)  # procedural vocabulary
    tgt = TinyGPT(50, 8, 1, 2, 8, seed=2)  # natural vocabulary
    before = snapshot(tgt)
    report = transfer(src, tgt, embeddings="mean")
    mean_row = src.wte.weight.detach().mean(0)
    assert torch.allclose(tgt.wte.weight, mean_row.expand(50, 8))
    assert report.mean == {"wte.weight": "source:wte.weight"}
    copied = {n for n in before if any(k in n for k in (".attn.", ".mlp.", "ln_"))}
    assert set(report.copied) == copied
    assert torch.equal(tgt.wpe.weight, before["wpe.weight"])  # position not chosen: unchanged
    with pytest.raises(MixoptError, match=r"shape mismatch for 'wte.weight': source \(30, 8\)"):
        transfer(src, tgt, (), embeddings="copy")


def test_shape_mismatch_raises_and_changes_nothing():
    src = TinyGPT(30, 8, 1, 2, 8, seed=1)
    tgt = TinyGPT(30, 8, 1, 2, 16, seed=2)
    before = snapshot(tgt)
    with pytest.raises(MixoptError, match="shape mismatch for 'blocks.0.attn.qkv.weight'"):
        transfer(src, tgt, ("mlp", "attention"))
    assert all(torch.equal(p, before[n]) for n, p in tgt.named_parameters())
    deeper = TinyGPT(30, 8, 2, 2, 8, seed=2)
    with pytest.raises(MixoptError, match="'blocks.1.attn.qkv.weight' .* has no counterpart"):
        transfer(src, deeper, ("attention",))
    with pytest.raises(MixoptError, match="unknown component"):
        transfer(src, tgt, ("heads",))
    with pytest.raises(MixoptError, match="embeddings must be"):
        transfer(src, tgt, embeddings="zero")


def test_position_from_a_longer_context_gives_its_first_rows():
    src = TinyGPT(30, 16, 1, 2, 8, seed=1)  # warm-up context 16
    tgt = TinyGPT(50, 6, 1, 2, 8, seed=2)  # downstream context 6
    report = transfer(src, tgt, ("position",))
    assert torch.equal(tgt.wpe.weight, src.wpe.weight[:6])
    assert report.copied == {"wpe.weight": "source:wpe.weight[:6]"}
    with pytest.raises(MixoptError, match="shape mismatch for 'wpe.weight'"):
        transfer(tgt, src, ("position",))  # a shorter source cannot fill the target
    wider = TinyGPT(30, 16, 1, 2, 16, seed=3)
    with pytest.raises(MixoptError, match="shape mismatch for 'wpe.weight'"):
        transfer(wider, tgt, ("position",))


def test_assemble_attention_from_one_mlp_from_another():
    a, b = TinyGPT(30, 8, 1, 2, 8, seed=1), TinyGPT(30, 8, 1, 2, 8, seed=2)
    tgt = TinyGPT(40, 8, 1, 2, 8, seed=3)
    report = assemble(tgt, attention_from=a, mlp_from=b, embeddings_from=a, embeddings="mean")
    for n, p in tgt.named_parameters():
        if ".attn." in n:
            assert torch.equal(p, dict(a.named_parameters())[n])
        if ".mlp." in n:
            assert torch.equal(p, dict(b.named_parameters())[n])
    assert report.copied["blocks.0.mlp.fc.weight"] == "mlp_from:blocks.0.mlp.fc.weight"
    assert "wte.weight" in report.mean and "ln_f.weight" in report.kept
    with pytest.raises(MixoptError, match="needs at least one"):
        assemble(tgt)


class GPT2Like(nn.Module):
    """Hugging Face GPT-2 parameter names (transformer.h.N.attn.c_attn, ...)."""

    def __init__(self, vocab: int, d: int = 4) -> None:
        super().__init__()
        block = nn.ModuleDict({
            "ln_1": nn.LayerNorm(d),
            "attn": nn.ModuleDict({"c_attn": nn.Linear(d, 3 * d), "c_proj": nn.Linear(d, d)}),
            "ln_2": nn.LayerNorm(d),
            "mlp": nn.ModuleDict({"c_fc": nn.Linear(d, 4 * d), "c_proj": nn.Linear(4 * d, d)}),
        })
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab, d), "wpe": nn.Embedding(8, d),
            "h": nn.ModuleList([block]), "ln_f": nn.LayerNorm(d),
        })


def test_gpt2_preset_classifies_hf_names():
    names = [n for n, _ in GPT2Like(10).named_parameters()]
    kinds = classify(names)
    assert kinds["transformer.h.0.attn.c_attn.weight"] == "attention"
    assert kinds["transformer.h.0.mlp.c_proj.bias"] == "mlp"
    assert kinds["transformer.h.0.ln_2.weight"] == "norm"
    assert kinds["transformer.ln_f.bias"] == "norm"
    assert kinds["transformer.wte.weight"] == "embeddings"
    assert kinds["transformer.wpe.weight"] == "position"
    src, tgt = GPT2Like(10), GPT2Like(12)
    report = transfer(src, tgt, ("mlp", "position"), embeddings="mean")
    assert set(report.copied) == {n for n in names if ".mlp." in n} | {"transformer.wpe.weight"}
    with pytest.raises(MixoptError, match="could not recognise"):
        classify(["encoder.layer.0.weight"])


# ----------------------------------------------------------------------------- evaluation
def test_masked_loss_of_a_zero_model_is_log_vocab_and_evaluator_restores_mode():
    import math

    import numpy as np

    from mixopt.train import Evaluator, masked_accuracy, masked_lm_loss

    m = TinyGPT(7, 6, 1, 1, 4)
    with torch.no_grad():
        m.wte.weight.zero_()  # logits = ln_f(x) @ wte^T = 0: uniform over 7 tokens
    tokens = torch.randint(0, 7, (3, 6))
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[:, 4] = True
    batch = {"tokens": tokens, "loss_mask": mask}
    assert abs(masked_lm_loss(m, batch).item() - math.log(7)) < 1e-6  # CE of uniform = log V
    m.train()
    ev = Evaluator(m, {"a": [batch], "b": [batch, batch]})
    out = ev()
    assert m.training and out.shape == (2,)
    np.testing.assert_allclose(out, [math.log(7)] * 2, rtol=1e-6)
    # argmax of all-equal logits is token 0: accuracy = share of scored targets equal to 0
    assert masked_accuracy(m, batch) == float((tokens[:, 4] == 0).float().mean())
    with pytest.raises(MixoptError, match="skill 'a' has no held-out batch"):
        Evaluator(m, {"a": []})
    with pytest.raises(MixoptError, match="loss_mask is all False"):
        masked_lm_loss(m, {"tokens": tokens, "loss_mask": torch.zeros(3, 6, dtype=torch.bool)})
