"""Inference latency of a physically pruned MiniLM-L6 vs the dense model on this CPU, side by side in one run.

CoFi's pruned models are small dense networks, so removing structures speeds them up on any hardware
(the paper, via CoFi, reports about 10x at 95% sparsity for BERT-base on a GPU). This script prunes
MiniLM-L6 to CoFi sparsities with `flatcompress.cofi.shapes.uniform_gates` (the same fraction of heads and
FFN units kept in every layer: a stand-in for a learned structure) and to the structures that CoFi runs
learned (the heads, FFN units and hidden width their records keep in each layer); it times each with
`flatcompress.quantization.quantize.latency` (batch 1 and 32, length 128, warm-up, median) next to the dense model.

    python benchmarks/cofi_speed.py [--keep 0.4 0.05] [--records results/cpu/cofi/...json ...]

By default the learned structures are those of every committed `cpu` CoFi record.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from flatcompress.book.report import OPTIMIZER_ROW
from flatcompress.cofi.model import GatedBert, prune_physically
from flatcompress.cofi.shapes import CoFiGates, EncoderShape, uniform_gates
from flatcompress.models import load_model
from flatcompress.provenance import provenance
from flatcompress.quantization.quantize import latency
from flatcompress.records import iter_records, read_record, write_record
from flatcompress.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--keep", nargs="+", type=float, default=[0.4, 0.05],
                        help="fractions of heads and FFN units kept per layer (0.05: about 95%% sparsity)")
    parser.add_argument("--records", nargs="*", type=Path,
                        help="cofi records whose learned structures are timed as well (default: the cpu tier's)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cofi_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = GatedBert(load_model(args.model, get_task("sst2")).eval())
    shape = EncoderShape.of(dense.config)
    gates = CoFiGates(shape)
    candidates = [("dense", None)] + [(f"uniform, keep {k:g}", uniform_gates(shape, k)) for k in args.keep]
    records = ([read_record(p) for p in args.records] if args.records is not None else
               list(iter_records(Path(__file__).resolve().parent.parent / "results" / "cpu", "cofi")))
    for record in records:
        learned = {"head": torch.zeros(shape.layers, shape.heads), "intermediate": torch.zeros(shape.layers, shape.intermediate)}
        for i, layer in enumerate(record["structure"]):
            learned["head"][i, :layer["heads"]] = 1
            learned["intermediate"][i, :layer["ffn_units"]] = 1
        learned |= {"head_layer": (learned["head"].sum(-1) > 0).float(), "mlp": (learned["intermediate"].sum(-1) > 0).float(),
                    "hidden": (torch.arange(shape.hidden) < record["structure"][0]["hidden"]).float()}
        teacher = OPTIMIZER_ROW[record["config"]["optimizer"]]
        candidates.append((f"learned: {record['config']['task']}, {teacher} teacher, seed {record['config']['seed']}",
                           learned))
    rows = []
    for name, z in candidates:
        model = dense if z is None else prune_physically(dense, z)
        row = {"model": name, "sparsity": 0.0 if z is None else gates.sparsity(z),
               "parameters": sum(p.numel() for p in model.parameters()),
               "batch1_s": latency(model, 1, 128, args.repeats, 2),
               "batch32_s": latency(model, 32, 128, max(3, args.repeats // 3), 1)}
        rows.append(row)
    for row in rows:
        row["faster_batch1"] = rows[0]["batch1_s"] / row["batch1_s"]
        row["faster_batch32"] = rows[0]["batch32_s"] / row["batch32_s"]
        print(f"{row['model']:32s} sparsity {row['sparsity']:.3f}  {row['parameters'] / 1e6:5.1f}M params  "
              f"batch 1 {1e3 * row['batch1_s']:7.1f} ms ({row['faster_batch1']:.2f}x)  "
              f"batch 32 {1e3 * row['batch32_s']:8.1f} ms ({row['faster_batch32']:.2f}x)")
    write_record(args.out, {"kind": "benchmark", "name": "cofi_speed",
                            "setup": {"model": args.model, "length": 128, "threads": args.threads,
                                      "repeats": args.repeats},
                            "rows": rows, "provenance": provenance("cpu")}, overwrite=True)


if __name__ == "__main__":
    main()
