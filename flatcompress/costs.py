"""What a tier costs: CPU time measured from the result records, GPU-hours estimated for the GPU tiers.

The GPU estimate is arithmetic, not a measurement: training examples x epochs x forward-backward
passes (1 for Adam, 2 for SAM) x seeds, divided by an assumed throughput for BERT-base at length 128
with mixed precision on one Colab-class GPU (`ASSUMED_EXAMPLES_PER_SECOND`). Replace the assumption
with your own measurement to re-estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from flatcompress.profiles import get_profile
from flatcompress.records import iter_records

__all__ = ["TRAIN_SIZES", "ASSUMED_EXAMPLES_PER_SECOND", "measured_minutes", "chapter_minutes", "finetune_gpu_hours"]

# Training-set sizes of the paper's tasks (GLUE train splits; SQuAD v1.1 train).
TRAIN_SIZES = {"mnli": 392_702, "qqp": 363_846, "qnli": 104_743, "sst2": 67_349, "cola": 8_551, "stsb": 5_749,
               "mrpc": 3_668, "rte": 2_490, "squad": 87_599}
ASSUMED_EXAMPLES_PER_SECOND = 150.0  # BERT-base, length 128, fp16, a T4-class GPU: an assumption, not a measurement


def _cost_kind(record: dict) -> str:
    """Which work a record's time belongs to: a fine-tuning record is a full run (`finetune`), an IMP or
    standard-pruning round (`imp`: a mask or a starting point without a ticket's origin), or a run under a ticket
    (`tickets`); other records by their kind (an IMP record's own time is its pruning, added to `imp`)."""
    if record["kind"] != "finetune":
        return record["kind"]
    if (record.get("masks") or {}).get("origin"):
        return "tickets"
    return "imp" if record.get("masks") or record.get("start") else "finetune"


def measured_minutes(results_dir: str | Path) -> dict[str, float]:
    """Wall-clock minutes recorded under `results_dir`, per kind of work (see `_cost_kind`): each record counted once."""
    out: dict[str, float] = {}
    if not Path(results_dir).is_dir():
        return out
    for record in iter_records(results_dir):
        if "wall_time_s" in record and "kind" in record:
            kind = _cost_kind(record)
            out[kind] = out.get(kind, 0.0) + record["wall_time_s"] / 60
    return out


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
    out: dict[str, float] = {}
    if not Path(results_dir).is_dir():
        return out
    for record in iter_records(results_dir):
        if "wall_time_s" in record and "kind" in record:
            chapter = _chapter(record)
            threads = (record.get("provenance") or {}).get("torch_threads") or 1 if cpu else 1
            out[chapter] = out.get(chapter, 0.0) + threads * record["wall_time_s"] / 60
    return out


def finetune_gpu_hours(profile: str, optimizers: Sequence[str] = ("adamw", "sam"),
                       tasks: Sequence[str] | None = None) -> float:
    """Estimated GPU-hours to fine-tune every task of a full-data tier once per optimizer and seed."""
    tier = get_profile(profile)
    if tier.hardware == "cpu":
        raise ValueError(f"{profile!r} is a CPU tier; its cost is measured from its records, not estimated")
    passes = sum(2 if o == "sam" else 1 for o in optimizers)
    examples = sum(TRAIN_SIZES[t] * tier.epochs_by_task.get(t, tier.epochs) for t in (tasks or tier.tasks))
    return examples * passes * len(tier.seeds) / ASSUMED_EXAMPLES_PER_SECOND / 3600
