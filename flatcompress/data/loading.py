"""`load_task`: choose a source, read the task, take seeded subsets."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flatcompress.data.bundled import read_bundled
from flatcompress.data.examples import TaskData, majority_rate
from flatcompress.data.glue_dir import read_glue_split
from flatcompress.data.hub import read_hub
from flatcompress.errors import DataSourceError
from flatcompress.tasks import TASKS, Task, get_task

if TYPE_CHECKING:
    from flatcompress.config import FinetuneConfig

__all__ = ["SOURCES", "HELDOUT_SPLIT", "load_task", "load_run_data", "glue_dir_from_env", "resolve_source"]

SOURCES = ("auto", "hub", "glue_dir", "bundled")
GLUE_DIR_ENV = "FLATCOMPRESS_GLUE_DIR"
HELDOUT_SPLIT = "heldout"  # the evaluation split of a run that holds out part of the training data


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
    if root is not None and not root.is_dir():
        where = "--data-dir (data_dir)" if data_dir else f"${GLUE_DIR_ENV}"
        raise DataSourceError(f"the data directory {root} given by {where} does not exist or is not a directory; "
                              f"point it at a glue_data/ folder (one sub-folder per task: RTE, MRPC, SST-2, ...), "
                              f"or leave it unset to use the bundled tasks and the hub")
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


def _file_stamps(task: Task, root: Path) -> tuple:
    """(name, size, mtime) of the task's files: a changed file is read again, not served from the cache."""
    folder = root / str(task.glue_dir)
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())


@functools.lru_cache(maxsize=16)
def _read_splits(task_name: str, source: str, root: str | None, seed: int, stamps: tuple) -> dict[str, tuple]:
    """Every split of one task from one source, read once per process (`stamps` invalidates on file changes)."""
    task = get_task(task_name)
    if source == "bundled":
        splits = read_bundled(task, seed)
    elif source == "glue_dir":
        splits = {s: read_glue_split(task, Path(root), s) for s in ("train", *task.eval_splits)}  # type: ignore[arg-type]
    else:
        splits = read_hub(task)
    return {s: tuple(v) for s, v in splits.items()}


def load_task(task: str | Task, source: str = "auto", data_dir: str | Path | None = None,
              max_train_examples: int | None = None, max_eval_examples: int | None = None,
              seed: int = 0, holdout: int = 0) -> TaskData:
    """Read `task` from `source` and take seeded subsets.

    `seed` is the *data* seed: it fixes the subsets (and the Rotten Tomatoes movie split), so
    runs that differ only in their training seed see the same examples.

    `holdout > 0` holds out that many training examples (seeded, disjoint from the training subset) as the only
    evaluation split, `"heldout"`: what hyperparameters are chosen on, so that the dev sets the verdicts use are
    never looked at while choosing them.
    """
    task = get_task(task) if isinstance(task, str) else task
    for name, value in (("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1 (or None for all), got {value}")
    if holdout < 0:
        raise ValueError(f"holdout must be >= 0, got {holdout}")
    source, root = resolve_source(task, source, data_dir)
    stamps = _file_stamps(task, root) if root is not None else ()
    splits = _read_splits(task.name, source, str(root) if root else None, seed if source == "bundled" else 0, stamps)
    pool = list(splits["train"])
    if holdout:
        if holdout >= len(pool):
            raise ValueError(f"holdout ({holdout}) must be smaller than {task.title}'s {len(pool)} training examples")
        order = np.random.default_rng([seed, 2]).permutation(len(pool))
        held = set(order[:holdout].tolist())
        evals = {HELDOUT_SPLIT: [e for i, e in enumerate(pool) if i in held]}
        pool = [e for i, e in enumerate(pool) if i not in held]
    else:
        evals = {s: _subset(list(splits[s]), max_eval_examples, seed + 1) for s in task.eval_splits}
    train = _subset(pool, max_train_examples, seed)
    main_split = next(iter(evals))
    info = {"source": source, "n_train_available": len(splits["train"]), "n_train": len(train),
            "n_eval": {s: len(v) for s, v in evals.items()}, "holdout": holdout}
    if task.kind == "classification":
        info["majority_rate"] = majority_rate(evals[main_split])
    return TaskData(task, source, train, evals, info, main_split)


def load_run_data(config: FinetuneConfig, max_train_examples: int | None | str = "config",
                  max_eval_examples: int | None | str = "config") -> TaskData:
    """The data of the run `config` describes: the same examples it trained and was evaluated on. Either size may
    be overridden (e.g. `max_eval_examples=256` for a measurement)."""
    return load_task(config.task, config.source, config.data_dir,
                     config.max_train_examples if max_train_examples == "config" else max_train_examples,
                     config.max_eval_examples if max_eval_examples == "config" else max_eval_examples,
                     config.data_seed, config.holdout)
