"""How the `cpu` tier's recipe is chosen: on data held out from the *training* sets, never on the dev sets the
verdicts use (its records live in `results/cpu-search/`).

Every search run is an ordinary fine-tuning run with `holdout=500`: 500 training examples, drawn with the data seed
and disjoint from the training subset, are its only evaluation split. The stages, as they were run:

1. a grid on SST-2, MRPC and RTE: AdamW at lr 5e-5 and 1e-4; SAM at the same rates with rho 0.05 (the paper's) and
   0.02 (0.05 scaled by sqrt(22.7M / 110M), MiniLM-L6's parameters against BERT-base's); batch 16, 2 epochs
   (4,000 SST-2 examples: 500 steps; the full MRPC and RTE training sets less the held-out ones);
2. RTE with AdamW for 6 epochs (RTE had not trained in stage 1), and MRPC for 5 epochs (SAM stayed near the
   majority rate at rho 0.05 in stage 1): SAM at stage 1's choice (lr 1e-4, rho 0.02) and AdamW at its choice
   (lr 5e-5). A third run, SAM at lr 5e-5 and rho 0.05, was stopped after 3 of its 5 epochs when stage 1's choice
   became rho 0.02, and is not in the records;
3. SWA (for the lottery-tickets chapter's claim 12) on SST-2, 4,000 examples, 2 epochs at batch 16 as in stage 1,
   a checkpoint every half epoch and the mean of the last two (after 1.5 and 2 epochs): lr 5e-5 (AdamW's choice),
   1e-4 and 2e-4 (the paper runs SWA at 4x its Adam learning rate: 8e-5 against 2e-5).

`search_plan()` is the queue plan of these runs; `search_table()` reads their records; `chosen()` picks, per
optimizer, the setting with the best mean held-out score over the tasks where every setting of that optimizer ran.

    python -c "from flatcompress.search import *; from flatcompress.sweep import write_plan; write_plan('s.json', search_plan())"
    flatcompress sweep --plan s.json --workers 2
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from flatcompress.sweep.jobs import Job

__all__ = ["HOLDOUT", "STAGES", "search_plan", "search_table", "chosen", "untrained_settings"]

HOLDOUT = 500
_BASE = {"batch_size": 16, "max_length": 128, "holdout": HOLDOUT, "max_eval_examples": None, "seed": 0}
_GRID = [("adamw", 5e-5, None), ("adamw", 1e-4, None), ("sam", 5e-5, 0.05), ("sam", 1e-4, 0.05), ("sam", 5e-5, 0.02),
         ("sam", 1e-4, 0.02)]
STAGES: dict[str, list[dict[str, Any]]] = {
    "grid": [{"task": task, "optimizer": o, "lr": lr, **({"rho": rho} if rho else {}), "epochs": 2,
              "max_train_examples": 4000 if task == "sst2" else None}
             for o, lr, rho in _GRID for task in ("rte", "mrpc", "sst2")
             if not (task == "rte" and rho == 0.02)],  # skipped: RTE had not trained with AdamW at either rate
    "longer": [{"task": "rte", "optimizer": "adamw", "lr": 5e-5, "epochs": 6, "max_train_examples": None}]
              + [{"task": "mrpc", "optimizer": o, "lr": lr, **({"rho": rho} if rho else {}), "epochs": 5,
                  "max_train_examples": None} for o, lr, rho in (("sam", 1e-4, 0.02), ("adamw", 5e-5, None))],
    "swa": [{"task": "sst2", "optimizer": "swa", "lr": lr, "epochs": 2, "max_train_examples": 4000}
            for lr in (5e-5, 1e-4, 2e-4)],
}


def search_plan(stage: str = "grid", results_dir: str = "results/cpu-search") -> list[Job]:
    """The queue jobs of one search stage (the `cpu` profile's chapter call, every setting given explicitly)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    jobs = []
    for run in STAGES[stage]:
        rho = f"-rho{run['rho']:g}" if "rho" in run else ""
        name = f"{run['task']}-{run['optimizer']}-lr{run['lr']:g}{rho}-e{run['epochs']}-s0"
        jobs.append(Job(name, "train-flat", "cpu", "finetune", {**_BASE, **run}, results_dir=results_dir))
    return jobs


def search_table(results_dir: str | Path) -> pd.DataFrame:
    """One row per search run: task, optimizer, lr, rho, epochs, steps, held-out score x 100, the majority rate,
    and whether it trained (`flatcompress.stats.health`)."""
    from flatcompress.records import iter_records
    from flatcompress.stats import ModelEval, health

    rows = []
    for record in iter_records(results_dir, "finetune") if Path(results_dir, "finetune").is_dir() else []:
        config = record["config"]
        if not config.get("holdout"):
            continue
        h = health(ModelEval.from_record(record))
        rows.append({"task": config["task"], "optimizer": config["optimizer"], "lr": config["lr"],
                     "rho": config["optimizer_kwargs"].get("rho") if config["optimizer"] == "sam" else None,
                     "epochs": config["epochs"], "steps": record["steps"], "train examples": record["data"]["n_train"],
                     "held-out": 100 * record["score"], "majority": 100 * record["data"]["majority_rate"],
                     "trained": h.trained})
    columns = ["task", "optimizer", "lr", "rho", "epochs", "steps", "train examples", "held-out", "majority", "trained"]
    return pd.DataFrame(rows, columns=columns).sort_values(["task", "epochs", "optimizer", "lr", "rho"],
                                                           na_position="first", ignore_index=True)


def chosen(table: pd.DataFrame, epochs: int = 2) -> dict[str, dict[str, Any]]:
    """Per optimizer, the (lr, rho) with the best mean held-out score over the tasks where every such setting ran
    with `epochs` epochs and at least one of them trained, and the mean it scored. A task on which no setting of the
    optimizer trained cannot rank its settings (their differences are noise around the majority rate)."""
    out = {}
    for optimizer, part in table[table.epochs == epochs].groupby("optimizer"):
        settings = part.groupby(["lr", "rho"], dropna=False).task.apply(set)
        common = set.intersection(*settings) & set(part.task[part.trained.astype(bool)])
        if not common:
            raise ValueError(f"no task on which every {optimizer} setting ran and one of them trained")
        means = part[part.task.isin(common)].groupby(["lr", "rho"], dropna=False)["held-out"].mean()
        (lr, rho), best = means.idxmax(), means.max()
        out[optimizer] = {"lr": float(lr), "rho": None if pd.isna(rho) else float(rho), "mean held-out": float(best),
                          "tasks": sorted(common)}
    return out


def untrained_settings(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The tasks on which no search run trained, and the settings that did not train on the other tasks (as
    "task optimizer lr [rho] [epochs]" lines)."""
    trained_any = table.groupby("task").trained.any()
    hopeless = sorted(trained_any.index[~trained_any])
    failed = table[~table.trained.astype(bool) & ~table.task.isin(hopeless)]
    lines = [f"{r.task} {r.optimizer} lr {r.lr:g}" + ("" if pd.isna(r.rho) else f" ρ {r.rho:g}") + f", {r.epochs} epochs"
             for r in failed.itertuples()]
    return hopeless, lines
