r"""Iterative magnitude pruning (IMP): the lottery-ticket procedure of Chen et al. (2020) that the paper runs
with Adam and with SAM (§2.2.1, §3.3, Figures 1, 2, 8, 9, Table 5).

With sparsities $0 = s_0 < s_1 < \dots < s_{K-1}$ (the paper: $s_k = 0.1k$ to 90%), round $k$

1. fine-tunes $\theta_k$ from its starting point under the mask $m_k$ (pruned weights stay exactly zero),
   with a fresh optimizer and learning-rate schedule, keeping the best epoch: the score at sparsity $s_k$;
2. prunes: $m_{k+1}$ = global magnitude mask of $\theta_k$ at $s_{k+1}$ over the prunable set, the
   weights $m_k$ removed ranked first (`flatcompress.pruning.magnitude.magnitude_masks`);
3. sets round $k+1$'s starting point:
   - **IMP with rewinding** (`rewind=True`, the lottery ticket): the pre-trained weights $\theta_0$, with the
     task head from $\theta_k$ (`head="keep"`: Chen et al.'s code rewinds only the `bert.*` tensors) or a
     fresh head drawn from the seed (`head="rewind"`);
   - **standard pruning** (`rewind=False`): $\theta_k$ itself, "continue training immediately after pruning".

Each round is an ordinary `finetune` run with its own result record and weights, so round 0 is the
full fine-tuning run of the Train-flat chapter (the same record), and an interrupted IMP resumes:
finished rounds come back from their records, the round that was running resumes from its last epoch,
and each round's mask is a file (`<record stem>/round-<k>.fcmask`, `flatcompress.pruning.mask_files`). The IMP
record lists every round: target and actual sparsity, metrics, and the seconds spent training and
pruning (the pruning overhead benchmark reads them). Its `wall_time_s` is the pruning and rewinding
time only; the rounds' training time is in their own records (and summed in `train_seconds`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from flatcompress.config import FinetuneConfig, check_sparsity
from flatcompress.device import pick_device
from flatcompress.errors import DataSourceError
from flatcompress.masks import masks_sparsity, prunable_names
from flatcompress.models import get_model_spec
from flatcompress.profiles import PAPER_IMP_SCHEDULE
from flatcompress.provenance import provenance
from flatcompress.pruning.magnitude import head_names, magnitude_masks
from flatcompress.pruning.mask_files import load_masks, save_masks
from flatcompress.records import config_key, look_up, read_record, record_path, write_record
from flatcompress.training import FinetuneResult, StartingPoint, finetune, run_data

__all__ = ["HEAD_MODES", "check_schedule", "imp", "imp_stem", "round_result"]

HEAD_MODES = ("keep", "rewind")


def check_schedule(sparsities: Sequence[float]) -> tuple[float, ...]:
    """A schedule starts dense (0) and rises strictly, every sparsity in [0, 1)."""
    values = tuple(check_sparsity(s) for s in sparsities)
    if len(values) < 2 or values[0] != 0.0 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"an IMP schedule starts at 0 and rises strictly (e.g. 0, 0.2, 0.4), got {list(sparsities)}")
    return values


def imp_stem(config: FinetuneConfig, rewind: bool) -> str:
    """`<model>-<optimizer>[-l1]-<imp|std>-seed<seed>`: the IMP record's name, and its masks' folder, before the key."""
    l1 = "-l1" if config.l1 > 0 else ""
    return f"{config.model}-{config.optimizer}{l1}-{'imp' if rewind else 'std'}-seed{config.seed}"


def _starting_point(previous: FinetuneResult, rewind: bool, head: str,
                    device: str | None = None) -> StartingPoint | None:
    """Round k+1's starting weights from round k's model (see the module docstring)."""
    if rewind and head == "rewind":
        return None  # pre-trained weights and the seed's fresh head: finetune's default
    model = previous.load_model(device)
    state = model.state_dict()
    if rewind:
        return StartingPoint(f"head of {previous.record['key']}", {n: state[n].detach().clone() for n in head_names(model)})
    return StartingPoint(f"weights of {previous.record['key']}", {n: v.detach().clone() for n, v in state.items()})


def imp(config: FinetuneConfig, sparsities: Sequence[float] = PAPER_IMP_SCHEDULE, rewind: bool = True,
        head: str = "keep", results_dir: str | Path = "results", include_pooler: bool | None = None,
        compute: bool = True, progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Run (or resume, or read) IMP over `sparsities`; returns the IMP record.

    `rewind=False` is standard pruning. `include_pooler` defaults to the model's `pooler_pretrained`.
    With `compute=False` the record is only looked up (`MissingRecordError` when it is absent).
    """
    schedule = check_schedule(sparsities)
    if head not in HEAD_MODES:
        raise ValueError(f"head must be one of {', '.join(HEAD_MODES)}, got {head!r}")
    if include_pooler is None:
        include_pooler = get_model_spec(config.model).pooler_pretrained
    def settings_for(data: str | None) -> dict[str, Any]:
        return {"finetune": config.result_fields(data), "sparsities": list(schedule), "rewind": rewind,
                "head": head if rewind else None, "include_pooler": include_pooler}

    legacy = record_path(results_dir, "imp", config.task, imp_stem(config, rewind), config_key(settings_for(None)))
    try:
        digest = run_data(config)[1]["digest"]
    except DataSourceError:
        if compute:
            raise
        for candidate in sorted(legacy.parent.glob(f"{imp_stem(config, rewind)}-*.json")):  # read-only: no data needed
            record = read_record(candidate)
            if config_key(settings_for(record["settings"]["finetune"].get("data"))) == record.get("key"):
                return {**record, "path": str(candidate)}
        digest = None
    settings = settings_for(digest)
    key = config_key(settings)
    path = record_path(results_dir, "imp", config.task, imp_stem(config, rewind), key)
    found = look_up(path, compute, "IMP", [legacy])  # a record written before data fingerprints: keyed by config
    if found is not None:
        return found

    folder = path.with_suffix("")
    start_time = time.perf_counter()
    made_by = provenance(pick_device(device))  # the code that runs is the code at the start
    rows: list[dict[str, Any]] = []
    masks, start, previous, names = None, None, None, None
    for k, target in enumerate(schedule):
        prune_seconds = 0.0
        mask_path = None
        if k > 0:
            tic = time.perf_counter()
            mask_path = folder / f"round-{k}.fcmask"
            if mask_path.exists():
                masks = load_masks(mask_path).masks
            else:
                model = previous.load_model(device)
                names = names or prunable_names(model, include_pooler)
                masks = magnitude_masks(model, target, names, masks)
                save_masks(mask_path, masks, config.model, meta={"task": config.task, "optimizer": config.optimizer,
                                                               "round": k, "rewind": rewind, "imp_key": key[:12]})
            start = _starting_point(previous, rewind, head, device)
            prune_seconds = time.perf_counter() - tic
        if progress:
            print(f"IMP {config.task} {config.optimizer} {'rewind' if rewind else 'standard'}: round {k}, "
                  f"sparsity {target:.0%}", flush=True)
        result = finetune(config, masks, results_dir=results_dir, progress=progress, save_checkpoint=True,
                          device=device, start_from=start)
        record = result.record
        rows.append({"round": k, "target_sparsity": target, "sparsity": masks_sparsity(masks) if masks else 0.0,
                     "score": record["score"], "metrics": record["metrics"], "best_epoch": record["best_epoch"],
                     "record": os.path.relpath(result.path, results_dir),
                     "mask": os.path.relpath(mask_path, results_dir) if mask_path else None,
                     "train_seconds": record["wall_time_s"], "prune_seconds": prune_seconds})
        previous = result
    out = {"kind": "imp", "key": key, "settings": settings, "config": config.to_dict(),
           "task": record["task"], "rows": rows,
           "n_prunable": int(sum(m.numel() for m in masks.values())),
           "wall_time_s": float(np.sum([r["prune_seconds"] for r in rows])),  # its own work; training is in the rounds'
           "train_seconds": float(np.sum([r["train_seconds"] for r in rows])),
           "elapsed_s": time.perf_counter() - start_time,
           "provenance": made_by}
    write_record(path, out)
    return {**out, "path": str(path)}


def round_result(record: dict[str, Any], k: int, results_dir: str | Path, device: str | None = None,
                 progress: bool = False) -> FinetuneResult:
    """Round `k`'s fine-tuned model of the IMP record `record`, with its weights: kept by the chain, or (committed
    records carry no weights) trained again round by round from the record's masks, with progress bars if
    `progress`; training is deterministic, so each round is the model its record describes (checked: the same
    record)."""
    if not 0 <= k < len(record["rows"]):
        raise ValueError(f"round {k} is not in the record's {len(record['rows'])} rounds")
    config = FinetuneConfig.from_record(record["config"])
    settings, results_dir = record["settings"], Path(results_dir)
    previous = None
    for row in record["rows"][:k + 1]:
        masks = load_masks(results_dir / row["mask"]).masks if row["mask"] else None
        start = _starting_point(previous, settings["rewind"], settings["head"], device) if previous else None
        previous = finetune(config, masks, results_dir=results_dir, progress=progress, save_checkpoint=True,
                            device=device, start_from=start)
        if previous.path.resolve() != (results_dir / row["record"]).resolve():
            raise RuntimeError(f"round {row['round']} trained again is not the record's run: {previous.path} "
                               f"instead of {row['record']}")
    return previous

