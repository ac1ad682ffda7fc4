"""fp32 vs int8 for MiniLM-L6 on this CPU, per back-end, side by side in one run: size and latency.

The paper reports int8 dynamic quantization as 2.5x smaller and 1.5-2x faster for BERT-base (§3.4.5).
The targets here: at least 1.4x faster and, with the embeddings quantized too, at least 2.5x smaller.
`flatcompress.quantization.quantize.size_and_speed` measures, for every back-end with and without the embeddings, the
serialized size and the median latency (batch 1 and 32, length 128, warm-up, median of repeats) against
the fp32 torch model, and also times the fp32 ONNX Runtime model (part of ONNX Runtime's speed-up is not
int8 at all). All models run with the same thread count.

    python benchmarks/quantize_speed.py [--threads 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from flatcompress.models import load_model
from flatcompress.provenance import provenance
from flatcompress.quantization.quantize import size_and_speed
from flatcompress.records import write_record
from flatcompress.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10, help="timed passes at batch 1 (batch 32: a third)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "quantize_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = size_and_speed(load_model(args.model, get_task("sst2")), args.repeats)
    for r in rows:
        print(f"{r['backend']:12s} {'int8' if r['int8'] else 'fp32'}{'+emb' if r['embeddings'] else '    '} "
              f"{r['bytes'] / 1e6:7.1f} MB ({r['smaller']:.2f}x smaller)  batch 1 {1e3 * r['batch1_s']:8.1f} ms "
              f"({r['faster_batch1']:.2f}x)  batch 32 {1e3 * r['batch32_s']:9.1f} ms ({r['faster_batch32']:.2f}x)")
    write_record(args.out, {"kind": "benchmark", "name": "quantize_speed",
                            "setup": {"model": args.model, "length": 128, "threads": args.threads,
                                      "repeats": args.repeats, "baseline": "fp32 torch"},
                            "targets": {"faster": 1.4, "smaller_with_embeddings": 2.5},
                            "rows": rows, "provenance": provenance("cpu")}, overwrite=True)


if __name__ == "__main__":
    main()
