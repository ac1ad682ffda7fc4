"""The one fine-tuning loop every chapter uses (paper §3.3 and A.4).

- The optimizer is built by name from `flatcompress.optim` and only ever called as
  `optimizer.step(closure)`, so SAM plugs in without touching this loop.
- Learning rate decays linearly from `lr` to zero with no warm-up:
  $\\eta_t = \\eta_0 (1 - t / T)$ for steps $t = 0 \\dots T$.
- Gradients are clipped to `grad_clip` inside the closure, i.e. for every gradient the
  optimizer uses (for SAM: the one taken at the perturbed point too).
- The model is evaluated after every epoch and the epoch with the best validation metric is
  kept (A.4: "evaluated after every epoch ... the checkpoint with the best validation metric"). An optimizer that
  averages checkpoints (SWA, `flatcompress.flatness.swa`) ends instead on the mean of its checkpoints, which is
  then evaluated once: the epochs' scores stay in the history.
- Optional fixed masks: pruned weights and their gradients are zeroed at every step.
- Optional starting point: weights loaded over the pre-trained model and fresh head before training
  (iterative pruning starts each round from the last round's head, or all of its weights).
- Optional L1 penalty (A.7's control): $\\lambda \\sum_i |w_i|$ over the prunable weights is added to the loss.
- Optional quantization-aware training (`qat=True`, `flatcompress.quantization.qat`): the model trains on int8-rounded
  weights and inputs, in fp32 on every device.
- A run writes one result record; a run whose record exists is returned from it. An interrupted
  run resumes from its last finished epoch and ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import functools
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from flatcompress.config import FinetuneConfig
from flatcompress.data import RunInputs, TaskData, pad_collate, run_inputs
from flatcompress.data.encoding import TARGETS
from flatcompress.data.qa import best_answers
from flatcompress.data.fingerprint import data_fingerprint, examples_fingerprint
from flatcompress.device import LossScaler, SkipStep, autocast, pick_device, pick_precision
from flatcompress.errors import DataSourceError, MissingRecordError, NonFiniteLossError, UntrainedModelWarning
from flatcompress.flatness.swa import WeightAverage
from flatcompress.masks import (Masks, apply_masks, mask_gradients, masks_fingerprint, masks_on, masks_sparsity,
                                prunable_names)
from flatcompress.metrics import METRICS, SQUAD_COLUMNS, squad_scores
from flatcompress.models import load_model, output_logits
from flatcompress.optim import averaging_steps, build_optimizer
from flatcompress.predictions import evaluation_block
from flatcompress.provenance import provenance
from flatcompress.records import atomic_write, config_key, read_record, record_path, weights_path, write_record
from flatcompress.tasks import Task, get_task

__all__ = ["FinetuneResult", "StartingPoint", "finetune", "find_run", "run_data", "run_fields", "record_config",
           "load_snapshot", "evaluate", "evaluate_predictions", "evaluate_splits", "prediction_blocks", "predict",
           "seed_everything", "run_model", "starting_model", "epoch_batches"]


RETRAIN_TOLERANCE = 0.01  # main metric: a run trained again on a GPU (not bitwise reproducible) may differ this much


@dataclass(frozen=True)
class StartingPoint:
    """Weights a run starts from: `state` (some or all of the model's tensors) is loaded over the pre-trained
    model and its fresh head. `key` names it in the run's cache key, e.g. `"head of <record key>"`."""

    key: str
    state: dict[str, torch.Tensor]


@dataclass
class FinetuneResult:
    """A finished run: its record, where the record is, and the best-epoch model when trained here."""

    record: dict[str, Any]
    path: Path | None
    model: torch.nn.Module | None = None
    cached: bool = False

    @functools.cached_property
    def config(self) -> FinetuneConfig:
        """The run's settings, typed (read and checked once)."""
        return FinetuneConfig.from_record(self.record["config"])

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return self.record["metrics"]

    @property
    def score(self) -> float:
        """The task's main metric on its main validation split, at the best epoch."""
        return self.record["score"]

    def load_model(self, device: str | torch.device | None = None) -> torch.nn.Module:
        """The best-epoch model on `device` (default: the best available, `pick_device`): in memory, or from the
        checkpoint saved with `save_checkpoint=True`."""
        dev = pick_device(device)
        if self.model is not None:
            return self.model.to(dev)
        checkpoint = weights_path(self.path) if self.path else None
        if checkpoint is None or not checkpoint.exists():
            raise FileNotFoundError(f"no model checkpoint next to {self.path}; re-run finetune(..., overwrite=True, "
                                    "save_checkpoint=True) to produce one")
        from safetensors.torch import load_file

        model = run_model(self.config)
        model.load_state_dict(load_file(str(checkpoint)))
        self.model = model.to(dev).eval()
        return self.model


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def predict(model: torch.nn.Module, features: list[dict], batch_size: int = 64,
            device: torch.device | None = None) -> np.ndarray | list[np.ndarray]:
    """Logits for every feature, in order (batches are formed by length for speed): an array (features, classes),
    or for QA a list of each window's (length, 2) start and end logits."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad_id = getattr(getattr(model, "config", None), "pad_token_id", None) or 0  # RoBERTa pads with 1
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    outputs: list[np.ndarray] = [None] * len(features)  # type: ignore[list-item]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v for k, v in pad_collate([features[i] for i in idx], pad_id).items() if k not in TARGETS}
        with autocast(device):
            logits = output_logits(model(**{k: v.to(device) for k, v in batch.items()}))
        for i, row in zip(idx, logits.float().cpu().numpy()):
            outputs[i] = row[:len(features[i]["input_ids"])] if row.ndim == 2 else row  # a QA window without padding
    model.train(was_training)
    return np.stack(outputs) if outputs and outputs[0].ndim == 1 else outputs


def evaluate(model: torch.nn.Module, features: list[dict], task: Task | str, batch_size: int = 64,
             device: torch.device | None = None) -> dict[str, float]:
    """Every metric of `task` on `features` (argmax for classification, the scalar for regression, the best span's
    text for QA)."""
    return evaluate_predictions(model, features, task, batch_size, device)[0]


def evaluate_predictions(model: torch.nn.Module, features: list[dict], task: Task | str, batch_size: int = 64,
                         device: torch.device | None = None) -> tuple[dict[str, float], np.ndarray]:
    """`evaluate`'s metrics and the predictions they were computed from: classes, regression values, or for QA each
    example's scores (`squad_scores`: F1 and exact match, one row an example)."""
    task = get_task(task) if isinstance(task, str) else task
    logits = predict(model, features, batch_size, device)
    if task.kind == "qa":
        answers, golds = best_answers(features, logits)
        scores = squad_scores(golds, answers)
        return {name: float(scores[:, SQUAD_COLUMNS.index(name)].mean()) for name in task.metrics}, scores
    labels = [f["labels"] for f in features]
    preds = logits[:, 0] if task.kind == "regression" else logits.argmax(-1)
    return {name: METRICS[name](labels, preds) for name in task.metrics}, preds


def evaluate_splits(model: torch.nn.Module, features: dict[str, list[dict]], task: Task | str, batch_size: int = 64,
                    device: torch.device | None = None) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """`evaluate_predictions` on every split: metrics per split and predictions per split."""
    metrics, predictions = {}, {}
    for split, f in features.items():
        metrics[split], predictions[split] = evaluate_predictions(model, f, task, batch_size, device)
    return metrics, predictions


def prediction_blocks(data: TaskData, predictions: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Each split's labels and predictions with its examples' fingerprint, for a record (`flatcompress.predictions`)."""
    def labels(split: str) -> list | None:  # QA: the per-example scores say it all
        return None if data.task.kind == "qa" else [e.label for e in data.eval[split]]

    return {s: evaluation_block(labels(s), p, data.task.kind, examples_fingerprint(data.eval[s]))
            for s, p in predictions.items()}


def predicted_classes(preds: np.ndarray, task: Task | str) -> int | None:
    """How many distinct classes a classifier predicted (1: a constant predictor); None for other tasks."""
    task = get_task(task) if isinstance(task, str) else task
    return len(set(preds.tolist())) if task.kind == "classification" else None


def run_model(config: FinetuneConfig) -> torch.nn.Module:
    """The run's architecture with pre-trained weights and a fresh head, its layers prepared for quantization-aware
    training when `config.qat` (the same tensor names, plus each layer's learned input range)."""
    model = load_model(config.model, get_task(config.task), config.num_layers)
    if config.qat:
        from flatcompress.quantization.qat import prepare_qat

        prepare_qat(model)
    return model


def starting_model(config: FinetuneConfig, masks: Masks | None = None,
                   start_from: StartingPoint | None = None) -> torch.nn.Module:
    """The model a run starts from: seeded, pre-trained (fresh head), `start_from` loaded over it, `masks` applied."""
    seed_everything(config.seed)
    model = run_model(config)
    if start_from is not None:
        unexpected = set(start_from.state) - set(model.state_dict())
        if unexpected:
            raise ValueError(f"the starting point {start_from.key!r} has tensors the model lacks: {sorted(unexpected)[:3]}")
        model.load_state_dict(start_from.state, strict=False)
    if masks is not None:
        apply_masks(model, masks)
    return model


def _linear_decay(total_steps: int) -> Callable[[int], float]:
    return lambda step: max(0.0, 1.0 - step / total_steps)


def run_fields(config: FinetuneConfig, data_digest: str | None, masks: Masks | None = None,
               start_from: StartingPoint | None = None) -> dict[str, Any]:
    """What a run's cache key hashes: its result fields, the fingerprint of its data (None: the fields of a
    record written before fingerprints), its masks' fingerprint and its starting point."""
    fields = config.result_fields(data_digest)
    if masks is not None:
        fields["masks"] = masks_fingerprint(masks)
    if start_from is not None:
        fields["start"] = start_from.key
    return fields


def run_data(config: FinetuneConfig) -> tuple[RunInputs, dict[str, Any]]:
    """The run's inputs (examples, tokenizer, splits encoded when first read) and the fingerprint of its examples
    (`flatcompress.data.fingerprint`). A missing data directory is an error here, before any record is looked up."""
    inputs = run_inputs(config)
    return inputs, data_fingerprint(inputs.data, inputs.tokenizer)


def find_run(results_dir: str | Path, config: FinetuneConfig, digest: str | None, masks: Masks | None = None,
             start_from: StartingPoint | None = None) -> tuple[str | None, Path | None, Path | None]:
    """The run's key and record path, and the path of its existing record if there is one: keyed by its data's
    fingerprint, or (a record written before fingerprints existed) by its config alone.

    `digest=None` (the data cannot be read here) finds a record whose key its config, masks and start explain with
    the data fingerprint it recorded: a read-only lookup that cannot check the data (key and path are then None).
    """
    stem = config.stem()
    legacy = record_path(results_dir, "finetune", config.task, stem,
                         config_key(run_fields(config, None, masks, start_from)))
    if digest is None:
        for candidate in sorted(legacy.parent.glob(f"{stem}-*.json")):
            record = read_record(candidate)
            recorded = ((record.get("data") or {}).get("fingerprint") or {}).get("digest")
            if recorded and config_key(run_fields(config, recorded, masks, start_from)) == record.get("key"):
                return None, None, candidate
        return None, None, legacy if legacy.exists() else None
    key = config_key(run_fields(config, digest, masks, start_from))
    path = record_path(results_dir, "finetune", config.task, stem, key)
    if path.exists():
        return key, path, path
    return key, path, legacy if legacy.exists() else None


def finetune(config: FinetuneConfig, masks: Masks | None = None, results_dir: str | Path | None = "results",
             overwrite: bool = False, progress: bool = True, save_checkpoint: bool = False,
             device: str | None = None, compute: bool = True, start_from: StartingPoint | None = None,
             masks_origin: dict[str, Any] | None = None) -> FinetuneResult:
    """Fine-tune `config.model` on `config.task` and return the best-epoch result.

    With `results_dir` set, the run writes `<results_dir>/finetune/<task>/<model>-<optimizer>-seed<seed>-<key>.json`
    and, while running, a `.partial.pt` snapshot after every epoch (removed at the end).
    With `results_dir=None` nothing is written and nothing is resumed. With `compute=False` the run is
    only looked up: a missing record raises `MissingRecordError` (the book build never trains).
    `start_from` replaces some or all starting weights (see `StartingPoint`); `masks` are applied after it.
    `masks_origin` (e.g. `{"kind": "imp", "task": "rte", "optimizer": "sam", "sparsity": 0.6}`) is kept in the
    record to say where the masks came from; it does not enter the cache key (the masks' fingerprint does).

    The steps: look the run up (`_look_up`), build the model and optimizer (`_Run`), resume from the last
    snapshot (`_resume`), train and evaluate epoch by epoch (`_train_epoch`), then write the record
    (`_finetune_record`, `_keep`).
    """
    try:
        inputs, fingerprint = run_data(config)
    except DataSourceError:
        if compute or results_dir is None:
            raise
        _, _, found = find_run(results_dir, config, None, masks, start_from)  # reading a record needs no data
        if found is None:
            raise MissingRecordError(f"no result record of this {config.task} run under {results_dir} (its data "
                                     f"could not be read here either, so it cannot be computed)") from None
        return FinetuneResult(read_record(found), found, cached=True)
    key, path, existing, cached = _look_up(config, fingerprint, masks, start_from, results_dir, overwrite,
                                           save_checkpoint, compute)
    if cached is not None:
        return cached

    start_time = time.perf_counter()
    dev = pick_device(device)
    made_by = provenance(dev)  # the code that runs is the code at the start (the tree may change while it runs)
    run = _Run.build(config, inputs, masks, start_from, dev)
    partial = path.with_suffix(".partial.pt") if path else None
    state = _resume(partial, key, run, dev, progress) or {
        "epoch": 0, "history": [], "best_state": None, "best_predictions": None, "best_score": -math.inf,
        "best_epoch": None, "elapsed": 0.0}
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        _train_epoch(run, config, epoch, state, progress)
        if partial is not None and epoch < config.epochs:
            _save_partial(partial, key, run.model, run.optimizer, run.scheduler, state, dev,
                          state["elapsed"] + time.perf_counter() - start_time, run.scaler, run.average)
    if run.average is not None:
        _end_on_average(run, config, state)

    run.model.load_state_dict(state["best_state"])
    run.model.eval()
    record = _finetune_record(run, config, key, fingerprint, masks_origin, start_from, state, made_by,
                              state["elapsed"] + time.perf_counter() - start_time)
    record = _keep(record, existing, path, overwrite, dev)
    if path is not None:
        if save_checkpoint:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state["best_state"].items()}, str(weights_path(path)))
        if partial is not None and partial.exists():
            partial.unlink()
    if masks is None:
        _warn_if_untrained(record, path)
    return FinetuneResult(record, path, run.model, cached=False)


def _warn_if_untrained(record: dict[str, Any], path: Path | None) -> None:
    """Say loudly, when the run ends, that a full fine-tuning run did not clear the health gate: every chapter would
    mark it and leave it out of its verdicts. (A pruned model that collapses is a result, not a failure to train.)"""
    from flatcompress.stats import record_health

    verdict = record_health(record)
    if not verdict.trained:
        c = record["config"]
        warnings.warn(f"{c['task']} {c['optimizer']} seed {c['seed']} DID NOT TRAIN: {verdict.reason}"
                      f"{f' (record {path})' if path else ''}. The chapters leave it out of every verdict; a tier "
                      f"whose models do not train needs another recipe.", UntrainedModelWarning, stacklevel=3)


def _look_up(config: FinetuneConfig, fingerprint: dict[str, Any], masks: Masks | None,
             start_from: StartingPoint | None, results_dir: str | Path | None, overwrite: bool,
             save_checkpoint: bool, compute: bool) -> tuple[str, Path | None, dict | None, FinetuneResult | None]:
    """(key, record path, the existing record, the cached result): the cached result when the run need not train
    (its record exists, with its weights if they are asked for); the existing record when it trains again only for
    its weights. Raises `MissingRecordError` when the run would have to train and `compute` is False."""
    key = config_key(run_fields(config, fingerprint["digest"], masks, start_from))
    path, existing = None, None
    if results_dir is not None:
        key, path, found = find_run(results_dir, config, fingerprint["digest"], masks, start_from)
        if found is not None and not overwrite:
            existing = read_record(found)
            if not compute or not save_checkpoint or weights_path(found).exists():
                return key, found, existing, FinetuneResult(existing, found, cached=True)
            # The record exists but its weights were not kept: train again (deterministic) for them, keep the record.
            path = found
    if not compute:
        raise MissingRecordError(f"no result record {path}" if path else "compute=False needs a results_dir")
    return key, path, existing, None


@dataclass
class _Run:
    """What one fine-tuning run trains with: the data as features, the model, masks and optimizer on the device."""

    task: Task
    inputs: RunInputs
    model: torch.nn.Module
    masks: dict[str, torch.Tensor] | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: LossScaler | None
    precision: str
    device: torch.device
    steps_per_epoch: int
    total_steps: int
    penalized: list[torch.nn.Parameter]
    average: WeightAverage | None = None  # SWA's running mean of checkpoints, on the device

    @classmethod
    def build(cls, config: FinetuneConfig, inputs: RunInputs, masks: Masks | None,
              start_from: StartingPoint | None, dev: torch.device) -> "_Run":
        precision = pick_precision(dev, "fp32" if config.qat else config.precision)  # QAT simulates int8 in fp32
        model = starting_model(config, masks, start_from).to(dev)
        optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                                    weight_decay=config.weight_decay, eps=config.adam_eps, **config.optimizer_kwargs)
        steps_per_epoch = -(-len(inputs.train) // config.batch_size)
        total_steps = steps_per_epoch * config.epochs
        averaged = averaging_steps(config.optimizer, config.optimizer_kwargs, steps_per_epoch, config.epochs)
        return cls(get_task(config.task), inputs, model,
                   masks_on(masks, dev) if masks is not None else None,  # once: no host-device copy per step
                   optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_decay(total_steps)),
                   LossScaler() if precision == "fp16" else None, precision, dev, steps_per_epoch, total_steps,
                   _l1_parameters(model, config) if config.l1 > 0 else [],
                   WeightAverage(model, averaged) if averaged is not None else None)


