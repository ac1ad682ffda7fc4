"""Masks as files: one bit per prunable weight, a small JSON header and a checksum.

Layout: the 8 bytes `FCMASK01`, a little-endian uint32 header length, the UTF-8 JSON header
(`model`, `sparsity`, `tensors` as `[name, shape]` pairs in order, `bits`, `sha256` of the packed
bits, and any `meta`), then the keep-bits of every tensor, flattened in order and packed 8 to a byte
(`numpy.packbits`). A BERT-base mask (85,524,480 weights) takes 10.7 MB; a MiniLM-L6 one 1.3 MB.
Files are written atomically. Loading checks the checksum, and `load_masks(path, model=...)` checks
every tensor against the model, naming the first that is missing or has another shape.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flatcompress.masks import Masks, check_masks_fit, masks_sparsity
from flatcompress.records import atomic_write

__all__ = ["MaskFile", "save_masks", "load_masks", "check_masks_fit"]

MAGIC = b"FCMASK01"


@dataclass
class MaskFile:
    """A loaded mask file: the masks (True = keep), the model they were made for, their sparsity and extras."""

    masks: dict[str, torch.Tensor]
    model: str
    sparsity: float
    meta: dict[str, Any] = field(default_factory=dict)


def save_masks(path: str | Path, masks: Masks, model: str, meta: dict[str, Any] | None = None) -> Path:
    """Write `masks` (made for model `model`) to `path`, atomically; returns the path."""
    path = Path(path)
    names = list(masks)
    bits = np.concatenate([masks[n].detach().to(torch.bool).cpu().numpy().ravel() for n in names])
    packed = np.packbits(bits).tobytes()
    header = {"format": 1, "model": model, "sparsity": masks_sparsity(masks),
              "tensors": [[n, list(masks[n].shape)] for n in names], "bits": int(bits.size),
              "sha256": hashlib.sha256(packed).hexdigest(), "meta": meta or {}}
    head = json.dumps(header, separators=(",", ":")).encode()
    return atomic_write(path, lambda fh: fh.write(MAGIC + struct.pack("<I", len(head)) + head + packed))


def load_masks(path: str | Path, model: torch.nn.Module | None = None) -> MaskFile:
    """Read a mask file; with `model`, check that every mask has a parameter of the same shape."""
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != MAGIC:
        raise ValueError(f"{path} is not a flatcompress mask file (it does not start with {MAGIC!r})")
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12:12 + length])
    packed = data[12 + length:]
    if hashlib.sha256(packed).hexdigest() != header["sha256"]:
        raise ValueError(f"{path} is corrupt: its checksum does not match its contents")
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=header["bits"]).astype(bool)
    masks, start = {}, 0
    for name, shape in header["tensors"]:
        size = int(np.prod(shape))
        masks[name] = torch.from_numpy(bits[start:start + size].reshape(shape).copy())
        start += size
    if model is not None:
        check_masks_fit(masks, model, header["model"], path)
    return MaskFile(masks, header["model"], header["sparsity"], header["meta"])

