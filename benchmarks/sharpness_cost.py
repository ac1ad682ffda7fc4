"""Time and peak memory of the paper's ε-sharpness (p = 100, 10 L-BFGS-B iterations) on minilm-l6.

The random projection is regenerated in chunks, so memory does not hold the n x p matrix
(22.7M x 100 floats = 8.5 GiB for minilm-l6, 41 GiB for BERT-base); the script reports the
process's peak resident memory so the claim is measured, not assumed. Loss on 256 Rotten
Tomatoes examples (batches of 64, length 64).

    python benchmarks/sharpness_cost.py [--cache-gib 6]   (0 regenerates the subspace for every product)
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from flatcompress.data import encode, load_task, pad_collate
from flatcompress.flatness.sharpness import RandomSubspace, batches_loss, epsilon_sharpness
from flatcompress.models import load_model, load_tokenizer
from flatcompress.provenance import provenance
from flatcompress.records import write_record
from flatcompress.tasks import get_task


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--cache-gib", type=float, default=6.0, help="memory for keeping the subspace (0: regenerate)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sharpness_cost.json"))
    args = parser.parse_args()
    task = get_task("rotten_tomatoes")
    features = encode(load_task(task, max_train_examples=args.examples).train, load_tokenizer("minilm-l6"), 64)
    batches = [pad_collate(features[i:i + 64]) for i in range(0, len(features), 64)]
    torch.manual_seed(0)
    model = load_model("minilm-l6", task)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    before = _peak_rss_mib()
    start = time.perf_counter()
    subspace = RandomSubspace(n, 100, seed=0, cache_gib=args.cache_gib)
    setup = time.perf_counter() - start
    value = epsilon_sharpness(model, batches_loss(batches), 5e-3, subspace=subspace)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    dense_gib = n * 100 * 4 / 2**30
    print(f"n = {n:,} parameters; sharpness(5e-3) = {value:.3f}; {seconds:.1f} s (subspace set-up {setup:.1f} s); "
          f"peak RSS {peak:.0f} MiB (+{peak - before:.0f} MiB during the measurement) vs {dense_gib:.1f} GiB for a dense A")
    write_record(args.out, {"kind": "benchmark", "name": "sharpness_cost",
                            "setup": {"model": "minilm-l6", "examples": args.examples, "dim": 100, "maxiter": 10,
                                      "epsilon": 5e-3, "device": "cpu", "cache_gib": args.cache_gib,
                                      "cache_dtype": str(subspace._cache_dtype)},
                            "n_parameters": n, "sharpness": value, "seconds": seconds, "subspace_setup_s": setup,
                            "peak_rss_mib": peak, "rss_increase_mib": peak - before, "dense_matrix_gib": dense_gib,
                            "provenance": provenance("cpu")}, overwrite=True)


if __name__ == "__main__":
    main()
