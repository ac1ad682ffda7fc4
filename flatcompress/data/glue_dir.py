"""Read a classic `glue_data/` directory (the layout `download_glue_data.py` wrote).

Each file is parsed strictly: a line with the wrong number of columns or an unknown label is
a `DataFormatError` naming the file and the line, never a silently dropped example.
"""

from __future__ import annotations

import json
from pathlib import Path

from flatcompress.data.examples import Example, QAExample
from flatcompress.errors import DataFormatError, DataSourceError
from flatcompress.tasks import Task

__all__ = ["read_glue_split", "glue_split_path"]

# Column names (or indexes for header-less CoLA) of text_a, text_b and label in each task's TSV files.
_LAYOUT: dict[str, dict] = {
    "rte": {"a": "sentence1", "b": "sentence2", "label": "label"},
    "mrpc": {"a": "#1 String", "b": "#2 String", "label": "Quality"},
    "sst2": {"a": "sentence", "label": "label"},
    "cola": {"header": False, "a": 3, "label": 1, "columns": 4},
    "stsb": {"a": "sentence1", "b": "sentence2", "label": "score"},
    "qnli": {"a": "question", "b": "sentence", "label": "label"},
    "qqp": {"a": "question1", "b": "question2", "label": "is_duplicate"},
    "mnli": {"a": "sentence1", "b": "sentence2", "label": "gold_label"},
}
_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
}
_SQUAD_FILES = {"train": "train-v1.1.json", "validation": "dev-v1.1.json"}


def glue_split_path(task: Task, root: Path, split: str) -> Path:
    """Where `split` of `task` lives under the glue_data directory `root`."""
    files = _SQUAD_FILES if task.kind == "qa" else _FILES
    return Path(root) / str(task.glue_dir) / files[split]


def read_glue_split(task: Task, root: Path, split: str) -> list:
    """All examples of one split, in file order."""
    path = glue_split_path(task, root, split)
    if not path.is_file():
        raise DataSourceError(f"{path} does not exist: the glue_data directory {root} has no {split!r} split of "
                              f"{task.title}")
    if task.kind == "qa":
        return _read_squad_json(path)
    return _read_tsv(task, path)


def _read_tsv(task: Task, path: Path) -> list[Example]:
    layout = _LAYOUT[task.name]
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
    if lines and lines[-1] == "":
        lines.pop()
    if layout.get("header", True):
        if not lines:
            raise DataFormatError(f"{path}:1: empty file, expected a header line")
        header = lines[0].split("\t")
        try:
            cols = {k: header.index(layout[k]) for k in ("a", "b", "label") if k in layout}
        except ValueError as exc:
            raise DataFormatError(f"{path}:1: header {header} lacks a column this task needs ({exc})") from exc
        n_columns, first = len(header), 1
    else:
        cols = {k: layout[k] for k in ("a", "b", "label") if k in layout}
        n_columns, first = layout["columns"], 0
    examples = []
    for lineno, line in enumerate(lines[first:], start=first + 1):
        fields = line.split("\t")
        if len(fields) != n_columns:
            raise DataFormatError(f"{path}:{lineno}: expected {n_columns} tab-separated columns, found {len(fields)}")
        label = _parse_label(task, fields[cols["label"]], path, lineno)
        examples.append(Example(fields[cols["a"]], fields[cols["b"]] if "b" in cols else None, label))
    return examples


def _parse_label(task: Task, raw: str, path: Path, lineno: int) -> int | float:
    try:
        if task.kind == "regression":
            return float(raw)
        if raw in task.labels:
            return task.labels.index(raw)
        value = int(raw)
        if not 0 <= value < task.num_labels:
            raise ValueError(raw)
        return value
    except ValueError:
        expected = "a number" if task.kind == "regression" else f"one of {list(task.labels)} or 0..{task.num_labels - 1}"
        raise DataFormatError(f"{path}:{lineno}: label {raw!r} is not {expected}") from None


def _read_squad_json(path: Path) -> list[QAExample]:
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(f"{path}: not a SQuAD v1.1 JSON file ({exc})") from exc
    return [
        QAExample(qa["id"], qa["question"], para["context"],
                  tuple(a["text"] for a in qa["answers"]), tuple(a["answer_start"] for a in qa["answers"]))
        for article in articles for para in article["paragraphs"] for qa in para["qas"]
    ]
