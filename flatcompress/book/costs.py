"""What a tier costs: CPU time measured from the result records, GPU-hours estimated for the GPU tiers.

The GPU estimate is arithmetic over the tier's plan (`flatcompress.sweep.tier_plan`, the runs each chapter makes):
per run, the training examples it passes forward and backward (a SAM step: two passes; an evaluation: a third of
one), divided by the device's throughput for BERT-base at length 128. The throughput is `make gpu-check`'s
measurement when `benchmarks/results/gpu_check.json` holds one of that device, otherwise a reference value
(`REFERENCE_EXAMPLES_PER_SECOND`), and the estimate says which.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence

from flatcompress.profiles import get_profile
from flatcompress.records import iter_records

__all__ = ["TRAIN_SIZES", "DEV_SIZES", "REFERENCE_EXAMPLES_PER_SECOND", "measured_minutes", "chapter_minutes",
           "throughput", "job_passes", "plan_gpu_hours", "chapter_gpu_hours"]

# Training-set sizes of the paper's tasks (GLUE train splits; SQuAD v1.1 train) and of the bundled tasks (our
# split of Rotten Tomatoes by movie; Reuters R8's train and test files).
TRAIN_SIZES = {"mnli": 392_702, "qqp": 363_846, "qnli": 104_743, "sst2": 67_349, "cola": 8_551, "stsb": 5_749,
               "mrpc": 3_668, "rte": 2_490, "squad": 87_599, "rotten_tomatoes": 10_161, "reuters8": 5_485}
DEV_SIZES = {"mnli": 9_815, "qqp": 40_430, "qnli": 5_463, "sst2": 872, "cola": 1_043, "stsb": 1_500, "mrpc": 408,
             "rte": 277, "squad": 10_570, "rotten_tomatoes": 2_591, "reuters8": 2_189}
# Training examples per second, BERT-base, length 128, batch 32, AdamW, mixed precision (fp16 on a T4, bf16 on the
# others): reference values until `make gpu-check` has measured the device, not measurements of ours.
REFERENCE_EXAMPLES_PER_SECOND = {"T4": 150.0, "V100": 400.0, "A100": 1000.0, "H100": 1800.0}
_GPU_CHECK = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "gpu_check.json"


def _cost_kind(record: dict) -> str:
    """Which work a record's time belongs to: a fine-tuning record is a full run (`finetune`), an IMP or
    standard-pruning round (`imp`: a mask or a starting point without a ticket's origin), or a run under a ticket
    (`tickets`); other records by their kind (an IMP record's own time is its pruning, added to `imp`)."""
    if record["kind"] != "finetune":
        return record["kind"]
    if (record.get("masks") or {}).get("origin"):
        return "tickets"
    return "imp" if record.get("masks") or record.get("start") else "finetune"


def _minutes(results_dir: str | Path, group: Callable[[dict], str], cpu: bool = False) -> dict[str, float]:
    """Wall-clock minutes of the records under `results_dir`, summed per `group(record)`, each record once
    (`cpu=True`: times the run's torch thread count, CPU-minutes)."""
    out: dict[str, float] = {}
    if not Path(results_dir).is_dir():
        return out
    for record in iter_records(results_dir):
        if "wall_time_s" in record and "kind" in record:
            threads = ((record.get("provenance") or {}).get("torch_threads") or 1) if cpu else 1
            out[group(record)] = out.get(group(record), 0.0) + threads * record["wall_time_s"] / 60
    return out


def measured_minutes(results_dir: str | Path) -> dict[str, float]:
    """Wall-clock minutes recorded under `results_dir`, per kind of work (see `_cost_kind`): each record counted once."""
    return _minutes(results_dir, _cost_kind)


def _chapter(record: dict) -> str:
    """The chapter whose runs a record belongs to (the first chapter that needs it)."""
    kind = record["kind"]
    origin = (record.get("masks") or {}).get("origin")
    if kind == "finetune" and origin:
        return "mask-or-optimizer" if origin.get("task") == record["config"]["task"] else "tickets-travel"
    if kind in ("imp",) or (kind == "finetune" and (record.get("masks") or record.get("start"))):
        return "mask-or-optimizer" if record["config"].get("l1", 0.0) > 0 else "lottery-tickets"
    return {"finetune": "train-flat", "sharpness": "train-flat", "dropout_replay": "train-flat",
            "oneshot": "pruning-without-retraining", "quantization": "quantization",
            "cofi": "structured-pruning"}.get(kind, kind)


def chapter_minutes(results_dir: str | Path, cpu: bool = False) -> dict[str, float]:
    """Wall-clock minutes recorded under `results_dir` (`cpu=True`: times the run's thread count, CPU-minutes), per
    chapter that first needs the run, each record once: full fine-tuning and sharpness count for Train flat, IMP
    rounds for the lottery chapter, the l1 control and runs on a ticket of the same task for mask-or-optimizer,
    runs on a ticket of another task for tickets-travel."""
    return _minutes(results_dir, _chapter, cpu)


def throughput(device: str, gpu_check: str | Path | None = None) -> tuple[float, str]:
    """(examples/s, source) of AdamW training steps of BERT-base on `device` (a name such as "T4" or "A100"): measured
    when the gpu-check record (`gpu_check`, default the committed one) is of that device, else the reference value."""
    import json

    path = Path(gpu_check) if gpu_check is not None else _GPU_CHECK
    if path.is_file():
        record = json.loads(path.read_text())
        if device.lower() in str(record.get("device", "")).lower():
            precision = "bf16" if record.get("bf16_native") else "fp16"
            for check in record.get("checks", []):
                for row in check.get("rows", []):
                    if (row.get("model", "").startswith("bert-base") and row.get("optimizer") == "adamw"
                            and row.get("precision") == precision):
                        return float(row["examples_per_second"]), f"measured on {record['device']} ({precision})"
    if device not in REFERENCE_EXAMPLES_PER_SECOND:
        raise ValueError(f"no throughput for {device!r}: measure it with `make gpu-check`, or use one of "
                         f"{', '.join(REFERENCE_EXAMPLES_PER_SECOND)}")
    return REFERENCE_EXAMPLES_PER_SECOND[device], "reference value, not measured here"


def _train_passes(tier, task: str, optimizer: str) -> float:
    """Example passes of one fine-tuning run: training (SAM twice) and one dev evaluation per epoch (a third), in
    passes of the tier's length (SQuAD's 384-token inputs cost 3 passes of 128)."""
    config = tier.config(task, optimizer=optimizer)
    n = min(config.max_train_examples or TRAIN_SIZES[task], TRAIN_SIZES[task])
    length = config.max_length / tier.max_length
    return length * config.epochs * (n * (2 if optimizer == "sam" else 1) + _dev(tier, task) / 3)


def _dev(tier, task: str) -> int:
    return min(tier.max_eval_examples or DEV_SIZES[task], DEV_SIZES[task])


@functools.lru_cache(maxsize=None)
def _encoder_weights(model: str) -> int | None:
    """The encoder's matrix weights of a named model (counted on a weightless copy), None for a test model."""
    from flatcompress.masks import prunable_count
    from flatcompress.models import get_model_spec
    from flatcompress.pruning.magnitude import meta_model

    architecture = get_model_spec(model).architecture
    return prunable_count(meta_model(architecture)) if architecture else None


def model_factor(model: str | None, tier) -> float:
    """How many of the tier's model's example passes one pass of `model` costs: the ratio of their encoders' matrix
    weights (a transformer's work per token is proportional to them); 1 for the tier's own model."""
    if model is None or model == tier.model:
        return 1.0
    ours, theirs = _encoder_weights(tier.model), _encoder_weights(model)
    return theirs / ours if ours and theirs else 1.0


def job_passes(job, tier) -> float:
    """Example passes (forward and backward) one job of a tier's plan costs; see the module docstring."""
    from flatcompress.cofi.run import CoFiSettings

    a = job.args
    if job.method in ("finetune", "imp"):  # an IMP chain re-trains every pruned round (rewound or pruned weights)
        rounds = len(tier.imp_schedule) - 1 if job.method == "imp" else 1
        return model_factor(a.get("model"), tier) * rounds * _train_passes(tier, a["task"], a.get("optimizer", "adamw"))
    if job.method == "sharpness":  # per epsilon ~2 loss-and-gradient evaluations per L-BFGS-B iteration, + Hessian
        settings = {"n_examples": 256, "maxiter": 10, "hessian_iters": 20, **tier.sharpness}
        return settings["n_examples"] * (3 * 2 * settings["maxiter"] + 2 * settings["hessian_iters"])
    if job.method in ("one_shot", "quantization"):
        return len(tier.oneshot_sparsities if job.method == "one_shot" else (0, 1)) * _dev(tier, a["task"]) / 3
    if job.method == "cofi":  # teacher forward and student forward-backward per example and epoch
        c = CoFiSettings(**tier.cofi)
        n = tier.train_examples_by_task.get(a["task"]) or tier.max_train_examples or TRAIN_SIZES[a["task"]]
        return (c.distill_epochs + c.prune_epochs + c.finetune_epochs) * min(n, TRAIN_SIZES[a["task"]]) * 4 / 3
    if job.method == "reproduce" and job.chapter == "mask-or-optimizer":  # random, Adam and SAM masks x optimizers
        tasks = job.args.get("tasks") or tier.chapter_tasks.get(job.chapter, tier.tasks)
        return len(job.args.get("seeds", [0])) * sum(3 * (_train_passes(tier, t, "adamw")
                                                          + _train_passes(tier, t, "sam")) for t in tasks)
    if job.method == "reproduce" and job.chapter == "tickets-travel":  # each ticket fine-tuned on every other task
        tasks = job.args.get("tasks") or tier.chapter_tasks.get(job.chapter, tier.tasks)
        return len(job.args.get("seeds", [0])) * sum(2 * _train_passes(tier, t, o) for t in tasks for o in
                                                     ("adamw", "sam")) * max(len(tasks) - 1, 0) / max(len(tasks), 1)
    return 0.0  # dropout replay (8 batches), the other chapters' notebooks (they only read)


def plan_gpu_hours(profile: str, device: str = "T4", gpu_check: str | Path | None = None,
                   chapters: Sequence[str] | None = None) -> tuple[dict[str, float], str]:
    """GPU-hours per chapter of tier `profile` on `device` (each run counted once, in the first chapter that needs
    it, as the plan lists it), and the throughput's source."""
    from flatcompress.sweep.plan import tier_plan

    tier = get_profile(profile)
    if tier.hardware == "cpu":
        raise ValueError(f"{profile!r} is a CPU tier; its cost is measured from its records, not estimated")
    speed, source = throughput(device, gpu_check)
    out: dict[str, float] = {}
    for job in tier_plan(profile, chapters=chapters):
        if job.id == f"chapter-{job.chapter}":
            continue  # a chapter's closing notebook computes nothing its runs (and per-seed notebooks) did not
        out[job.chapter] = out.get(job.chapter, 0.0) + job_passes(job, tier) / speed / 3600
    return out, source


def chapter_gpu_hours(profile: str, device: str = "T4", gpu_check: str | Path | None = None) -> dict[str, float]:
    """GPU-hours of each chapter of tier `profile` run alone on a fresh runtime (with the fine-tuning runs and IMP
    chains it needs), on `device`: what one Colab session must hold."""
    from flatcompress.book.reproduce import CHAPTERS

    return {c: sum(plan_gpu_hours(profile, device, gpu_check, [c])[0].values()) for c in CHAPTERS}

