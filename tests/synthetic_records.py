"""Synthetic result records for the verdict tests: models with chosen accuracies and per-example predictions.

Every model of one task answers the same dev examples; its errors share an example difficulty with every other
model (`rho`), and a compressed or retrained model (`parent=`) keeps most of its parent's errors. Seed-to-seed
spread is `sd_seed`. Records carry only the fields the verdicts read.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from flatcompress.predictions import evaluation_block
from flatcompress.records import write_record

SPLIT = "validation"
_ids = itertools.count()


class Records:
    def __init__(self, root: Path, seed: int = 0, n: int = 200, sd_seed: float = 0.015, rho: float = 0.6):
        self.root, self.n, self.sd_seed, self.rho = Path(root), n, sd_seed, rho
        self.rng = np.random.default_rng(seed)
        self.tasks: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _task(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        if task not in self.tasks:
            self.tasks[task] = (self.rng.integers(0, 2, self.n), self.rng.standard_normal(self.n))
        return self.tasks[task]

    def latent(self, task: str, parent: np.ndarray | None = None, keep: float = 0.9) -> np.ndarray:
        _, shared = self._task(task)
        if parent is None:
            return self.rho * shared + math.sqrt(1 - self.rho ** 2) * self.rng.standard_normal(self.n)
        return keep * parent + math.sqrt(1 - keep ** 2) * self.rng.standard_normal(self.n)

    def predictions(self, task: str, accuracy: float, latent: np.ndarray) -> np.ndarray:
        y, _ = self._task(task)
        return np.where(norm.cdf(latent) < accuracy, y, 1 - y)

    def accuracy(self, mean: float) -> float:
        return float(np.clip(mean + self.sd_seed * self.rng.standard_normal(), 0.0, 1.0))

    def finetune(self, task: str, optimizer: str, seed: int, accuracy: float, parent: np.ndarray | None = None,
                 origin: dict[str, Any] | None = None, name: str = "") -> tuple[dict[str, Any], np.ndarray]:
        """A fine-tuning record (written) and its latent errors."""
        y, _ = self._task(task)
        latent = self.latent(task, parent)
        preds = self.predictions(task, accuracy, latent)
        key = f"k{next(_ids)}"
        record = {"kind": "finetune", "key": key, "config": {"task": task, "optimizer": optimizer, "seed": seed,
                                                              "model": "minilm-l6", "l1": 0.0},
                  "task": {"main_split": SPLIT, "main_metric": "accuracy"},
                  "data": {"n_eval": {SPLIT: self.n}, "majority_rate": float(max(np.mean(y), 1 - np.mean(y)))},
                  "score": float(np.mean(preds == y)), "metrics": {SPLIT: {"accuracy": float(np.mean(preds == y))}},
                  "predictions": {SPLIT: evaluation_block(y, preds, "classification", f"fp-{task}")},
                  "masks": {"fingerprint": key, "origin": origin} if origin else None}
        path = self.root / "finetune" / task / f"{optimizer}-seed{seed}-{name or key}.json"
        write_record(path, record)
        return record, latent

    def chain(self, task: str, optimizer: str, seed: int, accuracies: dict[float, float], rewind: bool = True,
              l1: float = 0.0, model: str | None = None) -> dict[float, tuple[dict[str, Any], np.ndarray]]:
        """An IMP (or standard-pruning) record and its rounds' fine-tuning records (`model`: named in its config)."""
        rounds, rows, parent = {}, [], None
        for sparsity, accuracy in sorted(accuracies.items()):
            record, latent = self.finetune(task, optimizer, seed, accuracy, parent)
            parent = latent if parent is None else parent
            rounds[sparsity] = (record, latent)
            rows.append({"target_sparsity": sparsity, "score": record["score"],
                         "record": f"finetune/{task}/{optimizer}-seed{seed}-{record['key']}.json"})
        write_record(self.root / "imp" / task / f"{optimizer}-{rewind}-{l1}-seed{seed}-{next(_ids)}.json",
                     {"kind": "imp", "key": f"i{next(_ids)}", "settings": {"rewind": rewind},
                      "config": {"task": task, "optimizer": optimizer, "seed": seed, "l1": l1,
                                 **({"model": model} if model else {})}, "rows": rows})
        return rounds

    def derived(self, task: str, accuracy: float, parent: np.ndarray) -> dict[str, Any]:
        """An evaluation block of a compressed version of a model (most of its errors kept)."""
        y, _ = self._task(task)
        preds = self.predictions(task, accuracy, self.latent(task, parent))
        return {"score": float(np.mean(preds == y)), "block": evaluation_block(y, preds, "classification", f"fp-{task}")}

    def sharpness(self, run: dict[str, Any], phi: float, subspace_seed: int = 0, pruned: float | None = None) -> None:
        """A sharpness record of `run`; `pruned`: of a ticket at that sparsity (measured on its unpruned weights)."""
        config = run["config"]
        masks = {"masks": f"m{pruned}"} if pruned is not None else {}
        write_record(self.root / "sharpness" / config["task"] /
                     f"{config['optimizer']}-{run['key']}-{subspace_seed}{'-pruned' if masks else ''}.json",
                     {"kind": "sharpness", "config": config, "sharpness": {"0.005": phi},
                      "settings": {"dim": 100, "finetune_key": run["key"], "seed": subspace_seed, **masks},
                      **({"masks_sparsity": pruned} if masks else {})})

    def oneshot(self, run: dict[str, Any], latent: np.ndarray, accuracies: dict[float, float]) -> None:
        config, rows = run["config"], []
        for sparsity, accuracy in sorted(accuracies.items()):
            d = self.derived(config["task"], accuracy, latent) if sparsity else {
                "score": run["score"], "block": run["predictions"][SPLIT]}
            rows.append({"target_sparsity": sparsity, "score": d["score"], "predictions": {SPLIT: d["block"]}})
        write_record(self.root / "oneshot" / config["task"] / f"{config['optimizer']}-{run['key']}.json",
                     {"kind": "oneshot", "config": config, "task": run["task"], "settings": {"finetune_key": run["key"]},
                      "rows": rows})

    def quantization(self, run: dict[str, Any], latent: np.ndarray, int8_accuracy: float,
                     setting: str = "torch-ao") -> None:
        """A quantization record of `run` with one int8 row of `setting` ("qat-int8": `run` is a QAT run)."""
        config = run["config"]
        d = self.derived(config["task"], int8_accuracy, latent)
        write_record(self.root / "quantization" / config["task"] / f"{config['optimizer']}-{run['key']}.json",
                     {"kind": "quantization", "config": config, "settings": {"finetune_key": run["key"]},
                      "fp32_score": run["score"], "fp32_metrics": {SPLIT: {"accuracy": run["score"]}},
                      "fp32_predictions": run["predictions"],
                      "rows": [{"setting": setting, "score": d["score"], "metrics": {SPLIT: {"accuracy": d["score"]}},
                                "predictions": {SPLIT: d["block"]}}]})

    def cofi(self, teacher: dict[str, Any], latent: np.ndarray, accuracy: float, accepted: bool = True) -> None:
        config = teacher["config"]
        d = self.derived(config["task"], accuracy, latent)
        write_record(self.root / "cofi" / config["task"] / f"{config['optimizer']}-{teacher['key']}.json",
                     {"kind": "cofi", "config": config, "settings": {"seed": config["seed"]},
                      "teacher_key": teacher["key"], "accepted": accepted, "sparsity": 0.95 if accepted else 0.97,
                      "score": d["score"], "task": teacher["task"], "predictions": {SPLIT: d["block"]}})
