"""Pick the accelerator and the matching autocast context."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["pick_device", "autocast"]


def pick_device(preference: str | None = None) -> torch.device:
    """`preference` if given, else CUDA, then Apple MPS, then CPU."""
    if preference:
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (where it is fast and needs no loss scaling); full fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
