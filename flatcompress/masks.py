r"""Fixed binary masks over named weights, kept exactly zero through training.

A mask is `{parameter name: bool tensor}` (True = keep). `apply_masks` zeroes the pruned
weights; the fine-tuning loop also zeroes their gradients before every optimizer step (so
the optimizer's moments stay zero there) and re-applies the mask after it, which keeps the
zeros exact whatever the optimizer does (weight decay, SAM's perturbation, rounding).

**What is prunable.** The six weight matrices of every encoder layer (attention query, key, value
and output, the intermediate and the output dense layers) plus the pooler's dense weight when the
model has a trained one. Embeddings, biases, LayerNorm and the task head are never pruned. For
BERT-base that is $12\,(4 \cdot 768^2 + 2 \cdot 768 \cdot 3072) + 768^2 = 85{,}524{,}480$ weights.
MiniLM-L6 keeps its pooler out: it was never trained (sentence-transformers pools by the mean) and
its weights are ~5x smaller than the encoder's, so global magnitude pruning would remove it first and
cut the classifier off from the input (`ModelSpec.pooler_pretrained`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch

__all__ = ["Masks", "Ticket", "prunable_names", "prunable_count", "apply_masks", "check_masks_fit", "mask_gradients",
           "masks_on", "masks_sparsity", "masks_fingerprint"]

Masks = Mapping[str, torch.Tensor]


_ENCODER = re.compile(r"(^|\.)encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                      r"|intermediate\.dense|output\.dense)\.weight$")
_POOLER = re.compile(r"(^|\.)pooler\.dense\.weight$")


def prunable_names(model: torch.nn.Module, include_pooler: bool = True) -> list[str]:
    """The names of the prunable weights of a BERT-style model, in the model's parameter order.

    `include_pooler=False` leaves the pooler out (for a model whose pooler is untrained: see the module
    docstring). A model with no encoder layers matching the pattern is an error, not an empty set.
    """
    names = [n for n, _ in model.named_parameters()
             if _ENCODER.search(n) or (include_pooler and _POOLER.search(n))]
    if not any(_ENCODER.search(n) for n in names):
        raise ValueError(f"{type(model).__name__} has no BERT-style encoder weights (encoder.layer.N.attention...) "
                         "to prune")
    return names


def prunable_count(model: torch.nn.Module, include_pooler: bool = True) -> int:
    """How many weights the prunable set holds."""
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in prunable_names(model, include_pooler))


@dataclass(frozen=True)
class Ticket:
    """Masks with where they came from, e.g. `{"kind": "imp", "task": "rte", "optimizer": "sam", "sparsity": 0.6,
    "seed": 0}` or `{"kind": "random", ...}`; runs fine-tuned under a ticket keep the origin in their record."""

    masks: dict[str, torch.Tensor]
    origin: dict[str, Any]


def check_masks_fit(masks: Masks, model: torch.nn.Module, made_for: str = "?", source: Any = "the masks") -> None:
    """Raise a ValueError naming the first mask with no parameter of its name and shape in `model`."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"{source} (made for {made_for}) has a mask for {name!r}, which this model does not have")
        if tuple(mask.shape) != tuple(params[name].shape):
            raise ValueError(f"{source} (made for {made_for}) does not fit this model: {name!r} is "
                             f"{tuple(mask.shape)} in the mask and {tuple(params[name].shape)} in the model")


def masks_on(masks: Masks, device: torch.device | str) -> dict[str, torch.Tensor]:
    """The masks as bool tensors on `device`, moved once: applying them every step then copies nothing."""
    return {name: mask.to(device=device, dtype=torch.bool) for name, mask in masks.items()}


def _resolve(model: torch.nn.Module, masks: Masks) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    check_masks_fit(masks, model)
    params = dict(model.named_parameters())
    return [(params[name], mask.to(device=params[name].device, dtype=torch.bool)) for name, mask in masks.items()]


@torch.no_grad()
def apply_masks(model: torch.nn.Module, masks: Masks) -> None:
    """Zero every weight whose mask entry is False."""
    for param, mask in _resolve(model, masks):
        param.mul_(mask)


@torch.no_grad()
def mask_gradients(model: torch.nn.Module, masks: Masks) -> None:
    """Zero the gradient of every pruned weight."""
    for param, mask in _resolve(model, masks):
        if param.grad is not None:
            param.grad.mul_(mask)


def masks_sparsity(masks: Masks) -> float:
    """Fraction of masked-out entries over all masked tensors."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total if total else 0.0


def masks_fingerprint(masks: Masks) -> str:
    """A short hash of the mask contents: part of a run's cache key."""
    digest = hashlib.sha256()
    for name in sorted(masks):
        digest.update(name.encode())
        digest.update(masks[name].to(torch.bool).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
