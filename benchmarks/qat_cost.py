"""Quantization-aware training's step time / AdamW's, side by side in one run: what QAT costs over a fine-tune.

minilm-l6 at the `cpu` recipe's batch (16), length 64 (Reuters R8 texts, which fill the window), CPU, AdamW
for both and the fine-tuning loop's own closure. One model trains plainly, the other with every Linear layer and
embedding fake-quantized to int8 (`flatcompress.quantization.qat.prepare_qat`). Blocks of steps alternate and the
ratio of median step times is reported, with the same ratio for evaluation (a forward pass at batch 32).

    python benchmarks/qat_cost.py [--steps 5] [--blocks 3]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Callable

import torch
from _timing import alternate

from flatcompress import get_profile
from flatcompress.data import encode, load_task, pad_collate
from flatcompress.models import load_model, load_tokenizer
from flatcompress.optim import build_optimizer
from flatcompress.provenance import provenance
from flatcompress.quantization.qat import prepare_qat
from flatcompress.records import write_record
from flatcompress.tasks import get_task
from flatcompress.training import _make_closure

BATCH, LENGTH = 16, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one sweep worker's share)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "qat_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("reuters8")
    features = encode(load_task(task, max_train_examples=2 * BATCH).train, load_tokenizer("minilm-l6"), LENGTH)
    batch, eval_batch = pad_collate(features[:BATCH]), pad_collate(features)
    assert batch["input_ids"].shape == (BATCH, LENGTH)
    config = get_profile("cpu").config("reuters8", batch_size=BATCH, max_length=LENGTH)
    models, optimizers = {}, {}
    for name in ("adamw", "qat"):
        torch.manual_seed(0)
        models[name] = load_model("minilm-l6", task).train()
        if name == "qat":
            prepare_qat(models[name])
        optimizers[name] = build_optimizer("adamw", models[name].parameters(), lr=config.lr)

    def step(name: str) -> Callable[[], None]:
        def call() -> None:
            optimizers[name].step(_make_closure(models[name], optimizers[name], batch, config, None,
                                                torch.device("cpu"), 1))
        return call

    def evaluate(name: str) -> Callable[[], None]:
        inputs = {k: v for k, v in eval_batch.items() if k != "labels"}

        def call() -> None:
            with torch.no_grad():
                models[name].eval()(**inputs)
        return call

    train = alternate({name: step(name) for name in models}, args.steps, args.blocks)
    evals = alternate({name: evaluate(name) for name in models}, args.steps, args.blocks)
    ratio = statistics.median(train["qat"]) / statistics.median(train["adamw"])
    eval_ratio = statistics.median(evals["qat"]) / statistics.median(evals["adamw"])
    print(f"AdamW {statistics.median(train['adamw']):.3f} s/step, QAT {statistics.median(train['qat']):.3f} s/step: "
          f"QAT costs {ratio:.2f}x a plain step; evaluation {eval_ratio:.2f}x")
    write_record(args.out, {"kind": "benchmark", "name": "qat_cost",
                            "setup": {"model": "minilm-l6", "batch": BATCH, "eval_batch": 2 * BATCH, "length": LENGTH,
                                      "steps": args.steps, "blocks": args.blocks, "threads": args.threads,
                                      "device": "cpu"},
                            "seconds_per_step": train, "seconds_per_eval": evals, "ratio": ratio,
                            "eval_ratio": eval_ratio, "provenance": provenance("cpu")},
                 overwrite=True)


if __name__ == "__main__":
    main()
