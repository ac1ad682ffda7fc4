"""Throughput of flatcompress's fine-tuning loop vs Hugging Face `Trainer`, side by side in one run.

Same model (minilm-l6), same examples (Reuters R8, whose texts all fill the 64-token window,
so every batch is exactly 32 x 64), same collator, AdamW at the same learning rate with linear
decay, gradient clipping at 1.0, CPU. Runs alternate (ours, Trainer, ours, Trainer, ...) and
the ratio of median throughputs is reported; the issue's target is ours >= 0.95x Trainer.

    python benchmarks/loop_vs_trainer.py [--steps 24] [--repeats 2]

Writes benchmarks/results/loop_vs_trainer.json (with provenance).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from flatcompress import finetune, get_profile
from flatcompress.data import encode, load_task, pad_collate
from flatcompress.models import load_model, load_tokenizer
from flatcompress.provenance import provenance
from flatcompress.records import write_record
from flatcompress.tasks import get_task

BATCH, LENGTH, LR = 32, 64, 5e-5


def ours(n_examples: int) -> float:
    config = get_profile("cpu").config("reuters8", epochs=1, batch_size=BATCH, max_length=LENGTH, lr=LR,
                                       max_train_examples=n_examples, max_eval_examples=BATCH)
    result = finetune(config, results_dir=None, progress=False, device="cpu")
    return n_examples / result.record["history"][0]["train_seconds"]


def trainer(n_examples: int) -> float:
    from transformers import Trainer, TrainingArguments

    task = get_task("reuters8")
    data = load_task(task, max_train_examples=n_examples, max_eval_examples=BATCH)
    features = encode(data.train, load_tokenizer("minilm-l6"), LENGTH)
    torch.manual_seed(0)
    model = load_model("minilm-l6", task)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, learning_rate=LR, num_train_epochs=1,
                                 lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
                                 logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
                                 use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0)
        t = Trainer(model=model, args=args, train_dataset=features, data_collator=pad_collate)
        start = time.perf_counter()
        t.train()
        return n_examples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "loop_vs_trainer.json"))
    args = parser.parse_args()
    n = args.steps * BATCH
    ours(BATCH * 2)  # warm-up: imports, tokenizer and kernel caches
    runs: dict[str, list[float]] = {"ours": [], "trainer": []}
    for _ in range(args.repeats):
        runs["ours"].append(ours(n))
        runs["trainer"].append(trainer(n))
        print(f"ours {runs['ours'][-1]:.1f} ex/s, Trainer {runs['trainer'][-1]:.1f} ex/s", flush=True)
    ratio = statistics.median(runs["ours"]) / statistics.median(runs["trainer"])
    print(f"ours / Trainer throughput: {ratio:.3f} (target >= 0.95)")
    write_record(args.out, {"kind": "benchmark", "name": "loop_vs_trainer",
                            "setup": {"model": "minilm-l6", "task": "reuters8", "batch": BATCH, "length": LENGTH,
                                      "steps": args.steps, "repeats": args.repeats, "device": "cpu"},
                            "examples_per_s": runs, "ratio": ratio, "target": 0.95,
                            "provenance": provenance("cpu")}, overwrite=True)


if __name__ == "__main__":
    main()
