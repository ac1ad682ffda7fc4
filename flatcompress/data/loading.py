"""`load_task`: choose a source, read the task, take seeded subsets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from flatcompress.data.bundled import read_bundled
from flatcompress.data.examples import TaskData, majority_rate
from flatcompress.data.glue_dir import read_glue_split
from flatcompress.data.hub import read_hub
from flatcompress.errors import DataSourceError
from flatcompress.tasks import TASKS, Task, get_task

__all__ = ["SOURCES", "load_task", "glue_dir_from_env", "resolve_source"]

SOURCES = ("auto", "hub", "glue_dir", "bundled")
GLUE_DIR_ENV = "FLATCOMPRESS_GLUE_DIR"


def glue_dir_from_env() -> Path | None:
    """The glue_data directory named by FLATCOMPRESS_GLUE_DIR (or the classic GLUE_DIR), if any."""
    value = os.environ.get(GLUE_DIR_ENV) or os.environ.get("GLUE_DIR")
    return Path(value).expanduser() if value else None


def resolve_source(task: Task, source: str = "auto", data_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """Which source serves `task`, and the glue_data directory when that is the source.

    `auto` prefers bundled data, then a glue_data directory that holds the task, then the hub.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid sources: {', '.join(SOURCES)}")
    root = Path(data_dir).expanduser() if data_dir else glue_dir_from_env()
    if source == "auto":
        if task.bundled:
            return "bundled", None
        if root is not None and (root / str(task.glue_dir)).is_dir():
            return "glue_dir", root
        return "hub", None
    if source == "bundled" and not task.bundled:
        bundled = ", ".join(n for n, t in TASKS.items() if t.bundled)
        raise DataSourceError(f"task {task.name!r} is not bundled; bundled tasks: {bundled}")
    if source in ("glue_dir", "hub") and task.bundled:
        raise DataSourceError(f"task {task.name!r} is only available from source 'bundled'")
    if source == "glue_dir":
        if root is None:
            raise DataSourceError(f"source 'glue_dir' needs a directory: pass data_dir (--data-dir) or set {GLUE_DIR_ENV}")
        if not (root / str(task.glue_dir)).is_dir():
            raise DataSourceError(f"{root / str(task.glue_dir)} does not exist: {root} is not a glue_data/ "
                                  f"directory with {task.title} in it")
    return source, (root if source == "glue_dir" else None)


def _subset(examples: list, n: int | None, seed: int) -> list:
    """A seeded random subset of size n (in the original order), or everything when n is None or larger."""
    if n is None or n >= len(examples):
        return list(examples)
    keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:n])
    return [examples[i] for i in keep]


def load_task(task: str | Task, source: str = "auto", data_dir: str | Path | None = None,
              max_train_examples: int | None = None, max_eval_examples: int | None = None,
              seed: int = 0) -> TaskData:
    """Read `task` from `source` and take seeded subsets.

    `seed` is the *data* seed: it fixes the subsets (and the Rotten Tomatoes movie split), so
    runs that differ only in their training seed see the same examples.
    """
    task = get_task(task) if isinstance(task, str) else task
    for name, value in (("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1 (or None for all), got {value}")
    source, root = resolve_source(task, source, data_dir)
    if source == "bundled":
        splits = read_bundled(task, seed)
    elif source == "glue_dir":
        splits = {s: read_glue_split(task, root, s) for s in ("train", *task.eval_splits)}  # type: ignore[arg-type]
    else:
        splits = read_hub(task)
    train = _subset(splits["train"], max_train_examples, seed)
    evals = {s: _subset(splits[s], max_eval_examples, seed + 1) for s in task.eval_splits}
    info = {"source": source, "data_dir": str(root) if root else None,
            "n_train_available": len(splits["train"]), "n_train": len(train),
            "n_eval": {s: len(v) for s, v in evals.items()}}
    if task.kind == "classification":
        info["majority_rate"] = majority_rate(evals[task.eval_splits[0]])
    return TaskData(task, source, train, evals, info)
