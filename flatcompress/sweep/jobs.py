"""A job is one chapter call, the same call a notebook makes, so its records are the ones the chapter reads.

A *plan* is a JSON list of jobs:

    {"id": "ft-sst2-sam-0", "chapter": "train-flat", "profile": "cpu", "method": "finetune",
     "args": {"task": "sst2", "optimizer": "sam", "seed": 0}, "after": ["..."], "results_dir": null}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["METHODS", "Job", "load_plan", "write_plan", "check_plan", "execute"]

METHODS = ("finetune", "sharpness", "dropout_replay", "one_shot", "quantization", "cofi", "imp", "ticket_sharpness",
           "contours", "reproduce")


@dataclass(frozen=True)
class Job:
    """One chapter call, `Chapter.open(chapter, profile, compute=True, results_dir=...).<method>(**args)`, or with
    method `reproduce` the chapter's notebook (`flatcompress.book.reproduce`, args `tasks` and `seeds`)."""

    id: str
    chapter: str
    profile: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    results_dir: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"job {self.id!r}: unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        if not self.id or any(c in self.id for c in "/\\ ") or self.id.startswith("."):
            raise ValueError(f"a job id is a non-empty name without slashes or spaces, got {self.id!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "chapter": self.chapter, "profile": self.profile, "method": self.method,
                "args": self.args, "after": list(self.after), "results_dir": self.results_dir}

    @property
    def closing(self) -> bool:
        """A chapter's closing notebook (`chapter-<chapter>`, planned after every run of its chapter): it reads their
        records and computes nothing, so it takes no time and needs no run's weights."""
        return self.method == "reproduce" and self.id == f"chapter-{self.chapter}"

    def results(self) -> Path:
        """The folder its records go to: the job's `results_dir`, or the tier's (`results/<profile>`)."""
        from flatcompress.book.chapter import results_root

        return Path(self.results_dir) if self.results_dir is not None else results_root() / self.profile

    def run_key(self) -> str:
        """What the job computes, independent of its id and plan: two plans that hold the same call share this key,
        and so the run's lock (`flatcompress.sweep.locks`). A chapter's notebook is its own run; a method call is the
        same run from any chapter."""
        what = {"profile": self.profile, "method": self.method, "args": self.args,
                **({"chapter": self.chapter} if self.method == "reproduce" else {})}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{self.method}-{digest}"


def check_plan(jobs: Sequence[Job]) -> list[Job]:
    """Refuse a plan before anything runs: repeated ids, unknown profiles or chapters, `after` ids not in the plan,
    or an `after` that comes later (a plan lists a job after everything it waits for)."""
    from flatcompress.book.reproduce import CHAPTERS
    from flatcompress.profiles import get_profile

    ids = [j.id for j in jobs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"job ids must be unique; repeated: {', '.join(duplicates)}")
    seen: set[str] = set()
    for job in jobs:
        get_profile(job.profile)
        if job.chapter not in CHAPTERS:
            raise ValueError(f"job {job.id!r}: unknown chapter {job.chapter!r}; chapters: {', '.join(CHAPTERS)}")
        missing = [a for a in job.after if a not in ids]
        if missing:
            raise ValueError(f"job {job.id!r} waits for jobs that are not in the plan: {', '.join(missing)}")
        later = [a for a in job.after if a not in seen]
        if later:
            raise ValueError(f"job {job.id!r} waits for jobs listed after it: {', '.join(later)}")
        seen.add(job.id)
    return list(jobs)


def load_plan(path: str | Path) -> list[Job]:
    """The jobs of a plan file, checked by `check_plan`."""
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    return check_plan([Job(**{**item, "after": tuple(item.get("after", ()))}) for item in items])


def write_plan(path: str | Path, jobs: Sequence[Job]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([j.to_dict() for j in jobs], indent=1) + "\n", encoding="utf-8")
    return path


def execute(job: Job, compute: bool = True) -> dict[str, Any]:
    """Make the job's call; its summary (record path, score, wall time). `compute=False` only reads: a missing
    record raises `MissingRecordError` (what `flatcompress plan` uses to tell which runs exist)."""
    import dataclasses

    from flatcompress.book.chapter import Chapter
    from flatcompress.sweep.eta import record_minutes

    if job.method == "reproduce":  # the whole chapter notebook (its tasks and seeds narrowed by the job's args)
        from flatcompress.book.reproduce import reproduce

        if not compute:
            raise ValueError("a chapter's notebook is not looked up; it runs (it computes only what is missing)")
        rows = reproduce(job.profile, [job.chapter], job.args.get("tasks"), job.args.get("seeds"),
                         results_dir=job.results_dir, progress=False, log_outputs=True)
        return {"record": f"chapter {job.chapter}", "score": None, "rows": len(rows)}

    chapter = Chapter.open(job.chapter, job.profile, compute=compute, results_dir=job.results_dir)
    if not compute:
        chapter = dataclasses.replace(chapter, compute=False)  # the smoke tier opens with compute=True
    result = getattr(chapter, job.method)(**job.args)
    record = getattr(result, "record", result)
    summary = {"record": record.get("path") or str(getattr(result, "path", "")), "score": record.get("score"),
               "wall_time_s": record.get("wall_time_s"), "minutes": record_minutes(record),
               "cached": getattr(result, "cached", None)}
    if record.get("kind") == "finetune" and not record.get("masks"):  # a full model: did it train?
        from flatcompress.stats import record_health

        verdict = record_health(record)
        summary.update(trained=verdict.trained, **({} if verdict.trained else {"untrained": verdict.reason}))
    return summary