def _resume(partial: Path | None, key: str, run: _Run, dev: torch.device, progress: bool) -> dict[str, Any] | None:
    """The state after the last finished epoch of an interrupted run of `key` (model, optimizer, scheduler, loss
    scale and random state restored in place), or None when there is nothing to resume."""
    if partial is None or not partial.exists():
        return None
    saved = load_snapshot(partial)
    if saved["key"] != key:
        return None
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    if run.scaler is not None and saved.get("scaler") is not None:
        run.scaler.load_state_dict(saved["scaler"])
    if run.average is not None:
        run.average.load_state_dict(saved["average"])
    torch.random.set_rng_state(saved["rng"])
    if dev.type == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"])
    if progress:
        tqdm.write(f"resuming {partial.name} after epoch {saved['state']['epoch']}")
    return saved["state"]


def epoch_batches(features: Sequence[Any], batch_size: int, seed: int, epoch: int, pad_id: int) -> Iterator[dict]:
    """One epoch's training batches, padded, in the order fixed by (seed, epoch): a resumed run sees the same ones."""
    order = np.random.default_rng([seed, epoch]).permutation(len(features))
    for start in range(0, len(order), batch_size):
        yield pad_collate([features[i] for i in order[start:start + batch_size]], pad_id)


def _train_epoch(run: _Run, config: FinetuneConfig, epoch: int, state: dict[str, Any], progress: bool) -> None:
    """One epoch: the optimizer steps over the training data in this epoch's order, then every evaluation split is
    scored; `state` gains the epoch's history row and, when it is the best so far, its weights and predictions."""
    epoch_start = time.perf_counter()
    task, model, scaler = run.task, run.model, run.scaler
    main_split, main_metric = run.inputs.data.main_split, task.main_metric
    step = (epoch - 1) * run.steps_per_epoch
    model.train()
    losses = []
    bar = tqdm(total=run.steps_per_epoch, desc=f"{task.title} {config.optimizer} epoch {epoch}/{config.epochs}",
               disable=not progress, leave=False, dynamic_ncols=True)
    for batch in epoch_batches(run.inputs.train, config.batch_size, config.seed, epoch, run.inputs.pad_id):
        step += 1
        closure = _make_closure(model, run.optimizer, batch, config, run.masks, run.device, step, run.penalized,
                                run.precision, scaler)
        try:
            loss = run.optimizer.step(closure)
        except SkipStep:  # fp16 overflowed: no update (SAM restored its weights); a smaller loss scale next
            scaler.update(skipped=True)
            if scaler.good_steps == 0 and scaler.scale <= scaler.min_scale:
                raise NonFiniteLossError(f"the gradients overflow at step {step} even at loss scale "
                                         f"{scaler.scale:g}; lower the learning rate (now {config.lr})") from None
        else:
            if scaler is not None:
                scaler.update(skipped=False)
            losses.append(float(loss))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if run.masks is not None:
            apply_masks(model, run.masks)
        if run.average is not None:
            run.average.update(model, step)
        run.scheduler.step()
        bar.update(1)
    bar.close()
    train_seconds = time.perf_counter() - epoch_start
    metrics, predictions = evaluate_splits(model, run.inputs.eval, task, 2 * config.batch_size, run.device)
    predictions = {split: torch.from_numpy(np.asarray(p)) for split, p in predictions.items()}
    score = metrics[main_split][main_metric]
    state["history"].append({"epoch": epoch, "train_loss": float(np.mean(losses)), "eval": metrics,
                             "lr_end": float(run.scheduler.get_last_lr()[0]), "train_seconds": train_seconds,
                             "seconds": time.perf_counter() - epoch_start})
    if score > state["best_score"]:
        state.update(best_score=score, best_epoch=epoch, best_predictions=predictions,
                     best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    state["epoch"] = epoch
    if progress:
        tqdm.write(f"{task.title} {config.optimizer} seed {config.seed} epoch {epoch}/{config.epochs}: "
                   f"train loss {np.mean(losses):.4f}, {main_metric} {score:.4f}")


def _end_on_average(run: _Run, config: FinetuneConfig, state: dict[str, Any]) -> None:
    """SWA's end: the run's result is the mean of its checkpoints (not its best epoch), evaluated once; `state`
    records it as the last epoch's result, with the checkpoint steps and the mean's scores under "average"."""
    run.model.load_state_dict(run.average.weights(), strict=False)  # the mean's parameters; the model's own buffers
    metrics, predictions = evaluate_splits(run.model, run.inputs.eval, run.task, 2 * config.batch_size, run.device)
    state.update(best_epoch=config.epochs, best_score=metrics[run.inputs.data.main_split][run.task.main_metric],
                 best_predictions={split: torch.from_numpy(np.asarray(p)) for split, p in predictions.items()},
                 best_state={k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()},
                 average={"steps": run.average.steps, "n": run.average.n_averaged, "eval": metrics})


def _finetune_record(run: _Run, config: FinetuneConfig, key: str, fingerprint: dict[str, Any],
                     masks_origin: dict[str, Any] | None, start_from: StartingPoint | None, state: dict[str, Any],
                     made_by: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
    """The run's record: its config, data, masks, the best epoch's scores and predictions, the history, the cost."""
    task, masks = run.task, run.masks
    main_split, main_metric = run.inputs.data.main_split, task.main_metric
    best = state.get("average") or state["history"][state["best_epoch"] - 1]  # SWA: the mean of its checkpoints
    best_predictions = {s: p.numpy() for s, p in state["best_predictions"].items()}
    return {
        "kind": "finetune",
        "key": key,
        "config": record_config(config),
        "task": {"name": task.name, "title": task.title, "main_metric": main_metric, "main_split": main_split},
        "data": {**run.inputs.data.info, "fingerprint": fingerprint},
        "masks": None if masks is None else {"fingerprint": masks_fingerprint(masks), "sparsity": masks_sparsity(masks),
                                             "tensors": len(masks), "origin": masks_origin},
        "start": None if start_from is None else start_from.key,
        "score": best["eval"][main_split][main_metric],
        "best_epoch": state["best_epoch"],
        "metrics": best["eval"],
        "predicted_classes": predicted_classes(best_predictions[main_split], task),
        "predictions": prediction_blocks(run.inputs.data, best_predictions),
        "history": state["history"],
        "steps": run.total_steps,
        "precision": run.precision,
        "skipped_steps": run.scaler.skipped if run.scaler is not None else 0,
        "n_parameters": sum(p.numel() for p in run.model.parameters()),
        "wall_time_s": wall_time_s,
        "provenance": made_by,
        # SWA: the steps whose weights were averaged into the result (other runs' records have no such field)
        **({"average": {k: state["average"][k] for k in ("steps", "n")}} if "average" in state else {}),
    }


def _keep(record: dict[str, Any], existing: dict[str, Any] | None, path: Path | None, overwrite: bool,
          dev: torch.device) -> dict[str, Any]:
    """Write the new record; or, for a run trained again only for its weights, check that it is the same model
    and keep the existing record."""
    if existing is not None:  # trained again for its weights: the record stays, if the model is the same one
        main_metric = record["task"]["main_metric"]
        gap = abs(record["score"] - existing["score"])
        if dev.type == "cpu" and gap > 0:
            raise RuntimeError(f"re-training {path.name} for its weights gave {main_metric} {record['score']}, the record "
                               f"says {existing['score']} (another library version?); re-run with overwrite")
        if gap > RETRAIN_TOLERANCE:  # GPU kernels are not bitwise reproducible: a stated tolerance, not equality
            raise RuntimeError(f"re-training {path.name} on {dev.type} for its weights gave {main_metric} "
                               f"{record['score']:.4f}, {gap:.4f} from the record's {existing['score']:.4f} (tolerance "
                               f"{RETRAIN_TOLERANCE}); re-run with overwrite")
        return existing
    if path is not None:
        write_record(path, record, overwrite=overwrite)
    return record


def record_config(config: FinetuneConfig) -> dict[str, Any]:
    """The config as a record stores it: no machine paths (the data directory is a setting of the machine; the
    record's data fingerprint says which examples were used)."""
    return {**config.to_dict(), "data_dir": None}


def load_snapshot(path: Path) -> dict[str, Any]:
    """A run-local snapshot (`.partial.pt`), loaded without unpickling arbitrary objects (`weights_only=True`)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError (or RuntimeError) for anything but tensors and containers
        raise RuntimeError(f"{path} is not a snapshot flatcompress wrote (it holds objects other than tensors and "
                           f"plain containers, which are never unpickled); delete it to start the run afresh "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _make_closure(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                  config: FinetuneConfig, masks: Masks | None, device: torch.device, step: int,
                  penalized: Sequence[torch.nn.Parameter] = (), precision: str = "fp32",
                  scaler: LossScaler | None = None) -> Callable[[], torch.Tensor]:
    """Zero the gradients, run forward (in `precision`) and backward (over micro-batches, the loss scaled by
    `scaler` in fp16 and the gradients unscaled after, `SkipStep` on an overflow), add `config.l1` * sum |w| over
    `penalized`, mask and clip; return the loss."""
    size = batch["input_ids"].shape[0]
    micro = config.micro_batch_size or size
    chunks = [{k: v[i:i + micro].to(device) for k, v in batch.items()} for i in range(0, size, micro)]

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for chunk in chunks:
            with autocast(device, precision):
                loss = model(**chunk).loss.float() * (chunk["input_ids"].shape[0] / size)
            if not torch.isfinite(loss):
                if scaler is not None:
                    raise SkipStep(f"the fp16 loss is {float(loss.detach())} at step {step}")
                raise NonFiniteLossError(f"the training loss is {float(loss.detach())} at step {step}; lower the learning "
                                         f"rate (now {config.lr}) or check the data")
            (loss * scaler.scale if scaler is not None else loss).backward()
            total += loss.detach()
        if penalized:
            penalty = config.l1 * sum(p.abs().sum() for p in penalized)
            (penalty * scaler.scale if scaler is not None else penalty).backward()
            total += penalty.detach()
        if scaler is not None:
            scaler.unscale(list(model.parameters()))
        if masks is not None:
            mask_gradients(model, masks)
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        return total

    return closure


def _l1_parameters(model: torch.nn.Module, config: FinetuneConfig) -> list[torch.nn.Parameter]:
    """The weights A.7's L1 penalty acts on: the prunable set (`flatcompress.masks.prunable_names`)."""
    from flatcompress.models import get_model_spec

    params = dict(model.named_parameters())
    return [params[n] for n in prunable_names(model, get_model_spec(config.model).pooler_pretrained)]


def _save_partial(partial: Path, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  scheduler: Any, state: dict, device: torch.device, elapsed: float,
                  scaler: LossScaler | None = None, average: WeightAverage | None = None) -> None:
    """Snapshot everything the next epoch depends on, atomically."""
    payload = {
        "key": key,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.random.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "average": average.state_dict() if average is not None else None,
        "state": {**state, "elapsed": elapsed},
    }
    atomic_write(partial, lambda fh: torch.save(payload, fh))
