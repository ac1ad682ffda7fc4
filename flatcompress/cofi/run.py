"""One CoFi run: prune a pre-trained student to a target sparsity while distilling a fine-tuned teacher
(Xia, Zhong & Chen 2022; the paper's §2.2.2 and Table 2, where the teacher is fine-tuned with Adam or SAM).

The run has three stages, all on the teacher's task and training data:

1. **distill** (CoFi's pre-pruning fine-tuning): the student learns from the teacher, no gates;
2. **prune**: CoFi's gates are sampled every step and the Lagrangian (`flatcompress.cofi.shapes`) pulls the
   expected sparsity to the target, which rises from 0 over the first `warmup_epochs`;
3. **finetune**: the evaluation gates are fixed, the student is pruned physically
   (`flatcompress.cofi.model.prune_physically`) and trained further; its best epoch is kept.

The loss in every stage is CoFi's distillation objective,

$$\\mathcal{L} = (1 - \\alpha)\\, T^2\\, \\mathrm{KL}\\big(\\sigma(t / T) \\,\\|\\, \\sigma(s / T)\\big)
+ \\alpha \\sum_{i \\in \\mathcal{T}} \\mathrm{MSE}\\big(W h^{s}_{m(i)},\\, h^{t}_{i}\\big)\\; (+\\, \\mathcal{L}_c \\text{ while pruning}),$$

with temperature $T = 2$, four evenly spaced teacher layers $\\mathcal{T}$, a learned map $W$ (identity at the
start) and CoFi's layer matching $m(i)$: the student layer, not before $m(i-1)$ and not pruned away,
closest to teacher layer $i$. For regression tasks the KL term is a squared error between the outputs.
A pruned model is *accepted* when its sparsity is within `tolerance` of the target.

`cofi(teacher, settings)` writes `<results_dir>/cofi/<task>/<model>-<teacher optimizer>-seed<s>-<key>.json`;
a snapshot after every epoch lets an interrupted run continue where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from flatcompress.cofi.model import GatedBert, load_pruned, prune_hidden_input, prune_physically, save_pruned
from flatcompress.cofi.shapes import CoFiGates, EncoderShape, Lagrangian, check_target
from flatcompress.config import FinetuneConfig
from flatcompress.data import RunInputs, run_inputs
from flatcompress.device import autocast, pick_device
from flatcompress.models import load_model
from flatcompress.provenance import provenance
from flatcompress.records import atomic_write, config_key, look_up, record_path, run_reference, write_record
from flatcompress.tasks import get_task
from flatcompress.training import (FinetuneResult, epoch_batches, evaluate_splits, load_snapshot, prediction_blocks,
                                   seed_everything)

__all__ = ["CoFiSettings", "cofi", "teacher_layers", "layer_distillation_loss", "prediction_distillation_loss"]


@dataclass(frozen=True)
class CoFiSettings:
    """CoFi's schedule and loss weights (paper A.10 and CoFi's scripts: prune 20 epochs on large GLUE tasks,
    100 on small ones, warm-up 2, fine-tune 20; lr 2e-5, 3e-5 after pruning; α = 0.9 for SST-2 and QNLI)."""

    target: float = 0.95
    distill_epochs: int = 1
    prune_epochs: int = 20
    warmup_epochs: int = 2
    finetune_epochs: int = 20
    lr: float = 2e-5
    finetune_lr: float = 3e-5
    reg_lr: float = 0.01
    layer_alpha: float = 0.9
    temperature: float = 2.0
    tolerance: float = 0.01
    seed: int = 0
    batch_size: int | None = None  # None: the teacher's; smaller gives a short schedule more constraint steps

    def __post_init__(self) -> None:
        check_target(self.target)
        if self.prune_epochs < 1 or min(self.distill_epochs, self.finetune_epochs, self.warmup_epochs) < 0:
            raise ValueError("prune_epochs must be >= 1 and the other epoch counts >= 0")
        if self.warmup_epochs > self.prune_epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) cannot exceed prune_epochs ({self.prune_epochs})")
        if min(self.lr, self.finetune_lr, self.reg_lr, self.temperature, self.tolerance) <= 0:
            raise ValueError("learning rates, temperature and tolerance must be positive")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}")
        if not 0.0 <= self.layer_alpha <= 1.0:
            raise ValueError(f"layer_alpha must be in [0, 1], got {self.layer_alpha}")

    @property
    def epochs(self) -> int:
        return self.distill_epochs + self.prune_epochs + self.finetune_epochs

    def stage(self, epoch: int) -> str:
        """The stage of 1-based `epoch`: distill, prune or finetune."""
        if epoch <= self.distill_epochs:
            return "distill"
        return "prune" if epoch <= self.distill_epochs + self.prune_epochs else "finetune"


def teacher_layers(layers: int) -> list[int]:
    """Four evenly spaced teacher layers (0-based), as CoFi's {3, 6, 9, 12} of BERT-base's twelve."""
    return sorted({math.ceil((k + 1) * layers / 4) - 1 for k in range(4)})


def layer_distillation_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], transform: torch.nn.Module,
                            head_layer: torch.Tensor | None = None) -> torch.Tensor:
    """CoFi's layer distillation: each chosen teacher layer is matched to the closest (in MSE after `transform`)
    student layer at or after the previous match, skipping student layers whose attention is pruned away.

    `student` and `teacher` are the layer outputs (without the embeddings)."""
    chosen = [teacher[i] for i in teacher_layers(len(teacher))]
    mapped = [transform(s) for s in student]
    losses = torch.stack([torch.stack([F.mse_loss(m, t) for m in mapped]) for t in chosen])  # teacher x student
    alive = head_layer != 0 if head_layer is not None else torch.ones(len(student), dtype=torch.bool)
    last, picked = 0, []
    for row in losses.detach():
        order = torch.argsort(row)
        allowed = order[(order >= last) & alive.to(order.device)[order]]
        last = int(allowed[0]) if len(allowed) else last
        picked.append(last)
    return losses[torch.arange(len(chosen)), torch.tensor(picked)].sum()


def prediction_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """$T^2\\,\\mathrm{KL}(\\sigma(t/T) \\| \\sigma(s/T))$ per example; the squared error for one-output (regression) heads."""
    if student.shape[-1] == 1:
        return F.mse_loss(student, teacher)
    return F.kl_div(F.log_softmax(student / temperature, -1), F.softmax(teacher / temperature, -1),
                    reduction="batchmean") * temperature ** 2


def _key(teacher: dict[str, Any], settings: CoFiSettings) -> str:
    return config_key({"teacher": teacher["key"], "settings": dataclasses.asdict(settings)})


def cofi(teacher: FinetuneResult, settings: CoFiSettings = CoFiSettings(), results_dir: str | Path | None = "results",
         compute: bool = True, progress: bool = True, device: str | None = None,
         save_checkpoint: bool = False) -> dict[str, Any]:
    """Prune a pre-trained student of the teacher's model to `settings.target` while distilling `teacher`;
    return the `cofi` record (and write it under `results_dir`). `compute=False` only looks it up.

    The steps: look the run up, build the student, gates, constraint and layer map (`_CoFiRun.build`), resume from
    the last snapshot (`_resume`), then per epoch: fix the gates and prune physically when fine-tuning starts
    (`_end_pruning`), fresh optimizers per stage (`_optimizers`), train (`_train_epoch`), evaluate and snapshot
    (`_evaluate_epoch`); last, the record (`_cofi_record`).

    Question answering is refused: the prediction-distillation loss here compares class logits, and the paper's
    CoFi experiments (Tables 2 and 7) are on GLUE only."""
    if get_task(teacher.config.task).kind == "qa":
        raise ValueError(f"CoFi distils a classifier or regressor; {teacher.config.task!r} is a question-answering "
                         "task (its span logits are not distilled here, and the paper's CoFi tables have no SQuAD)")
    key = _key(teacher.record, settings)
    path = None if results_dir is None else record_path(results_dir, "cofi", teacher.config.task,
                                                        teacher.config.stem(settings.seed), key)
    found = look_up(path, compute, "cofi")
    if found is not None:
        return found
    start_time = time.perf_counter()
    dev = pick_device(device)
    made_by = provenance(dev)  # the code that runs is the code at the start
    run = _CoFiRun.build(teacher, settings, dev)
    partial = path.with_suffix(".partial") if path is not None else None
    state, saved = _resume(partial, run, progress)

    current, predictions = None, None
    for epoch in range(state["epoch"] + 1, settings.epochs + 1):
        stage = settings.stage(epoch)
        if stage == "finetune" and state["z"] is None:
            _end_pruning(run, state)
        if current != stage:  # fresh optimizers and schedule for each stage
            main, schedule, extra = _optimizers(run, stage)
            if saved.get("stage") == stage:  # resuming inside a stage: its optimizers go on where they were
                for opt, opt_state in zip((main, *extra), saved["optimizers"]):
                    opt.load_state_dict(opt_state)
                schedule.load_state_dict(saved["schedule"])
            current = stage
        tick = time.perf_counter()
        losses = _train_epoch(run, epoch, stage, main, schedule, extra, progress)
        predictions = _evaluate_epoch(run, epoch, stage, losses, tick, state, partial)
        state["epoch"] = epoch
        if partial is not None:
            _snapshot(partial, run.student, run.gates, run.constraint, run.transform, state,
                      state["elapsed"] + time.perf_counter() - start_time,
                      {"stage": stage, "optimizers": [o.state_dict() for o in (main, *extra)],
                       "schedule": schedule.state_dict()})
        if progress:
            row = state["history"][-1]
            tqdm.write(f"CoFi {run.task.title} epoch {epoch} ({stage}): {run.task.main_metric} {row['score']:.4f}"
                       + (f", sparsity {row['sparsity']:.3f}" if "sparsity" in row else ""))
    record = _cofi_record(run, teacher, key, results_dir, state, predictions, made_by,
                          state["elapsed"] + time.perf_counter() - start_time)
    if path is not None:
        write_record(path, record)
        if save_checkpoint and partial is not None and (partial / "best.safetensors").exists():
            for suffix in (".safetensors", ".json"):
                os.replace(partial / f"best{suffix}", path.with_suffix(f".student{suffix}"))
        _remove(partial)
    return {**record, "path": str(path) if path else None}


@dataclass
class _CoFiRun:
    """What one CoFi run trains: the data as features, the teacher, and the student with its gates, Lagrangian
    constraint and layer map, all on the device (`student` and `transform` are replaced when pruned)."""

    settings: CoFiSettings
    config: FinetuneConfig
    task: Any
    inputs: RunInputs
    teacher_model: torch.nn.Module
    student: GatedBert
    gates: CoFiGates
    constraint: Lagrangian
    transform: torch.nn.Module
    batch_size: int
    steps_per_epoch: int
    device: torch.device

    @classmethod
    def build(cls, teacher: FinetuneResult, settings: CoFiSettings, dev: torch.device) -> "_CoFiRun":
        config = teacher.config
        task = get_task(config.task)
        inputs = run_inputs(config)
        teacher_model = teacher.load_model(dev).eval()
        seed_everything(settings.seed)
        student = GatedBert(load_model(config.model, task, config.num_layers)).to(dev)
        shape = EncoderShape.of(student.config)
        gates, constraint = CoFiGates(shape).to(dev), Lagrangian(settings.target).to(dev)
        transform = torch.nn.Linear(shape.hidden, teacher_model.config.hidden_size).to(dev)
        with torch.no_grad():  # W starts as the identity
            transform.weight.copy_(torch.eye(teacher_model.config.hidden_size, shape.hidden))
            transform.bias.zero_()
        batch_size = settings.batch_size or config.batch_size
        steps_per_epoch = -(-len(inputs.train) // batch_size)
        constraint.warmup_steps = settings.warmup_epochs * steps_per_epoch
        return cls(settings, config, task, inputs, teacher_model, student, gates, constraint,
                   transform, batch_size, steps_per_epoch, dev)


def _resume(partial: Path | None, run: _CoFiRun, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, snapshot): after the last finished epoch of an interrupted run (student, gates, constraint, map and
    random state restored into `run`), or a fresh state and an empty snapshot."""
    state: dict[str, Any] = {"epoch": 0, "history": [], "best": None, "elapsed": 0.0, "z": None}
    if partial is None or not (partial / "state.pt").exists():
        return state, {}
    saved = load_snapshot(partial / "state.pt")
    state = saved["state"]
    run.student = load_pruned(partial / saved["student_file"]).to(run.device)
    run.gates.load_state_dict(saved["gates"]), run.constraint.load_state_dict(saved["constraint"])
    if state["z"] is not None:  # resuming in the fine-tuning stage: the map reads the pruned hidden states
        run.transform = prune_hidden_input(run.transform, state["z"]).to(run.device)
    run.transform.load_state_dict(saved["transform"])
    torch.random.set_rng_state(saved["rng"])
    if run.device.type == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"])
    if progress:
        tqdm.write(f"resuming {partial.name} after epoch {state['epoch']}")
    return state, saved


