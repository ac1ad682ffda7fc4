"""The GPU check (`make gpu-check`): everything the chapters do, once, on a CUDA device, in a few minutes.

On a machine with CUDA it runs, each check timed and its failure recorded rather than fatal:

1. the precision matrix: a smoke fine-tuning run (tiny BERT) in bf16 (where native), fp16 (with its loss scaler)
   and fp32, with AdamW and SAM: every model on the device, scores finite;
2. masks on the device: a smoke run under a 50% random mask keeps the pruned weights exactly zero;
3. measurements on the device: one-shot pruning, ε-sharpness (subspace) and the dropout-replay check of a smoke run;
4. CoFi: distil, prune with gates on the device, prune physically, fine-tune (smoke schedule);
5. MiniLM-L6 fine-tuning for 64 steps in fp16 and in bf16 on Rotten Tomatoes (offline): loss falls, seconds taken;
6. throughput (examples/s, training steps at batch 32, length 128) of MiniLM-L6 and of a random-init BERT-base
   (built from its config, no download), AdamW and SAM, per precision: the numbers the cost model needs;
7. every chapter at the smoke tier through papermill (`flatcompress reproduce --profile smoke`), on the device.

It writes `benchmarks/results/gpu_check.json` (device, versions, each check's status, seconds and numbers). On a
machine without CUDA it says so and writes nothing: the checks that need no GPU are the test suite's.

    python benchmarks/gpu_check.py [--skip-chapters] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

RESULTS = Path(__file__).parent / "results" / "gpu_check.json"
DEVICE = "cuda"  # `--device cpu` runs the same checks on the CPU: a dry run of this script, nothing written


def _run(name: str, fn: Callable[[], dict[str, Any]], out: list[dict[str, Any]]) -> None:
    start = time.perf_counter()
    try:
        details = fn()
        status = "passed"
    except Exception as exc:  # noqa: BLE001 - a failed check is recorded; the others still run
        details = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        status = "failed"
    seconds = time.perf_counter() - start
    out.append({"check": name, "status": status, "seconds": round(seconds, 1), **details})
    print(f"[{status}] {name} ({seconds:.0f} s)" + (f": {details['error']}" if status == "failed" else ""), flush=True)


def _on_device(model: torch.nn.Module, device: torch.device) -> bool:
    return all(t.device.type == device.type for t in [*model.parameters(), *model.buffers()])


def _smoke(tmp: Path, **overrides: Any):
    from flatcompress import get_profile
    from flatcompress.training import finetune

    config = get_profile("smoke").config("rotten_tomatoes", **overrides)
    return finetune(config, results_dir=tmp, progress=False, save_checkpoint=True, device=DEVICE)


def precision_matrix(tmp: Path) -> dict[str, Any]:
    from flatcompress.device import pick_precision

    native = DEVICE == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    precisions = ["fp16", "fp32"] + (["bf16"] if native else [])
    rows = []
    for precision in precisions:
        for optimizer in ("adamw", "sam"):
            result = _smoke(tmp / f"{precision}-{optimizer}", optimizer=optimizer, precision=precision,
                            optimizer_kwargs={"rho": 0.05} if optimizer == "sam" else {})
            assert _on_device(result.model, torch.device(DEVICE)), "a trained model is off the device"
            assert all(h["train_loss"] == h["train_loss"] for h in result.record["history"]), "a NaN loss"
            rows.append({"precision": precision, "optimizer": optimizer, "score": result.score,
                         "skipped_steps": result.record["skipped_steps"]})
    return {"default_precision": pick_precision(DEVICE), "runs": rows}


def masks_on_device(tmp: Path) -> dict[str, Any]:
    from flatcompress import get_profile
    from flatcompress.masks import prunable_names
    from flatcompress.models import load_model
    from flatcompress.pruning.magnitude import random_masks
    from flatcompress.tasks import get_task
    from flatcompress.training import finetune

    model = load_model("tiny", get_task("rotten_tomatoes"))
    masks = random_masks(model, 0.5, 0, prunable_names(model))
    config = get_profile("smoke").config("rotten_tomatoes")
    result = finetune(config, masks, results_dir=tmp, progress=False, device=DEVICE)
    params = dict(result.model.named_parameters())
    leaked = sum(int((params[n][~m.to(params[n].device)] != 0).sum()) for n, m in masks.items())
    assert leaked == 0, f"{leaked} pruned weights are not zero"
    return {"pruned_nonzero": leaked, "score": result.score}


def measurements_on_device(tmp: Path) -> dict[str, Any]:
    from flatcompress.flatness.dropout_replay import measure_dropout_replay
    from flatcompress.flatness.sharpness_records import measure_sharpness
    from flatcompress.pruning.oneshot import one_shot_sweep

    run = _smoke(tmp)
    oneshot = one_shot_sweep(run, (0.0, 0.5), results_dir=tmp, device=DEVICE)
    sharp = measure_sharpness(run, results_dir=tmp, dim=10, n_examples=32, maxiter=2, hessian_iters=3, device=DEVICE)
    replay = measure_dropout_replay(run, results_dir=tmp, draws=2, batch_size=8, device=DEVICE)
    return {"oneshot": [r["score"] for r in oneshot["rows"]], "sharpness": sharp["sharpness"],
            "hessian": sharp["hessian_top_eigenvalue"], "replay_rows": len(replay["rows"])}


def cofi_on_device(tmp: Path) -> dict[str, Any]:
    from flatcompress import get_profile
    from flatcompress.cofi.run import CoFiSettings, cofi

    teacher = _smoke(tmp)
    record = cofi(teacher, CoFiSettings(**get_profile("smoke").cofi), results_dir=tmp, progress=False, device=DEVICE)
    return {"score": record["score"], "sparsity": record["sparsity"], "student": record["parameters"]["student"]}


def minilm_finetune(tmp: Path) -> dict[str, Any]:
    from flatcompress.config import FinetuneConfig
    from flatcompress.training import finetune

    rows = []
    for precision in ("fp16", "bf16"):
        config = FinetuneConfig(task="rotten_tomatoes", model="minilm-l6", lr=5e-5, epochs=1, batch_size=32,
                                max_train_examples=2048, max_eval_examples=512, precision=precision)
        result = finetune(config, results_dir=tmp / precision, progress=False, device=DEVICE)
        rows.append({"precision": precision, "score": result.score, "seconds": result.record["wall_time_s"],
                     "train_loss": result.record["history"][0]["train_loss"]})
    return {"runs": rows}


def throughput(tmp: Path) -> dict[str, Any]:
    """Training examples per second (batch 32, length 128, random tokens), per model, optimizer and precision."""
    from transformers import AutoModelForSequenceClassification, BertConfig

    from flatcompress.device import autocast
    from flatcompress.models import load_model
    from flatcompress.optim import build_optimizer
    from flatcompress.tasks import get_task

    device = torch.device(DEVICE)
    models = {"minilm-l6": lambda: load_model("minilm-l6", get_task("sst2")),
              "bert-base (random init)": lambda: AutoModelForSequenceClassification.from_config(BertConfig(num_labels=2))}
    rows = []
    for name, build in models.items():
        for precision in ("fp16", "bf16", "fp32"):
            for optimizer in ("adamw", "sam"):
                model = build().to(device).train()
                opt = build_optimizer(optimizer, model.parameters(), lr=1e-5)
                batch = {"input_ids": torch.randint(1000, 5000, (32, 128), device=device),
                         "attention_mask": torch.ones(32, 128, dtype=torch.long, device=device),
                         "labels": torch.randint(0, 2, (32,), device=device)}

                def closure() -> torch.Tensor:
                    opt.zero_grad(set_to_none=True)
                    with autocast(device, precision):
                        loss = model(**batch).loss.float()
                    loss.backward()
                    return loss

                for _ in range(3):
                    opt.step(closure)
                sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
                sync()
                start, steps = time.perf_counter(), 10
                for _ in range(steps):
                    opt.step(closure)
                sync()
                rows.append({"model": name, "precision": precision, "optimizer": optimizer,
                             "examples_per_second": 32 * steps / (time.perf_counter() - start)})
                del model, opt
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return {"batch": 32, "length": 128, "rows": rows}


def chapters(tmp: Path) -> dict[str, Any]:
    from flatcompress.book.reproduce import reproduce

    rows = reproduce("smoke", results_dir=tmp / "smoke", progress=False)
    return {"summary_rows": len(rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-chapters", action="store_true", help="leave out the papermill run of every chapter")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of the script)")
    parser.add_argument("--only", nargs="+", help="run only the checks whose names start with these words")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here, so the CUDA checks are skipped (nothing is written); the checks that "
              "need no GPU run in the test suite (`make test`)")
        return 0
    from flatcompress.provenance import provenance

    checks: list[dict[str, Any]] = []
    steps = [("precision matrix", precision_matrix), ("masks on the device", masks_on_device),
             ("measurements on the device", measurements_on_device), ("CoFi on the device", cofi_on_device),
             ("MiniLM-L6 fine-tuning, fp16 and bf16", minilm_finetune), ("throughput", throughput)]
    if not args.skip_chapters:
        steps.append(("every chapter at the smoke tier", chapters))
    if args.only:
        steps = [(n, f) for n, f in steps if any(n.startswith(o) for o in args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in steps:
            _run(name, lambda fn=fn, name=name: fn(Path(tmp) / name.replace(" ", "-")), checks)
    on_gpu = DEVICE == "cuda"
    record = {"kind": "benchmark", "name": "gpu_check", "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
              "bf16_native": on_gpu and torch.cuda.is_bf16_supported(including_emulation=False),
              "passed": sum(c["status"] == "passed" for c in checks), "failed": sum(c["status"] == "failed" for c in checks),
              "checks": checks, "provenance": provenance(DEVICE)}
    if on_gpu or args.out != str(RESULTS):  # a CPU dry run never overwrites the GPU record
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"gpu-check: {record['passed']} passed, {record['failed']} failed on {record['device']} -> {args.out}")
    return 1 if record["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
