"""Pruning and rewinding overhead per IMP round, as a fraction of that round's fine-tuning time.

Runs IMP with rewinding on MiniLM-L6 and bundled Rotten Tomatoes with the `cpu` tier's recipe, shortened
to 1,000 training examples and 3 epochs per round (fewer give an upper bound of the fraction in less
time), into a temporary folder, and reads each round's `prune_seconds` (global magnitude mask over the
10.6M prunable weights, mask file, the next round's starting point) and `train_seconds` from the IMP
record. The target is under 2%.

    python benchmarks/imp_overhead.py [--train-examples 1000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from flatcompress import get_profile
from flatcompress.provenance import provenance
from flatcompress.pruning.imp import imp
from flatcompress.records import write_record

SCHEDULE = (0.0, 0.3, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "imp_overhead.json"))
    args = parser.parse_args()
    config = get_profile("cpu").config("rotten_tomatoes", max_train_examples=args.train_examples, epochs=args.epochs,
                                       max_eval_examples=256)
    with tempfile.TemporaryDirectory() as folder:
        record = imp(config, SCHEDULE, rewind=True, results_dir=folder, progress=False)
    rounds = [{"round": r["round"], "sparsity": r["sparsity"], "train_seconds": r["train_seconds"],
               "prune_seconds": r["prune_seconds"], "fraction": r["prune_seconds"] / r["train_seconds"]}
              for r in record["rows"][1:]]
    worst = max(r["fraction"] for r in rounds)
    for r in rounds:
        print(f"round {r['round']} ({r['sparsity']:.0%}): pruning + rewinding {r['prune_seconds']:.2f} s, "
              f"fine-tuning {r['train_seconds']:.1f} s -> {100 * r['fraction']:.2f}%")
    print(f"worst round: {100 * worst:.2f}% of its fine-tuning time (target < 2%)")
    write_record(args.out, {"kind": "benchmark", "name": "imp_overhead",
                            "setup": {"model": config.model, "task": config.task, "train_examples": args.train_examples,
                                      "epochs": args.epochs, "schedule": list(SCHEDULE)},
                            "rounds": rounds, "worst_fraction": worst, "target": 0.02, "provenance": provenance("cpu")},
                 overwrite=True)


if __name__ == "__main__":
    main()
