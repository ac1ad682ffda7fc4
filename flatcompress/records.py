"""Result records: one JSON file per run, written atomically, keyed by the run's configuration.

A record holds the full config, the metrics, the per-epoch history, the wall time and the
provenance. Its file name ends in a hash of the result-determining config, so the same run
finds its record again (the cache) and different runs never collide. An existing record is
never overwritten unless asked (`overwrite=True`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

from flatcompress.config import FinetuneConfig
from flatcompress.errors import MissingRecordError, RecordExistsError

__all__ = ["atomic_write", "config_key", "record_path", "weights_path", "write_record", "read_record", "read_partial",
           "write_partial", "iter_records", "look_up", "find_measurement", "run_reference"]

SCHEMA_VERSION = 1


def config_key(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `fields` (sorted keys): equal configs, equal keys."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_path(results_dir: str | Path, kind: str, task: str, stem: str, key: str) -> Path:
    """`<results_dir>/<kind>/<task>/<stem>-<key[:12]>.json`."""
    return Path(results_dir) / kind / task / f"{stem}-{key[:12]}.json"


def run_reference(path: str | Path | None, results_dir: str | Path | None) -> str | None:
    """Where a record is, relative to its results folder (records hold no machine paths); None without one."""
    if path is None or results_dir is None:
        return None
    return Path(os.path.relpath(Path(path).resolve(), Path(results_dir).resolve())).as_posix()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any], overwrite: bool = True) -> Path:
    """Write `path` whole or not at all: `write(fh)` fills a temporary file in the same folder, which is synced and
    renamed into place; a kill mid-write leaves the old file (or none), never half of one. With `overwrite=False`
    the file is linked into place instead, so an existing one is never replaced, even in a race
    (`RecordExistsError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise RecordExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def weights_path(record_path: str | Path) -> Path:
    """Where a fine-tuning run keeps its weights: `<record>.safetensors`, next to its record (ignored by git, so a fresh
    checkout has records without weights)."""
    return Path(record_path).with_suffix(".safetensors")


def read_partial(record_path: Path | None) -> dict[str, Any]:
    """What an interrupted measurement saved next to its record (`<record>.partial.json`, ignored by git); {} when
    it saved nothing (or has no results folder)."""
    partial = None if record_path is None else record_path.with_suffix(".partial.json")
    return json.loads(partial.read_text()) if partial is not None and partial.exists() else {}


def write_partial(record_path: Path, state: dict[str, Any]) -> None:
    """Save an unfinished measurement's `state` next to its record, atomically (`read_partial` reads it back)."""
    atomic_write(record_path.with_suffix(".partial.json"), lambda fh: fh.write(json.dumps(state).encode("utf-8")))


def write_record(path: str | Path, record: dict[str, Any], overwrite: bool = False) -> Path:
    """Write `record` to `path` atomically (`atomic_write`); an existing record only with `overwrite=True`. What its
    measurement saved while unfinished (`write_partial`) is removed."""
    text = json.dumps({"schema": SCHEMA_VERSION, **record}, indent=1, default=str) + "\n"
    written = atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), overwrite)
    written.with_suffix(".partial.json").unlink(missing_ok=True)
    return written


def read_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not a valid result record ({exc})") from exc


def iter_records(results_dir: str | Path, kind: str | None = None, **where: Any) -> Iterator[dict[str, Any]]:
    """Records under `results_dir` (optionally of one kind) whose config matches every `where` item."""
    root = Path(results_dir) / kind if kind else Path(results_dir)
    for path in sorted(root.rglob("*.json")):
        record = read_record(path)
        if "kind" not in record:  # a model file's description (a pruned student's sizes), not a record
            continue
        config = record.get("config", {})
        if all(config.get(k) == v for k, v in where.items()):
            record["_path"] = str(path)
            yield record


def look_up(path: Path | None, compute: bool, what: str, older: Sequence[Path] = (),
            overwrite: bool = False) -> dict[str, Any] | None:
    """The record at `path`, or at the first of `older` (the same run keyed before a format change) that exists,
    with its `"path"`; None when it is to be computed. Raises `MissingRecordError` when there is none and `compute`
    is False. `path` None (no results folder) finds nothing; `overwrite` ignores what exists."""
    if not overwrite:
        for candidate in (path, *older):
            if candidate is not None and candidate.exists():
                return {**read_record(candidate), "path": str(candidate)}
    if not compute:
        raise MissingRecordError(f"no {what} record {path}" if path else "compute=False needs a results_dir")
    return None


def find_measurement(results_dir: str | Path | None, kind: str, run: dict[str, Any], settings: dict[str, Any],
                     compute: bool, overwrite: bool = False) -> tuple[str, Path | None, dict[str, Any] | None]:
    """Key, path and (if it exists) record of a measurement of kind `kind` of the fine-tuning run `run` (its record).

    The path is `<results_dir>/<kind>/<task>/<model>-<optimizer>-seed<seed>-<key>.json` (None without a
    results_dir). A missing record with `compute=False` raises `MissingRecordError`.
    """
    key = config_key(settings)
    config = FinetuneConfig.from_record(run["config"])
    path = None if results_dir is None else record_path(results_dir, kind, config.task, config.stem(), key)
    return key, path, look_up(path, compute, kind, overwrite=overwrite)
