r"""Pick the accelerator, the numeric precision that suits it, and the autocast context and loss scaler it needs.

| device | default precision | why |
|---|---|---|
| CUDA with native bf16 (A100, H100, RTX 30/40) | `bf16` | fast, and bf16's exponent range needs no loss scaling |
| CUDA without it (T4, V100: Colab's free GPU) | `fp16` + `LossScaler` | fp16 is fast there; its range is not, so losses are scaled |
| CPU, Apple MPS | `fp32` | no fast half-precision matrix kernels to gain from |

**Loss scaling** (fp16). Small gradients underflow in fp16, so the loss is multiplied by a scale $S$ before the
backward pass and the gradients are divided by $S$ before anyone reads them,

$$g = \frac{1}{S} \nabla_w (S \cdot L).$$

A step whose gradients overflow (inf or NaN) is skipped entirely and $S$ halves; after `growth_interval` finite
steps in a row $S$ doubles. SAM reads the gradient twice (its perturbation and its update): both passes are
unscaled, and an overflow in either skips the whole step with the weights restored (`flatcompress.flatness.sam.SAM`).
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "pick_device", "pick_precision", "autocast", "LossScaler", "SkipStep"]

PRECISIONS = ("bf16", "fp16", "fp32")


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """`preference` if given, else CUDA, then Apple MPS, then CPU."""
    if preference:
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_precision(device: torch.device | str, preference: str | None = None) -> str:
    """`preference` if given (checked), else the table in the module docstring."""
    if preference is not None:
        if preference not in PRECISIONS:
            raise ValueError(f"unknown precision {preference!r}; valid precisions: {', '.join(PRECISIONS)}")
        return preference
    device = torch.device(device)
    if device.type == "cuda":
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return "bf16" if native_bf16 else "fp16"
    return "fp32"


def autocast(device: torch.device | str, precision: str | None = None) -> contextlib.AbstractContextManager:
    """The autocast context of `precision` on `device` (default: `pick_precision`); none for fp32."""
    device = torch.device(device)
    precision = pick_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class SkipStep(Exception):
    """Raised inside an optimizer's closure when the (unscaled) gradients are not finite: the step is skipped."""


class LossScaler:
    """A dynamic loss scale for fp16 training (see the module docstring): `scale` the loss, `unscale` the gradients
    (raising `SkipStep` on an overflow), then `update(skipped)` once per optimizer step."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_interval: int = 2000, factor: float = 2.0,
                 min_scale: float = 1.0) -> None:
        self.scale, self.growth_interval, self.factor, self.min_scale = init_scale, growth_interval, factor, min_scale
        self.good_steps = 0
        self.skipped = 0

    @torch.no_grad()
    def unscale(self, params: list[torch.nn.Parameter]) -> None:
        """Divide every gradient by the scale; raise `SkipStep` if any is inf or NaN."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        torch._foreach_mul_(grads, 1.0 / self.scale)
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if not bool(finite):
            raise SkipStep(f"the gradients overflowed at loss scale {self.scale:g}")

    def update(self, skipped: bool) -> None:
        """After a step: halve the scale if it was skipped, double it after `growth_interval` finite steps."""
        if skipped:
            self.scale = max(self.scale / self.factor, self.min_scale)
            self.good_steps = 0
            self.skipped += 1
            return
        self.good_steps += 1
        if self.good_steps % self.growth_interval == 0:
            self.scale *= self.factor

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale, self.good_steps, self.skipped = state["scale"], int(state["good_steps"]), int(state["skipped"])
