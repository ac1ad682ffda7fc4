"""Sharpness of a fine-tuned model as a result record (the data behind the paper's Tables 3 and 4).

`measure_sharpness(result)` takes a finished `finetune` run (in memory, or reloaded from its
checkpoint), evaluates the ε-sharpness at the paper's three ε and the top Hessian eigenvalue on
the first `n_examples` of the task's main validation split (Mehta et al. evaluate on held-out
data), and writes `<results_dir>/sharpness/<task>/<run stem>-<key>.json`. The record names the
fine-tuning record it measured; an existing record is returned instead of measuring again. A measurement that is
killed resumes after its last finished ε (each ε's search is independent of the others).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from flatcompress.data import pad_collate, run_inputs
from flatcompress.masks import Masks, masks_fingerprint, masks_sparsity
from flatcompress.flatness.sharpness import PAPER_EPSILONS, batches_loss, hessian_top_eigenvalue, sharpness_table
from flatcompress.provenance import provenance
from flatcompress.records import find_measurement, read_partial, run_reference, write_partial, write_record
from flatcompress.training import FinetuneResult

__all__ = ["measure_sharpness", "FULL_SPACE_BYTES_PER_PARAMETER", "FULL_SPACE_MAX_PARAMETERS", "full_space_bytes",
           "full_space_fits"]

FULL_SPACE_BYTES_PER_PARAMETER = 220  # scipy's L-BFGS-B keeps its history on the host: measured at n in the millions
FULL_SPACE_MAX_PARAMETERS = 50_000_000  # above this the chapters skip the full-space search (BERT-base: ~24 GB)


def full_space_bytes(n_parameters: int) -> int:
    """Host memory a full-space (A = I) ε-sharpness search needs for a model of `n_parameters`."""
    return FULL_SPACE_BYTES_PER_PARAMETER * int(n_parameters)


def full_space_fits(n_parameters: int) -> bool:
    """Whether the chapters run the full-space search for a model this size (`FULL_SPACE_MAX_PARAMETERS`)."""
    return n_parameters <= FULL_SPACE_MAX_PARAMETERS


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure_sharpness(result: FinetuneResult, results_dir: str | Path | None = "results",
                      epsilons: Sequence[float] = PAPER_EPSILONS, dim: int | None = 100, n_examples: int = 256,
                      batch_size: int = 64, seed: int = 0, maxiter: int = 10, hessian_iters: int = 20,
                      overwrite: bool = False, cache_gib: float = 6.0, compute: bool = True,
                      device: str | None = None, masks: Masks | None = None, progress: bool = False) -> dict[str, Any]:
    """ε-sharpness (φ, in percent) per ε and the top Hessian eigenvalue of `result`'s best model (`progress`: a line
    as each ε's search ends).

    `dim=None` searches the full parameter space (Keskar's A = I) instead of a random subspace. `masks` (a pruned
    model's, e.g. an IMP ticket's: Table 4) restrict both to the weights they keep.
    `cache_gib` bounds the memory that keeps the random subspace (speed only; the result is the same). The model and
    its loss run on `device` (default: the best available).
    With `compute=False` the record is only looked up (`MissingRecordError` when it is absent).
    """
    if n_examples < 1 or (dim is not None and dim < 1):
        raise ValueError(f"n_examples and dim must be at least 1, got {n_examples} and {dim}")
    if dim is None:  # a memory check before anything starts
        need, available = full_space_bytes(result.record["n_parameters"]), _available_bytes()
        if available is not None and need > available:
            raise MemoryError(f"the full-space sharpness search of {result.record['n_parameters'] / 1e6:.0f}M parameters "
                              f"needs about {need / 2 ** 30:.1f} GiB of host memory (scipy's L-BFGS-B history); "
                              f"{available / 2 ** 30:.1f} GiB are available. Use the random subspace (dim=100) instead")
    settings = {"finetune_key": result.record["key"], "epsilons": list(epsilons), "dim": dim, "n_examples": n_examples,
                "seed": seed, "maxiter": maxiter, "hessian_iters": hessian_iters,
                **({"masks": masks_fingerprint(masks)} if masks is not None else {})}
    key, path, found = find_measurement(results_dir, "sharpness", result.record, settings, compute, overwrite)
    if found is not None:
        return found
    start = time.perf_counter()
    # an interrupted measurement left the φ of its finished ε, and the seconds they took (the path holds the key)
    saved = {} if overwrite else read_partial(path)
    earlier = saved.get("seconds", 0.0)

    def save(found: dict[float, float]) -> None:
        seconds = earlier + time.perf_counter() - start
        if path is not None:
            write_partial(path, {"sharpness": {f"{eps!r}": v for eps, v in found.items()}, "seconds": seconds})
        if progress:
            eps = next(reversed(found))  # the ε whose search just ended
            c = result.config
            tqdm.write(f"ε-sharpness of {c.task} {c.optimizer} seed {c.seed}: ε {eps:g}, φ {found[eps]:.3g}% "
                       f"({len(found)}/{len(epsilons)} ε, {seconds:.0f} s)")

    model = result.load_model(device)
    inputs = run_inputs(result.config, max_train_examples=1, max_eval_examples=n_examples)
    features = inputs.main_eval
    batches = [pad_collate(features[i:i + batch_size], inputs.pad_id)
               for i in range(0, len(features), batch_size)]
    loss_fn = batches_loss(batches)
    table = sharpness_table(model, loss_fn, epsilons, dim, seed, maxiter, cache_gib, masks,
                            done={float(eps): v for eps, v in saved.get("sharpness", {}).items()},
                            save=save if path is not None or progress else None)
    record = {
        "kind": "sharpness",
        "key": key,
        "settings": settings,
        "config": result.record["config"],
        "finetune_record": run_reference(result.path, results_dir),
        "score": result.record["score"],
        "loss": float(loss_fn(model.eval()).detach()),
        "sharpness": {f"{eps:g}": value for eps, value in table.items()},
        "hessian_top_eigenvalue": hessian_top_eigenvalue(model, loss_fn, hessian_iters, seed=seed, masks=masks),
        **({"masks_sparsity": masks_sparsity(masks)} if masks is not None else {}),
        "n_examples": len(features),
        "wall_time_s": earlier + time.perf_counter() - start,
        "provenance": provenance(next(model.parameters()).device),
    }
    if path is not None:
        write_record(path, record, overwrite=overwrite)
    return {**record, "path": str(path) if path else None}
