"""Optimizers by name, as factories: the fine-tuning loop never needs to know which one it runs.

The loop only calls `optimizer.step(closure)`, torch's contract for optimizers that need to
re-evaluate the loss (a closure zeroes the gradients, runs forward and backward, and returns
the loss). Plain AdamW evaluates the closure once; SAM (the next chapter) evaluates it twice,
once at w and once at the perturbed point w + ε̂. `flatcompress.flatness.sam` registers "sam" and
`flatcompress.flatness.swa` registers "swa" (the package imports both first, so the names are always there). An
optimizer whose result is an average of checkpoints (SWA) says at which steps in `OptimizerSpec.averages`; the loop
keeps that mean and ends on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

__all__ = ["OptimizerSpec", "OPTIMIZERS", "register_optimizer", "build_optimizer", "averaging_steps", "fused"]


@dataclass(frozen=True)
class OptimizerSpec:
    """A named optimizer: how to build it, and which extra keyword arguments it accepts."""

    name: str
    build: Callable[..., torch.optim.Optimizer]  # build(params, lr=, weight_decay=, eps=, **kwargs)
    accepts: tuple[str, ...] = ()
    description: str = ""
    check: Callable[[dict[str, Any]], None] | None = None  # raises ValueError on invalid option values
    # averages(kwargs, steps_per_epoch, epochs): the steps whose weights the run's result averages (None: it does not)
    averages: Callable[[dict[str, Any], int, int], list[int]] | None = None

    def validate(self, kwargs: dict[str, Any]) -> None:
        unknown = set(kwargs) - set(self.accepts)
        if unknown:
            valid = ", ".join(self.accepts) or "none"
            raise ValueError(f"optimizer {self.name!r} does not take {sorted(unknown)}; its options: {valid}")
        if self.check is not None:
            self.check(kwargs)


OPTIMIZERS: dict[str, OptimizerSpec] = {}


def register_optimizer(spec: OptimizerSpec) -> None:
    """Make `spec.name` usable as `FinetuneConfig(optimizer=...)`."""
    OPTIMIZERS[spec.name] = spec


def fused(params: list) -> bool:
    """Use the fused AdamW kernel (6x faster than the per-tensor loop on CPU) where the device has it."""
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in tensors)


def _adamw(params: Iterable, lr: float, weight_decay: float, eps: float, **kwargs: Any) -> torch.optim.Optimizer:
    params = list(params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps, fused=fused(params), **kwargs)


register_optimizer(OptimizerSpec("adamw", _adamw, accepts=("betas",), description="AdamW (the paper's Adam baseline)"))


def averaging_steps(name: str, kwargs: dict[str, Any], steps_per_epoch: int, epochs: int) -> list[int] | None:
    """The steps whose weights the run of optimizer `name` averages into its result, or None (it ends on its
    last iterate)."""
    spec = OPTIMIZERS[name]
    return spec.averages(kwargs, steps_per_epoch, epochs) if spec.averages is not None else None


def build_optimizer(name: str, params: Iterable, lr: float, weight_decay: float = 0.0, eps: float = 1e-8,
                    **kwargs: Any) -> torch.optim.Optimizer:
    """The optimizer registered under `name`, over `params`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    spec.validate(kwargs)
    return spec.build(params, lr=lr, weight_decay=weight_decay, eps=eps, **kwargs)
