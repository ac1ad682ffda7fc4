"""Fixed binary masks over named weights, kept exactly zero through training.

A mask is `{parameter name: bool tensor}` (True = keep). `apply_masks` zeroes the pruned
weights; the fine-tuning loop also zeroes their gradients before every optimizer step (so
the optimizer's moments stay zero there) and re-applies the mask after it, which keeps the
zeros exact whatever the optimizer does (weight decay, SAM's perturbation, rounding).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import torch

__all__ = ["Masks", "Ticket", "apply_masks", "check_masks_fit", "mask_gradients", "masks_on", "masks_sparsity",
           "masks_fingerprint"]

Masks = Mapping[str, torch.Tensor]


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
