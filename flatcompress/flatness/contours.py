r"""Loss contours on the plane through three models (the paper's Fig. 6, A.2; Mehta et al.'s `calculate_loss_contours`).

Three weight vectors of the same network, here the pre-trained encoder $w_0$ and the encoders fine-tuned with Adam
and with SAM, span a plane. As in Mehta et al., its origin is the first model and its axes are orthonormal
(Gram–Schmidt):

$$u = \frac{w_2 - w_0}{\|w_2 - w_0\|}, \qquad v = \frac{r}{\|r\|},\quad r = (w_1 - w_0) - \big((w_1 - w_0)^\top u\big)\, u,$$

so a point $(a, b)$ of the plane is $w_0 + a u + b v$, and each model sits at $\big((w - w_0)^\top u,\ (w - w_0)^\top
v\big)$. The loss and the task's metric are evaluated on a grid over the smallest rectangle holding the three
models, widened by `margin` of its size on every side (Mehta: 20 x 20 points, margin 0.2), on a fixed set of dev
examples. The task head is not part of the plane (the pre-trained model has none): every point uses one model's
head, Adam's or SAM's, which are the paper's two panels.

`measure_contours` writes the grid as a `contours` record; it evaluates the grid row by row and keeps the rows done
in a snapshot, so a killed run continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from flatcompress.data import pad_collate, run_inputs
from flatcompress.metrics import METRICS
from flatcompress.models import load_model
from flatcompress.provenance import provenance
from flatcompress.pruning.magnitude import head_names
from flatcompress.records import find_measurement, read_partial, run_reference, write_partial, write_record
from flatcompress.tasks import get_task
from flatcompress.training import FinetuneResult

__all__ = ["Plane", "plane_through", "grid_axes", "evaluate_plane", "has_contours", "measure_contours"]


@dataclass(frozen=True)
class Plane:
    """The plane through three weight vectors: `origin` and the orthonormal axes `u`, `v` (flat vectors)."""

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def coordinates(self, w: torch.Tensor) -> tuple[float, float]:
        """(a, b) of `w`'s projection: ((w − w0)·u, (w − w0)·v)."""
        d = (w - self.origin).double()
        return float(d @ self.u.double()), float(d @ self.v.double())

    def point(self, a: float, b: float) -> torch.Tensor:
        """w0 + a u + b v."""
        return self.origin + a * self.u + b * self.v


