"""Weight transfer from a warmed-up model into a fresh one (procedural pretraining, stage two).

Jiang et al. (arXiv 2601.21725, Sec. 3-4) pretrain on procedural data, then start natural-data
training from a fresh model that receives selected components of the warmed-up one (attention
only, MLP only, or everything), with the token embeddings re-initialised or every row set to the
mean source embedding (the vocabularies differ), and assemble models from the attention of one
source and the MLP of another.

:func:`transfer` copies components selected by parameter-name patterns. Presets:

``"gpt2"`` (Hugging Face GPT-2 names)
    attention ``transformer.h.N.attn.*``, mlp ``transformer.h.N.mlp.*``, norm ``ln_1``, ``ln_2``,
    ``ln_f``, token embeddings ``transformer.wte.weight`` (and an untied ``lm_head.weight``),
    position ``transformer.wpe.weight``.
``"mixopt"`` (:class:`~mixopt.train.models.TinyGPT`)
    attention ``blocks.N.attn.*``, mlp ``blocks.N.mlp.*``, norm ``ln_1``, ``ln_2``, ``ln_f``,
    token embeddings ``wte.weight``, position ``wpe.weight``.

Components: ``"attention"``, ``"mlp"``, ``"norm"``, ``"position"``; ``embeddings`` decides the
token embeddings separately: ``"reinit"`` keeps the target's own (fresh) initialisation,
``"mean"`` sets every target row to the mean of the source rows (vocab sizes may differ),
``"copy"`` copies them (shapes must match). Position embeddings of a source with a longer context
give the target their first rows (as the paper's code does). Any other tensor that is missing in
the source or has a different shape raises :class:`~mixopt.errors.MixoptError`; nothing is
skipped silently.

Attention without ``"norm"`` gives the copied attention the target's fresh LayerNorm gains (1),
which rescales its logits when the source's gains were far from 1 (sources trained with weight
decay on every parameter, ``make_optimizer(decay="all")``, end with small gains). In the haystack
study (``benchmarks/README.md``, session 7) sources with undecayed gains transferred through
attention alone on the same runs as decayed ones, so the gains were not what decided it there.

Stage two must use a **fresh optimizer** (new AdamW moments and schedule) on the target: optimizer
state is never carried over (the paper restarts optimisation; the source's moments belong to other
data). Parameters are copied in place under ``torch.no_grad()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mixopt.errors import MixoptError

__all__ = ["transfer", "assemble", "TransferReport", "PRESETS", "COMPONENTS", "classify"]

COMPONENTS = ("attention", "mlp", "norm", "position", "embeddings")

PRESETS: dict[str, dict[str, str]] = {
    "gpt2": {
        "attention": r"^transformer\.h\.\d+\.attn\.",
        "mlp": r"^transformer\.h\.\d+\.mlp\.",
        "norm": r"^transformer\.(h\.\d+\.ln_[12]|ln_f)\.",
        "position": r"^transformer\.wpe\.weight$",
        "embeddings": r"^(transformer\.wte\.weight|lm_head\.weight)$",
    },
    "mixopt": {
        "attention": r"^blocks\.\d+\.attn\.",
        "mlp": r"^blocks\.\d+\.mlp\.",
        "norm": r"^(blocks\.\d+\.ln_[12]|ln_f)\.",
        "position": r"^wpe\.weight$",
        "embeddings": r"^(wte\.weight|head\.weight)$",
    },
}


def _params(model: Any) -> dict[str, torch.Tensor]:
    if isinstance(model, nn.Module):
        return dict(model.named_parameters())
    raise MixoptError(f"expected a torch.nn.Module, got {type(model).__name__}")


def _preset(preset: str | Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    if isinstance(preset, Mapping):
        unknown = set(preset) - set(COMPONENTS)
        if unknown:
            raise MixoptError(f"preset patterns name unknown component(s) {sorted(unknown)}; "
                              f"components are {COMPONENTS}")
        return dict(preset)
    if preset == "auto":
        if any(n.startswith("transformer.h.") for n in names):
            return PRESETS["gpt2"]
        if any(n.startswith("blocks.") for n in names):
            return PRESETS["mixopt"]
        raise MixoptError("preset='auto' could not recognise the parameter names (expected "
                          "'transformer.h.N.*' or 'blocks.N.*'); pass preset= or a mapping "
                          "component -> regex")
    if preset not in PRESETS:
        raise MixoptError(f"unknown preset {preset!r}; choose 'auto', {sorted(PRESETS)} or a "
                          "mapping component -> regex")
    return PRESETS[preset]


def classify(names: Sequence[str], preset: str | Mapping[str, str] = "auto") -> dict[str, str]:
    """Component of each parameter name (``"other"`` when no pattern matches)."""
    patterns = {c: re.compile(p) for c, p in _preset(preset, names).items()}
    out = {}
    for n in names:
        hits = [c for c, p in patterns.items() if p.search(n)]
        if len(hits) > 1:
            raise MixoptError(f"parameter {n!r} matches several components {hits}")
        out[n] = hits[0] if hits else "other"
    return out


@dataclass
class TransferReport:
    """What :func:`transfer` did to each target tensor."""

    copied: dict[str, str] = field(default_factory=dict)  # target name -> source label
    mean: dict[str, str] = field(default_factory=dict)  # rows set to the source mean
    kept: list[str] = field(default_factory=list)  # target initialisation kept

    def summary(self) -> str:
        lines = [f"transfer: {len(self.copied)} tensors copied, {len(self.mean)} set to the "
                 f"mean source embedding, {len(self.kept)} kept at their initialisation"]
        for n, src in self.copied.items():
            lines.append(f"  copy  {n} <- {src}")
        for n, src in self.mean.items():
            lines.append(f"  mean  {n} <- {src}")
        for n in self.kept:
            lines.append(f"  keep  {n}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"copied": dict(self.copied), "mean": dict(self.mean), "kept": list(self.kept)}

    def merge(self, other: TransferReport) -> TransferReport:
        clash = (set(self.copied) | set(self.mean)) & (set(other.copied) | set(other.mean))
        if clash:
            raise MixoptError(f"tensors {sorted(clash)} would be written by two sources")
        kept = [n for n in self.kept if n not in other.copied and n not in other.mean]
        return TransferReport({**self.copied, **other.copied}, {**self.mean, **other.mean}, kept)


def transfer(source: nn.Module, target: nn.Module,
             components: Sequence[str] = ("attention", "mlp", "norm"), *,
             embeddings: str = "reinit", preset: str | Mapping[str, str] = "auto",
             label: str = "source") -> TransferReport:
    """Copy ``components`` of ``source`` into ``target`` in place; return a report.

    ``embeddings``: ``"reinit"`` (keep the target's initialisation), ``"mean"`` (every target
    token-embedding row := mean source row) or ``"copy"``. See the module docstring for presets.
    Stage two should then use a fresh optimizer.
    """
    if isinstance(components, str):
        components = (components,)
    bad = [c for c in components if c not in COMPONENTS or c == "embeddings"]
    if bad:
        raise MixoptError(f"unknown component(s) {bad}; choose from "
                          f"{[c for c in COMPONENTS if c != 'embeddings']} (token embeddings "
                          "go through embeddings=)")
    if embeddings not in ("reinit", "mean", "copy"):
        raise MixoptError(f"embeddings must be 'reinit', 'mean' or 'copy', got {embeddings!r}")
    src, tgt = _params(source), _params(target)
    tgt_cls = classify(list(tgt), preset)
    src_cls = classify(list(src), preset)
    report = TransferReport()
    plan: list[tuple[str, str, str]] = []  # (target name, how, source name)
    for name, comp in tgt_cls.items():
        if comp in components or (comp == "embeddings" and embeddings != "reinit"):
            how = "mean" if comp == "embeddings" and embeddings == "mean" else "copy"
            s_name = name
            if s_name not in src:
                if comp == "embeddings":  # an untied head in one model, tied in the other
                    alts = [n for n, c in src_cls.items() if c == "embeddings"]
                    if not alts:
                        raise MixoptError(f"{label} has no token embedding to use for {name!r}")
                    s_name = alts[0]
                else:
                    raise MixoptError(f"target tensor {name!r} ({comp}) has no counterpart in "
                                      f"{label}; the models' layouts differ")
            s, t = src[s_name], tgt[name]
            if (how == "copy" and comp == "position" and s.shape != t.shape and s.ndim == 2
                    and s.shape[1] == t.shape[1] and s.shape[0] >= t.shape[0]):
                how = "rows"  # a longer source context: its first rows (as the paper's code)
            if how == "copy" and s.shape != t.shape:
                raise MixoptError(f"shape mismatch for {name!r}: {label} {tuple(s.shape)} vs "
                                  f"target {tuple(t.shape)}")
            if how == "mean" and (s.ndim != 2 or t.ndim != 2 or s.shape[1] != t.shape[1]):
                raise MixoptError(f"cannot set {name!r} {tuple(t.shape)} to the mean row of "
                                  f"{label}'s {s_name!r} {tuple(s.shape)}: widths differ")
            plan.append((name, how, s_name))
        else:
            report.kept.append(name)
    with torch.no_grad():  # checked everything first: no partial transfer on error
        for name, how, s_name in plan:
            s, t = src[s_name], tgt[name]
            if how == "copy":
                t.copy_(s.to(dtype=t.dtype, device=t.device))
                report.copied[name] = f"{label}:{s_name}"
            elif how == "rows":
                t.copy_(s[: t.shape[0]].to(dtype=t.dtype, device=t.device))
                report.copied[name] = f"{label}:{s_name}[:{t.shape[0]}]"
            else:
                t.copy_(s.mean(dim=0, keepdim=True).to(dtype=t.dtype, device=t.device)
                        .expand_as(t))
                report.mean[name] = f"{label}:{s_name}"
    return report


def assemble(target: nn.Module, *, attention_from: nn.Module | None = None,
             mlp_from: nn.Module | None = None, norm_from: nn.Module | None = None,
             position_from: nn.Module | None = None, embeddings_from: nn.Module | None = None,
             embeddings: str = "reinit", preset: str | Mapping[str, str] = "auto"
             ) -> TransferReport:
    """Build ``target`` from components of several models (e.g. attention of a Dyck-trained
    model and MLP of an ECA-trained one; arXiv 2601.21725). Returns the combined report."""
    parts = [("attention", attention_from), ("mlp", mlp_from), ("norm", norm_from),
             ("position", position_from)]
    if all(m is None for _, m in parts) and embeddings_from is None:
        raise MixoptError("assemble needs at least one of attention_from, mlp_from, norm_from, "
                          "position_from, embeddings_from")
    if embeddings != "reinit" and embeddings_from is None:
        raise MixoptError(f"embeddings={embeddings!r} needs embeddings_from=")
    report: TransferReport | None = None
    for comp, model in parts:
        if model is None:
            continue
        r = transfer(model, target, (comp,), embeddings="reinit", preset=preset,
                     label=f"{comp}_from")
        report = r if report is None else report.merge(r)
    if embeddings_from is not None and embeddings != "reinit":
        r = transfer(embeddings_from, target, (), embeddings=embeddings, preset=preset,
                     label="embeddings_from")
        report = r if report is None else report.merge(r)
    assert report is not None
    return report
