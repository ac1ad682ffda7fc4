"""One-shot magnitude pruning without retraining (paper A.3, Figure 7).

Take a fine-tuned model $\\theta$, and for each sparsity $s$ of a sweep (the paper: 0% to 60% in 5%
steps) evaluate $\\theta \\odot m_s$ on the validation data, where $m_s$ is the global magnitude mask of
$\\theta$ itself at $s$ over the prunable set (`flatcompress.pruning.magnitude.magnitude_masks`). No weight is
trained again, so the curve shows how much of the model's accuracy survives the removal of its
smallest weights: a flat minimum should tolerate the perturbation better.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch

from flatcompress.config import check_sparsity
from flatcompress.data import run_inputs
from flatcompress.masks import apply_masks, masks_sparsity, prunable_names
from flatcompress.models import get_model_spec
from flatcompress.profiles import PAPER_ONESHOT_SPARSITIES
from flatcompress.provenance import provenance
from flatcompress.pruning.magnitude import magnitude_masks
from flatcompress.records import find_measurement, run_reference, write_record
from flatcompress.training import FinetuneResult, evaluate_splits, predicted_classes, prediction_blocks

__all__ = ["one_shot_sweep"]



def one_shot_sweep(result: FinetuneResult, sparsities: Sequence[float] = PAPER_ONESHOT_SPARSITIES,
                   results_dir: str | Path | None = "results", include_pooler: bool | None = None,
                   compute: bool = True, device: str | None = None) -> dict[str, Any]:
    """Metrics of `result`'s model pruned one-shot to each sparsity (no retraining); a record of kind `oneshot`.

    The model, its masks and the evaluation live on `device` (default: the best available). With `compute=False`
    the record is only looked up (`MissingRecordError` when it is absent).
    """
    values = sorted({check_sparsity(s) for s in sparsities})
    config = result.config
    if include_pooler is None:
        include_pooler = get_model_spec(config.model).pooler_pretrained
    settings = {"finetune_key": result.record["key"], "sparsities": values, "include_pooler": include_pooler}
    key, path, found = find_measurement(results_dir, "oneshot", result.record, settings, compute)
    if found is not None:
        return found
    start = time.perf_counter()
    model = result.load_model(device).eval()
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    inputs = run_inputs(config, max_train_examples=1)  # the evaluation splits are all it needs
    names = prunable_names(model, include_pooler)
    task = result.record["task"]
    rows = []
    for sparsity in values:
        model.load_state_dict(original)
        masks = magnitude_masks(model, sparsity, names)
        with torch.no_grad():
            apply_masks(model, masks)
        metrics, predictions = evaluate_splits(model, inputs.eval, config.task, 2 * config.batch_size)
        rows.append({"target_sparsity": sparsity, "sparsity": masks_sparsity(masks),
                     "score": metrics[task["main_split"]][task["main_metric"]], "metrics": metrics,
                     "predicted_classes": predicted_classes(predictions[task["main_split"]], config.task),
                     "predictions": prediction_blocks(inputs.data, predictions)})
    model.load_state_dict(original)
    record = {"kind": "oneshot", "key": key, "settings": settings, "config": result.record["config"], "task": task,
              "finetune_record": run_reference(result.path, results_dir), "unpruned_score": result.record["score"],
              "rows": rows, "wall_time_s": time.perf_counter() - start,
              "provenance": provenance(next(model.parameters()).device)}
    if path is not None:
        write_record(path, record)
    return {**record, "path": str(path) if path else None}
