r"""Unstructured pruning over the prunable set of Chen et al. (2020), which the paper follows (§2.2.1, §3.3).

**What is prunable**: `flatcompress.masks.prunable_names` (Chen et al.'s set).

**Global magnitude pruning.** At sparsity $s$ over the $N$ prunable weights, the mask removes the
$k = \mathrm{round}(sN)$ weights of smallest $|w|$, ranked across all prunable tensors together:

$$m_i = \mathbb{1}\left[\, \mathrm{rank}(|w_i|) \ge k \,\right],$$

with ties ranked by position (a stable sort), so the sparsity is exact and the mask deterministic.
Given the masks of an earlier round, the weights they removed are ranked first: a pruned weight
never comes back (iterative magnitude pruning, `flatcompress.pruning.imp`).

**Random masks** (Table 6's control) remove $k$ weights drawn uniformly from the same set; the paper
does not say how its random masks were drawn, so this is one global draw, which leaves every tensor
at about the same sparsity in expectation.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch

from flatcompress.config import check_sparsity
from flatcompress.masks import Masks, prunable_names

__all__ = ["magnitude_masks", "random_masks", "head_names", "meta_model"]

def head_names(model: torch.nn.Module) -> list[str]:
    """The task head's parameters: those outside the pre-trained base model (`classifier.*`, `qa_outputs.*`)."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    return [n for n, _ in model.named_parameters() if not n.startswith(prefix)]


def meta_model(architecture: str = "bert-base", head: str = "classification") -> torch.nn.Module:
    """A model of a known architecture with no weights allocated (device `meta`), built from its config.

    `architecture`: bert-base, bert-large, roberta-base or minilm-l6; `head`: classification or qa (recent
    Hugging Face QA models have no pooler). For counting prunable weights and sizing masks without a download.
    """
    from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification, BertConfig,
                              RobertaConfig)

    configs = {
        "bert-base": lambda: BertConfig(),
        "bert-large": lambda: BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                         intermediate_size=4096),
        "roberta-base": lambda: RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1),
        "minilm-l6": lambda: BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                        intermediate_size=1536),
    }
    if architecture not in configs:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(configs)}")
    auto = {"classification": AutoModelForSequenceClassification, "qa": AutoModelForQuestionAnswering}
    if head not in auto:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(auto)}")
    with torch.device("meta"):
        return auto[head].from_config(configs[architecture]())


def _flat_scores(params: Mapping[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([params[n].detach().abs().flatten().float().cpu() for n in names])


def _split(keep: torch.Tensor, params: Mapping[str, torch.Tensor], names: Iterable[str]) -> dict[str, torch.Tensor]:
    masks, start = {}, 0
    for name in names:
        size = params[name].numel()
        masks[name] = keep[start:start + size].view(params[name].shape).clone()
        start += size
    return masks


def magnitude_masks(model: torch.nn.Module, sparsity: float, names: list[str] | None = None,
                    previous: Masks | None = None) -> dict[str, torch.Tensor]:
    """Global magnitude masks at exactly `round(sparsity * N)` removed weights (True = keep).

    `names` defaults to `prunable_names(model)`; `previous` masks (over the same names) are kept: the weights
    they removed are removed first, so `sparsity` must not be below theirs.
    """
    check_sparsity(sparsity)
    names = names if names is not None else prunable_names(model)
    params = dict(model.named_parameters())
    scores = _flat_scores(params, names)  # |w_i| over every prunable tensor, ranked together (global pruning)
    total = scores.numel()
    k = round(sparsity * total)  # k = round(s N) weights to remove: the sparsity is exact
    if previous is not None:
        if set(previous) != set(names):
            raise ValueError("the previous masks cover other tensors than the prunable set: "
                             f"{sorted(set(previous) ^ set(names))[:3]}")
        kept_before = torch.cat([previous[n].flatten().to(torch.bool).cpu() for n in names])
        removed = total - int(kept_before.sum())
        if k < removed:
            raise ValueError(f"sparsity {sparsity} is below the previous masks' {removed / total:.4f}: "
                             "pruned weights do not grow back")
        scores[~kept_before] = -1.0  # ranked below every |w|, so removed first
    return _split(~_smallest(scores, k), params, names)  # m_i = 1[rank(|w_i|) >= k], back into each tensor's shape


def _smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A bool vector marking the `k` smallest scores, ties taken in order of position (a linear-time selection:
    a full sort of BERT-base's 85M scores would cost more than the rest of an IMP round's pruning)."""
    chosen = torch.zeros(scores.numel(), dtype=torch.bool)
    if k == 0:
        return chosen
    threshold = torch.kthvalue(scores, k).values
    chosen = scores < threshold
    ties = torch.nonzero(scores == threshold).flatten()
    chosen[ties[:k - int(chosen.sum())]] = True
    return chosen


def random_masks(model: torch.nn.Module, sparsity: float, seed: int = 0,
                 names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Masks removing exactly `round(sparsity * N)` prunable weights drawn uniformly at random (seeded)."""
    check_sparsity(sparsity)
    names = names if names is not None else prunable_names(model)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in names)
    generator = torch.Generator().manual_seed(seed)
    keep = torch.ones(total, dtype=torch.bool)
    keep[torch.randperm(total, generator=generator)[:round(sparsity * total)]] = False
    return _split(keep, params, names)
