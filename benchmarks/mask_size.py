"""Size of a saved mask file, per prunable weight, for BERT-base and MiniLM-L6 (from their configs: no weights).

The target is about one bit per prunable weight plus a small header (about 11 MB for BERT-base's
85,524,480 prunable weights). Each model is built on the `meta` device, a random mask at 50% over
its prunable set is written with `flatcompress.pruning.mask_files.save_masks`, and the file's size is
divided by the number of prunable weights; the file is read back and compared.

    python benchmarks/mask_size.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from flatcompress.masks import prunable_count, prunable_names
from flatcompress.provenance import provenance
from flatcompress.pruning.magnitude import meta_model, random_masks
from flatcompress.pruning.mask_files import load_masks, save_masks
from flatcompress.records import write_record

MODELS = {"bert-base": True, "minilm-l6": False}  # architecture: is the pooler prunable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mask_size.json"))
    args = parser.parse_args()
    rows = []
    for architecture, pooler in MODELS.items():
        model = meta_model(architecture)
        names = prunable_names(model, pooler)
        masks = random_masks(model, 0.5, seed=0, names=names)
        with tempfile.TemporaryDirectory() as folder:
            path = save_masks(Path(folder) / "mask.fcmask", masks, architecture)
            size = path.stat().st_size
            back = load_masks(path).masks
        assert all(torch.equal(back[n], masks[n]) for n in masks)
        weights = prunable_count(model, pooler)
        rows.append({"model": architecture, "prunable_weights": weights, "tensors": len(names), "bytes": size,
                     "bits_per_weight": 8 * size / weights, "header_bytes": size - (weights + 7) // 8})
        print(f"{architecture}: {weights:,} prunable weights in {len(names)} tensors -> {size / 1e6:.2f} MB "
              f"({8 * size / weights:.4f} bits per weight, header {rows[-1]['header_bytes']:,} bytes)")
    write_record(args.out, {"kind": "benchmark", "name": "mask_size", "rows": rows, "provenance": provenance("cpu")},
                 overwrite=True)


if __name__ == "__main__":
    main()
