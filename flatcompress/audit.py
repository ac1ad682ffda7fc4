"""`flatcompress audit`: check every result record under a results folder, fast enough for CI.

For each record it checks:

- **schema**: the record parses and has the fields of its kind;
- **key**: the key stored in the record equals the key the current code computes from the record's config (and
  its file name ends in it), so a code change that would change a result is noticed: the record must be
  recomputed, or the change made without touching what enters the key;
- **no machine paths**: no string value is an absolute path;
- **evidence**: evaluation records with a data fingerprint (or measuring a run that has one) hold per-example
  predictions; records written before fingerprints existed, and their measurements, are listed as `legacy`;
- **provenance**: records written from a tree with uncommitted changes are named (not an error: the commit is
  still recorded).

`audit(root)` returns an `Audit` whose `errors` fail the command; `summary()` counts records per tier and kind,
and seeds per (task, optimizer) of the full fine-tuning runs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from flatcompress.records import config_key

__all__ = ["Audit", "audit", "REQUIRED"]

REQUIRED = {
    "finetune": ("key", "config", "task", "data", "score", "metrics", "history", "provenance"),
    "imp": ("key", "settings", "config", "rows", "provenance"),
    "sharpness": ("key", "settings", "config", "sharpness", "provenance"),
    "oneshot": ("key", "settings", "config", "rows", "provenance"),
    "quantization": ("key", "settings", "config", "fp32_metrics", "rows", "provenance"),
    "cofi": ("key", "settings", "config", "teacher_key", "score", "provenance"),
    "dropout_replay": ("key", "settings", "config", "rows", "provenance"),
    "contours": ("key", "settings", "config", "points", "loss", "metric", "provenance"),
}


def _measured(record: dict[str, Any]) -> list[str]:
    """The keys of the runs a measurement (or a CoFi student) was made from; empty for a run."""
    if record["kind"] == "cofi":
        return [record["teacher_key"]]
    settings = record.get("settings") or {}
    if record["kind"] == "contours":
        return [settings.get("adam_key", ""), settings.get("sam_key", "")]
    return [settings.get("finetune_key", "")] if record["kind"] not in ("finetune", "imp") else []


@dataclass
class Audit:
    root: Path
    records: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)  # no data fingerprint (written before fingerprints existed)
    dirty: list[str] = field(default_factory=list)  # written from a tree with uncommitted changes

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """Records per tier and kind, and seeds per (task, optimizer) of the full fine-tuning runs."""
        lines = []
        tiers = sorted({p.relative_to(self.root).parts[0] for p, _ in self.records})
        for tier in tiers:
            mine = [(p, r) for p, r in self.records if p.relative_to(self.root).parts[0] == tier]
            kinds = Counter(r["kind"] for _, r in mine)
            counts = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            lines.append(f"{tier}: {len(mine)} records ({counts})")
            seeds: dict[tuple[str, str], set] = {}
            for _, r in mine:
                if r["kind"] == "finetune" and not r.get("masks") and not r.get("start"):
                    c = r["config"]
                    seeds.setdefault((c["task"], c["optimizer"]), set()).add(c["seed"])
            if seeds:
                lines.append("  full fine-tuning seeds: " + "; ".join(
                    f"{t} {o} {len(s)}" for (t, o), s in sorted(seeds.items())))
            legacy = sum(str(p).startswith(str(self.root / tier)) for p in map(Path, self.legacy))
            dirty = sum(str(p).startswith(str(self.root / tier)) for p in map(Path, self.dirty))
            lines.append(f"  legacy (no data fingerprint): {legacy}; written from a tree with uncommitted changes: {dirty}")
        lines.append(f"{len(self.errors)} error(s)")
        return "\n".join(lines)


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def _absolute(text: str) -> bool:
    """A POSIX path from the root with at least two parts, or a Windows drive path."""
    if len(text) > 2 and text[1] == ":" and text[2] in "\\/" and text[0].isalpha():
        return True
    return text.startswith("/") and text.count("/") >= 2 and " " not in text.split("/")[1]


def _finetune_key(record: dict[str, Any]) -> tuple[str | None, bool]:
    """(the key the current code computes, whether the record has a data fingerprint)."""
    from flatcompress.config import FinetuneConfig
    from flatcompress.records import config_key as key_of

    config = FinetuneConfig(**record["config"])
    digest = ((record.get("data") or {}).get("fingerprint") or {}).get("digest")
    fields = config.result_fields(digest)
    if record.get("masks"):
        fields["masks"] = record["masks"]["fingerprint"]
    if record.get("start"):
        fields["start"] = record["start"]
    return key_of(fields), digest is not None


def _expected_key(record: dict[str, Any]) -> tuple[str | None, bool | None]:
    kind = record["kind"]
    if kind == "finetune":
        return _finetune_key(record)
    if kind == "imp":
        from flatcompress.config import FinetuneConfig

        settings = record["settings"]
        digest = settings["finetune"].get("data")
        if FinetuneConfig(**record["config"]).result_fields(digest) != settings["finetune"]:
            return None, digest is not None  # its config no longer gives the fields its key hashed
        return config_key(settings), digest is not None
    if kind == "cofi":
        return config_key({"teacher": record["teacher_key"], "settings": record["settings"]}), None
    return config_key(record["settings"]), None  # a measurement: as fingerprinted as the run it measured


def _has_predictions(record: dict[str, Any]) -> bool:
    kind = record["kind"]
    if kind in ("finetune", "cofi"):
        return bool(record.get("predictions"))
    if kind == "oneshot":
        return all(r.get("predictions") for r in record["rows"])
    if kind == "quantization":
        return bool(record.get("fp32_predictions")) and all(r.get("predictions") for r in record["rows"])
    return True


def audit(root: str | Path) -> Audit:
    """Check every record under `root` (e.g. `results/`)."""
    root = Path(root)
    report = Audit(root)
    keys, fingerprints = {}, {}
    for path in sorted(root.rglob("*.json")):
        name = str(path.relative_to(root))
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            report.errors.append(f"{name}: not valid JSON ({exc})")
            continue
        if not isinstance(record, dict) or "kind" not in record:
            continue  # a model file's description (a pruned student's sizes), not a record
        kind = record["kind"]
        if kind not in REQUIRED:
            report.errors.append(f"{name}: unknown kind {kind!r}; kinds: {', '.join(REQUIRED)}")
            continue
        missing = [f for f in REQUIRED[kind] if f not in record]
        if missing:
            report.errors.append(f"{name}: a {kind} record without {', '.join(missing)}")
            continue
        report.records.append((path, record))
        keys[record["key"]] = record
        for where, text in _strings(record):
            if _absolute(text):
                report.errors.append(f"{name}: {where} is a machine path ({text})")
        try:
            expected, fingerprinted = _expected_key(record)
        except (TypeError, ValueError, KeyError) as exc:
            report.errors.append(f"{name}: its config no longer builds ({type(exc).__name__}: {exc})")
            continue
        if expected != record["key"]:
            report.errors.append(f"{name}: its key {record['key'][:12]} is not the key the current code computes from "
                                 f"its config ({(expected or 'none')[:12]}): recompute it, or keep the code's keys")
        elif not path.stem.endswith(record["key"][:12]):
            report.errors.append(f"{name}: the file name does not end in its key {record['key'][:12]}")
        fingerprints[str(path)] = fingerprinted
        if record["provenance"].get("git_dirty"):
            report.dirty.append(str(path))
    for path, record in report.records:
        name = str(path.relative_to(root))
        fingerprinted = fingerprints.get(str(path))
        if fingerprinted is None:  # a measurement or a CoFi run: judged by the runs it measured
            runs = [keys.get(k) for k in _measured(record)]
            fingerprinted = bool(runs) and all(run and (run.get("data") or {}).get("fingerprint") for run in runs)
        if not fingerprinted:
            report.legacy.append(str(path))
        elif not _has_predictions(record):
            report.errors.append(f"{name}: a {record['kind']} record without per-example predictions")
    for path, record in report.records:  # a measurement names the runs it measured: they must be here
        for key in (k for k in _measured(record) if record["kind"] != "cofi" and k not in keys):
            report.errors.append(f"{path.relative_to(root)}: measures run {key[:12]}, which has no record here")
    return report