def plane_through(w0: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> Plane:
    """The plane with origin `w0`, u along w2 − w0 and v along the part of w1 − w0 orthogonal to u."""
    d2, d1 = (w2 - w0).double(), (w1 - w0).double()
    u = d2 / d2.norm()  # u = (w2 − w0) / ||w2 − w0||
    r = d1 - (d1 @ u) * u  # r = (w1 − w0) − ((w1 − w0)·u) u
    if r.norm() <= 1e-12 * d1.norm().clamp_min(1e-30):
        raise ValueError("the three weight vectors lie on one line: they span no plane")
    return Plane(w0, u.to(w0.dtype), (r / r.norm()).to(w0.dtype))  # v = r / ||r||


def grid_axes(points: list[tuple[float, float]], size: int = 20, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """`size` values per axis over the points' bounding box, widened by `margin` of its width on each side."""
    if size < 2 or margin < 0:
        raise ValueError(f"need size >= 2 and margin >= 0, got {size} and {margin}")
    axes = []
    for values in zip(*points):
        low, high = min(values), max(values)
        pad = margin * (high - low)
        axes.append(np.linspace(low - pad, high + pad, size))
    return axes[0], axes[1]


def _body(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters in the plane: all but the task head."""
    head = set(head_names(model))
    return [p for n, p in model.named_parameters() if n not in head]


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(_body(model)).detach().float()


def evaluate_plane(model: torch.nn.Module, plane: Plane, a_values: np.ndarray, b_values: np.ndarray,
                   score: Callable[[torch.nn.Module], tuple[float, float]],
                   done: list[list[tuple[float, float]]] | None = None,
                   on_row: Callable[[list[list[tuple[float, float]]]], None] | None = None
                   ) -> list[list[tuple[float, float]]]:
    """(loss, metric) at every grid point, row by row (one row per value of b): `model`'s body is set to the point,
    its head is left as it is. `done` rows are kept (a resumed run), `on_row` sees the rows after each one. The
    model's body is restored afterwards."""
    params = _body(model)
    saved = torch.nn.utils.parameters_to_vector(params).detach().clone()
    rows = [list(r) for r in (done or [])]
    try:
        for b in b_values[len(rows):]:
            row = []
            for a in a_values:
                with torch.no_grad():
                    torch.nn.utils.vector_to_parameters(plane.point(float(a), float(b)).to(saved), params)
                row.append(score(model))
            rows.append(row)
            if on_row is not None:
                on_row(rows)
    finally:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(saved, params)
    return rows


def has_contours(task: str) -> bool:
    """Whether a task's loss plane can be drawn: its dev set is scored by class or regression logits (not QA spans)."""
    return get_task(task).kind != "qa"


def measure_contours(adam: FinetuneResult, sam: FinetuneResult, head: str = "sam", size: int = 20,
                     margin: float = 0.2, n_examples: int = 256, batch_size: int = 64,
                     results_dir: str | Path | None = "results", compute: bool = True,
                     device: str | None = None, progress: bool = False) -> dict[str, Any]:
    """The `contours` record of the plane through the pre-trained model, `adam` and `sam` (two fine-tuned runs of one
    task and seed), with `head`'s task head ("adamw" or "sam"): the grid's axes, the three models' coordinates, and
    the dev loss and metric at every point, on the first `n_examples` dev examples (`progress`: a bar over the
    grid's rows)."""
    if head not in ("adamw", "sam"):
        raise ValueError(f"head must be 'adamw' or 'sam', got {head!r}")
    if not has_contours(adam.config.task):
        raise ValueError("contours score classification and regression dev sets; question answering is not supported")
    configs = adam.config, sam.config
    if (configs[0].task, configs[0].model, configs[0].seed) != (configs[1].task, configs[1].model, configs[1].seed):
        raise ValueError("the Adam and SAM runs must be of one task, model and seed")
    settings = {"adam_key": adam.record["key"], "sam_key": sam.record["key"], "head": head, "size": size,
                "margin": margin, "n_examples": n_examples}
    key, path, found = find_measurement(results_dir, "contours", sam.record, settings, compute)
    if found is not None:
        return found
    start = time.perf_counter()
    config = adam.config
    models = {"pre-trained": load_model(config.model, get_task(config.task), config.num_layers),
              "adamw": adam.load_model(device), "sam": sam.load_model(device)}
    vectors = {name: _flat(m).to(models["sam"].device) for name, m in models.items()}
    plane = plane_through(vectors["pre-trained"], vectors["adamw"], vectors["sam"])
    points = {name: plane.coordinates(w) for name, w in vectors.items()}
    a_values, b_values = grid_axes(list(points.values()), size, margin)
    model = models[head].eval()
    inputs = run_inputs(config, max_train_examples=1, max_eval_examples=n_examples)
    features, task = inputs.main_eval, get_task(config.task)
    batches = [pad_collate(features[i:i + batch_size], inputs.pad_id) for i in range(0, len(features), batch_size)]
    labels = [f["labels"] for f in features]
    dev = next(model.parameters()).device

    def score(m: torch.nn.Module) -> tuple[float, float]:
        """The mean dev loss and the task's main metric, from one forward pass over the examples."""
        loss, predictions = 0.0, []
        with torch.no_grad():
            for batch in batches:
                out = m(**{k: v.to(dev) for k, v in batch.items()})
                loss += float(out.loss) * len(batch["labels"]) / len(features)
                logits = out.logits.float()
                predictions.append(logits[:, 0] if task.kind == "regression" else logits.argmax(-1))
        return loss, METRICS[task.main_metric](labels, torch.cat(predictions).cpu().numpy())

    done = read_partial(path).get("rows") or []
    bar = tqdm(total=len(b_values), initial=len(done), desc=f"contours of {config.task} seed {config.seed} ({head} "
               "head), grid rows", disable=not progress, leave=False, dynamic_ncols=True)

    def row_done(rows: list[list[tuple[float, float]]]) -> None:
        if path is not None:
            write_partial(path, {"rows": rows})
        bar.update(1)

    rows = evaluate_plane(model, plane, a_values, b_values, score, done, row_done)
    bar.close()
    record = {"kind": "contours", "key": key, "settings": settings, "config": sam.record["config"],
              "adam_record": run_reference(adam.path, results_dir), "sam_record": run_reference(sam.path, results_dir),
              "points": {name: list(p) for name, p in points.items()},
              "a": a_values.tolist(), "b": b_values.tolist(),
              "loss": [[p[0] for p in row] for row in rows], "metric": [[p[1] for p in row] for row in rows],
              "main_metric": task.main_metric, "n_examples": len(features),
              "wall_time_s": time.perf_counter() - start, "provenance": provenance(next(model.parameters()).device)}
    if path is not None:
        write_record(path, record)
    return {**record, "path": str(path) if path else None}