def _end_pruning(run: _CoFiRun, state: dict[str, Any]) -> None:
    """The end of pruning: fix the evaluation gates and remove the structures they close."""
    state["z"] = _on_cpu(run.gates.deterministic())
    state["pruned_sparsity"] = run.gates.sparsity()
    run.student = prune_physically(run.student.cpu(), state["z"]).to(run.device)
    run.transform = prune_hidden_input(run.transform, state["z"]).to(run.device)


def _optimizers(run: _CoFiRun, stage: str) -> tuple[torch.optim.Optimizer, Any, list]:
    """AdamW over the student and the map with a linear decay over the stage; while pruning, AdamW on the gates and
    a maximizing AdamW on the Lagrange multipliers."""
    settings = run.settings
    remaining_epochs = {"distill": settings.distill_epochs, "prune": settings.prune_epochs,
                        "finetune": settings.finetune_epochs}[stage]
    lr = settings.finetune_lr if stage == "finetune" else settings.lr
    fused = run.device.type in ("cpu", "cuda")  # one kernel for all tensors: 5x faster steps on a CPU (22.7M weights)
    main = torch.optim.AdamW(list(run.student.parameters()) + list(run.transform.parameters()), lr=lr,
                             weight_decay=0.0, fused=fused)
    total = max(1, remaining_epochs * run.steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(main, lambda step: max(0.0, 1 - step / total))
    extra = []
    if stage == "prune":
        extra = [torch.optim.AdamW(run.gates.parameters(), lr=settings.reg_lr, weight_decay=0.0),
                 torch.optim.AdamW(run.constraint.parameters(), lr=settings.reg_lr, weight_decay=0.0, maximize=True)]
    return main, schedule, extra


def _train_epoch(run: _CoFiRun, epoch: int, stage: str, main: torch.optim.Optimizer, schedule: Any, extra: list,
                 progress: bool) -> list[float]:
    """One epoch of distillation (with sampled gates and the Lagrangian while pruning); returns the step losses."""
    settings, student, dev = run.settings, run.student, run.device
    student.train()
    losses = []
    bar = tqdm(total=run.steps_per_epoch, desc=f"CoFi {run.task.title} {stage} epoch {epoch}/{settings.epochs}",
               disable=not progress, leave=False, dynamic_ncols=True)
    batches = epoch_batches(run.inputs.train, run.batch_size, settings.seed, epoch, run.inputs.pad_id)
    for index, batch in enumerate(batches):
        batch = {k: v.to(dev) for k, v in batch.items() if k != "labels"}
        with torch.no_grad(), autocast(dev):
            taught = run.teacher_model(**batch, output_hidden_states=True)
        z = run.gates.sample() if stage == "prune" else None
        with autocast(dev):  # the forward passes in the device's precision; gates and constraint in fp32
            out = student(**batch, gates=z)
            loss = (1 - settings.layer_alpha) * prediction_distillation_loss(out.logits.float(),
                                                                             taught.logits.float(),
                                                                             settings.temperature)
            if settings.layer_alpha > 0:
                loss = loss + settings.layer_alpha * layer_distillation_loss(
                    out.hidden_states[1:], list(taught.hidden_states[1:]), run.transform,
                    z["head_layer"] if z is not None else None)
        if stage == "prune":
            step = (epoch - settings.distill_epochs - 1) * run.steps_per_epoch + index
            loss = loss + run.constraint(run.gates.expected_sparsity(), step)
        for opt in (main, *extra):
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in (main, *extra):
            opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    return losses


def _evaluate_epoch(run: _CoFiRun, epoch: int, stage: str, losses: list[float], tick: float,
                    state: dict[str, Any], partial: Path | None) -> dict[str, Any]:
    """Score what the epoch leaves (while pruning: the model the evaluation gates would leave, pruned physically)
    and add its history row to `state`, keeping the best fine-tuning epoch; returns its predictions."""
    gates, dev = run.gates, run.device
    row: dict[str, Any] = {"epoch": epoch, "stage": stage, "train_loss": float(np.mean(losses)),
                           "train_seconds": time.perf_counter() - tick}
    if stage == "prune":
        row["expected_sparsity"] = float(gates.expected_sparsity().detach())
        row["sparsity"] = gates.sparsity()
        row["lambdas"] = run.constraint.lambdas.detach().cpu().tolist()
    if stage == "prune":  # evaluate what the gates leave: pruned physically (on the CPU), scored on the device
        model = prune_physically(run.student.cpu(), _on_cpu(gates.deterministic())).to(dev)
        run.student.to(dev)
    else:
        model = run.student
    row["eval"], predictions = evaluate_splits(model, run.inputs.eval, run.task, 2 * run.config.batch_size, dev)
    row["score"] = row["eval"][run.inputs.data.main_split][run.task.main_metric]
    state["history"].append(row)
    if stage == "finetune" and (state["best"] is None or row["score"] > state["best"]["score"]):
        state["best"] = row
        state["best_predictions"] = {s: torch.from_numpy(np.asarray(p)) for s, p in predictions.items()}
        if partial is not None:
            save_pruned(run.student.cpu(), partial / "best")
            run.student.to(dev)
    return predictions


def _cofi_record(run: _CoFiRun, teacher: FinetuneResult, key: str, results_dir: str | Path | None,
                 state: dict[str, Any], predictions: dict[str, Any] | None, made_by: dict[str, Any],
                 wall_time_s: float) -> dict[str, Any]:
    """The run's record: the best fine-tuning epoch (or the last pruning one), the sparsity reached and whether it
    is accepted, the structure left, the sizes and the history."""
    settings, task = run.settings, run.task
    final = state["best"] or state["history"][-1]
    if state.get("best_predictions") is None:  # no fine-tuning stage: the last pruning epoch's predictions
        state["best_predictions"] = {s: torch.from_numpy(np.asarray(p)) for s, p in predictions.items()}
    student = run.student
    if state["z"] is None:  # no fine-tuning stage: the pruned student is the last pruning epoch's
        state["pruned_sparsity"] = run.gates.sparsity()
        student = run.student = prune_physically(run.student.cpu(), _on_cpu(run.gates.deterministic()))
    sparsity = state["pruned_sparsity"]
    params = {"teacher": sum(p.numel() for p in run.teacher_model.parameters()),
              "student": sum(p.numel() for p in student.parameters())}
    return {
        "kind": "cofi", "key": key, "settings": dataclasses.asdict(settings), "teacher_key": teacher.record["key"],
        "teacher_record": run_reference(teacher.path, results_dir), "config": teacher.record["config"],
        "task": {"name": task.name, "main_metric": task.main_metric, "main_split": run.inputs.data.main_split},
        "teacher_score": teacher.record["score"], "score": final["score"], "metrics": final["eval"],
        "predictions": prediction_blocks(run.inputs.data, {s: p.numpy() for s, p in state["best_predictions"].items()}),
        "best_epoch": final["epoch"], "sparsity": sparsity,
        "accepted": abs(sparsity - settings.target) <= settings.tolerance,
        "structure": _structure(student), "parameters": params, "history": state["history"],
        "wall_time_s": wall_time_s, "provenance": made_by,
    }


def _structure(student: GatedBert) -> list[dict[str, int]]:
    """What is left of each layer: heads, FFN units and the hidden width."""
    rows = []
    for layer in student.model.bert.encoder.layer:
        heads = 0 if layer.attention is None else layer.attention.self.query.weight.shape[0] // student.head_size
        units = 0 if layer.intermediate is None else layer.intermediate.dense.weight.shape[0]
        rows.append({"heads": heads, "ffn_units": units})
    hidden = student.model.bert.embeddings.word_embeddings.weight.shape[1]
    return [{**r, "hidden": hidden} for r in rows]


def _on_cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in tensors.items()}


def _snapshot(partial: Path, student: GatedBert, gates: CoFiGates, constraint: Lagrangian, transform: torch.nn.Module,
              state: dict[str, Any], elapsed: float, optimization: dict[str, Any]) -> None:
    """Everything the next epoch depends on, the student as a (pruned) model file and the rest in `state.pt`."""
    partial.mkdir(parents=True, exist_ok=True)
    name = f"student-{state['epoch']}"  # a new file per epoch: a kill mid-snapshot leaves the last one whole
    save_pruned(student.cpu(), partial / name)
    payload = {"state": {**state, "elapsed": elapsed}, "gates": gates.state_dict(), "constraint": constraint.state_dict(),
               "transform": transform.state_dict(), "rng": torch.random.get_rng_state(), "student_file": name,
               "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized()
               else None, **optimization}
    atomic_write(partial / "state.pt", lambda fh: torch.save(payload, fh))
    for old in partial.glob("student-*"):
        if old.stem != name:
            old.unlink()


def _remove(folder: Path | None) -> None:
    if folder is None or not folder.exists():
        return
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
