"""Stochastic weight averaging (SWA; Izmailov et al., 2018) as the paper runs it (A.2, §2.2 of the digest).

SWA is Adam with a different end point: the run keeps checkpoints of its weights along the way and its result is
their equal-weight mean over the last part of training,

$$\\bar w = \\frac{1}{K} \\sum_{k=1}^{K} w_{t_k},$$

a point in the middle of the region the late iterates wander through, which is flatter than any one of them. The
paper's setting, which `--optimizer swa` follows:

- AdamW with the initial learning rate 8e-5 (the `paper` tier's `lr_by_optimizer`), decayed linearly to 0 with no
  warm-up (the fine-tuning loop's schedule);
- a checkpoint every epoch on the 10-epoch tasks, every half epoch on the 3-epoch ones (`every`, in epochs;
  `default_every`);
- the mean of the last 50% of the checkpoints (`fraction`): epochs 6-10, or 2, 2.5 and 3.

The mean is kept by `torch.optim.swa_utils.AveragedModel` as a running mean,
$\\bar w \\leftarrow \\bar w + (w - \\bar w) / (n + 1)$, on the run's device. Only parameters are averaged.
BERT has no BatchNorm (its LayerNorm normalizes each example by itself), so `swa_utils.update_bn` has nothing to
recompute: the averaged weights are the model. A pruned weight is zero at every checkpoint, so it is zero in the
mean: SWA keeps a mask.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch.optim.swa_utils import AveragedModel

from flatcompress.optim import OptimizerSpec, fused, register_optimizer

__all__ = ["WeightAverage", "checkpoint_steps", "default_every"]


def default_every(epochs: int) -> float:
    """The paper's checkpoint spacing in epochs: every epoch on its 10-epoch tasks, every half epoch when a run has
    3 epochs or fewer."""
    return 0.5 if epochs <= 3 else 1.0


def checkpoint_steps(steps_per_epoch: int, epochs: int, every: float | None = None,
                     fraction: float = 0.5) -> list[int]:
    """The optimizer steps after which SWA takes its checkpoints: one every `every` epochs (step
    round(k * every * steps_per_epoch), k = 1, 2, ...), of which the last ceil(fraction * K) are averaged.

    >>> checkpoint_steps(100, 10, 1.0)   # the paper's small tasks: epochs 6 to 10
    [600, 700, 800, 900, 1000]
    >>> checkpoint_steps(100, 3, 0.5)    # its large tasks: after 2, 2.5 and 3 epochs
    [200, 250, 300]
    """
    every = default_every(epochs) if every is None else every
    total = steps_per_epoch * epochs
    steps = sorted({min(total, round(k * every * steps_per_epoch)) for k in range(1, math.ceil(epochs / every) + 1)})
    steps = [s for s in steps if s > 0]
    return steps[len(steps) - math.ceil(fraction * len(steps)):]


class WeightAverage:
    """The running equal-weight mean of a model's parameters at fixed steps (`checkpoint_steps`)."""

    def __init__(self, model: torch.nn.Module, steps: Iterable[int]) -> None:
        self.steps = sorted(set(steps))
        device = next(model.parameters()).device  # the copy and its counter `n_averaged` live on the model's device
        self.averaged = AveragedModel(model, device=device)

    def update(self, model: torch.nn.Module, step: int) -> None:
        """Add the model's weights to the mean if `step` is a checkpoint step."""
        if step in self.steps:
            self.averaged.update_parameters(model)  # w̄ ← w̄ + (w − w̄) / (n + 1)

    @property
    def n_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged parameters, by name. Buffers are not averaged: load these with `strict=False` and the model
        keeps its own (e.g. the input ranges of quantization-aware training)."""
        if self.n_averaged != len(self.steps):
            raise RuntimeError(f"SWA averaged {self.n_averaged} of its {len(self.steps)} checkpoints (steps "
                               f"{self.steps}): the run ended early")
        return {name: p.detach() for name, p in self.averaged.module.named_parameters()}

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)


def check_swa(kwargs: dict[str, Any]) -> None:
    """`every` > 0 epochs; 0 < `fraction` <= 1."""
    every, fraction = kwargs.get("every"), kwargs.get("fraction", 0.5)
    if every is not None and not every > 0:
        raise ValueError(f"SWA's every (epochs between checkpoints) must be > 0, got {every}")
    if not 0 < fraction <= 1:
        raise ValueError(f"SWA's fraction (of the checkpoints averaged) must be in (0, 1], got {fraction}")


def _build(params: Iterable, lr: float, weight_decay: float, eps: float, every: float | None = None,
           fraction: float = 0.5, **kwargs: Any) -> torch.optim.Optimizer:
    params = list(params)  # the steps are AdamW's; the averaging is the loop's (OptimizerSpec.averages)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps, fused=fused(params), **kwargs)


register_optimizer(OptimizerSpec(
    "swa", _build, accepts=("every", "fraction", "betas"), check=check_swa,
    description="SWA: AdamW, then the mean of the last 50% of checkpoints (the paper: lr 8e-5)",
    averages=lambda kwargs, steps_per_epoch, epochs: checkpoint_steps(
        steps_per_epoch, epochs, kwargs.get("every"), kwargs.get("fraction", 0.5))))
