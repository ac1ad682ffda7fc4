r"""Does SAM need both of its passes to see the same dropout masks? A measurement, kept as a result record.

SAM's ascent step $\hat\epsilon = \rho\, g / \|g\|$ is computed from the gradient of the loss under the
dropout masks of the first pass. If the second pass draws new masks (as davda54/sam does with a
BERT model in train mode), it evaluates a different loss at $w + \hat\epsilon$, and the step is no longer
adversarial for the loss it is applied to. To first order, with the same masks the loss rises by
$\rho \|g\|$; with other masks the rise is that of a random direction, plus dropout noise.

`measure_dropout_replay(result)` loads a fine-tuned model in train mode (dropout on) and, for
`draws` batches of its training data, runs one SAM step with a zero learning rate (the weights do not
move) twice: with the random state replayed and without. It records the loss at $w$ and at
$w + \hat\epsilon$ of each pass, so the record holds the rise in loss that SAM sees in both modes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from flatcompress.data import pad_collate, run_inputs
from flatcompress.flatness.sam import SAM
from flatcompress.provenance import provenance
from flatcompress.records import find_measurement, write_record
from flatcompress.training import FinetuneResult

__all__ = ["loss_rise", "measure_dropout_replay"]


def loss_rise(model: torch.nn.Module, batch: dict[str, torch.Tensor], rho: float, replay: bool, seed: int) -> tuple[float, float]:
    """(loss at w, loss at w + ε̂) as SAM's two passes see them, for one batch; the weights are left unchanged."""
    model.train()
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    torch.manual_seed(seed)
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=0.0, replay_dropout=replay)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    optimizer.step(closure)
    optimizer.zero_grad()
    return losses[0], losses[1]


def measure_dropout_replay(result: FinetuneResult, results_dir: str | Path | None = "results", rho: float = 0.05,
                           draws: int = 8, batch_size: int = 32, seed: int = 0, compute: bool = True,
                           device: str | None = None) -> dict[str, Any]:
    """The record of the rise in loss SAM sees with and without dropout replay (see the module docstring)."""
    if draws < 1 or batch_size < 1 or rho <= 0:
        raise ValueError(f"need draws >= 1, batch_size >= 1 and rho > 0, got {draws}, {batch_size}, {rho}")
    settings = {"finetune_key": result.record["key"], "rho": rho, "draws": draws, "batch_size": batch_size,
                "seed": seed}
    key, path, found = find_measurement(results_dir, "dropout_replay", result.record, settings, compute)
    if found is not None:
        return found
    start = time.perf_counter()
    model = result.load_model(device)
    inputs = run_inputs(result.config, max_train_examples=draws * batch_size, max_eval_examples=1)
    if len(inputs.train) < draws * batch_size:
        raise ValueError(f"dropout replay takes {draws} batches of {batch_size} training examples; this run's "
                         f"{result.config.task} training set has {len(inputs.train)}: lower draws or batch_size")
    rows = []
    for d in range(draws):
        batch = pad_collate(inputs.train[d * batch_size:(d + 1) * batch_size], inputs.pad_id)
        for replay in (True, False):
            before, after = loss_rise(model, batch, rho, replay, seed + d)
            rows.append({"draw": d, "replay": replay, "loss": before, "perturbed_loss": after})
    record = {"kind": "dropout_replay", "key": key, "settings": settings, "config": result.record["config"],
              "rows": rows, "wall_time_s": time.perf_counter() - start,
              "provenance": provenance(next(model.parameters()).device)}
    if path is not None:
        write_record(path, record)
    return {**record, "path": str(path) if path else None}
