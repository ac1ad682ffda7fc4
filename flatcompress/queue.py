"""A plain, resumable job queue for long batches of runs on one machine (`flatcompress queue`).

A *plan* is a JSON list of jobs. Each job is one call of a chapter's method, the same call a notebook makes, so
its records are the ones the chapter reads:

    {"id": "sst2-sam-0", "chapter": "train-flat", "profile": "cpu", "method": "finetune",
     "args": {"task": "sst2", "optimizer": "sam", "seed": 0}, "after": ["..."], "results_dir": null}

`run(plan, workers=2, threads=1)` starts `workers` processes with `threads` torch threads each. A worker claims
the next job whose `after` jobs are done by creating `<state>/<id>.lock` atomically (host, pid, start time);
a finished job leaves `<id>.done`, a failed one `<id>.failed` (with the traceback) and its log in `<id>.log`. A
failure does not stop independent jobs; jobs after it are reported as blocked. Killing the queue loses only the
jobs in progress, and those resume from their last finished epoch: run the same plan again and finished jobs
are skipped, locks of dead workers on this host are broken, and the rest continue.

The state folder defaults to `<plan>.state/` beside the plan. Records go where the chapter's tier keeps them
(`results/<profile>`), or to the job's `results_dir`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["Job", "load_plan", "write_plan", "job_states", "run", "work"]

_METHODS = ("finetune", "sharpness", "dropout_replay", "one_shot", "quantization", "cofi", "imp", "reproduce")


@dataclass(frozen=True)
class Job:
    """One chapter call, `Chapter.open(chapter, profile, compute=True, results_dir=...).<method>(**args)`, or with
    method `reproduce` the chapter's notebook (`flatcompress.reproduce`, args `tasks` and `seeds`)."""

    id: str
    chapter: str
    profile: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    results_dir: str | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"job {self.id!r}: unknown method {self.method!r}; valid methods: {', '.join(_METHODS)}")
        if not self.id or any(c in self.id for c in "/\\ ") or self.id.startswith("."):
            raise ValueError(f"a job id is a non-empty name without slashes or spaces, got {self.id!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "chapter": self.chapter, "profile": self.profile, "method": self.method,
                "args": self.args, "after": list(self.after), "results_dir": self.results_dir}


def load_plan(path: str | Path) -> list[Job]:
    """The jobs of a plan file, checked: unique ids, known methods, profiles and chapters, `after` ids that exist."""
    from flatcompress.profiles import get_profile
    from flatcompress.reproduce import CHAPTERS

    items = json.loads(Path(path).read_text(encoding="utf-8"))
    jobs = [Job(**{**item, "after": tuple(item.get("after", ()))}) for item in items]
    ids = [j.id for j in jobs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"job ids must be unique; repeated: {', '.join(duplicates)}")
    for job in jobs:
        get_profile(job.profile)
        if job.chapter not in CHAPTERS:
            raise ValueError(f"job {job.id!r}: unknown chapter {job.chapter!r}; chapters: {', '.join(CHAPTERS)}")
        missing = [a for a in job.after if a not in ids]
        if missing:
            raise ValueError(f"job {job.id!r} waits for jobs that are not in the plan: {', '.join(missing)}")
    return jobs


def write_plan(path: str | Path, jobs: Sequence[Job]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([j.to_dict() for j in jobs], indent=1) + "\n", encoding="utf-8")
    return path


def _state_dir(plan: Path, state: str | Path | None) -> Path:
    return Path(state) if state is not None else plan.with_name(plan.name + ".state")


def _alive(lock: Path) -> bool:
    """A lock is held while its process lives (on this host; a lock from another host is trusted)."""
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return True  # being written right now
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_states(jobs: Sequence[Job], state: Path) -> dict[str, str]:
    """`done`, `failed`, `running`, `blocked` (a job it waits for failed) or `waiting`, per job id."""
    out: dict[str, str] = {}
    for job in jobs:
        if (state / f"{job.id}.done").exists():
            out[job.id] = "done"
        elif (state / f"{job.id}.failed").exists():
            out[job.id] = "failed"
        elif (state / f"{job.id}.lock").exists() and _alive(state / f"{job.id}.lock"):
            out[job.id] = "running"
        else:
            out[job.id] = "waiting"
    changed = True
    while changed:  # blocked spreads along `after`
        changed = False
        for job in jobs:
            if out[job.id] == "waiting" and any(out[a] in ("failed", "blocked") for a in job.after):
                out[job.id], changed = "blocked", True
    return out


def _claim(job: Job, state: Path) -> bool:
    lock = state / f"{job.id}.lock"
    if lock.exists() and not _alive(lock):
        lock.unlink(missing_ok=True)  # its worker died: the run resumes from its last epoch
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, fh)
    return True


def _execute(job: Job) -> dict[str, Any]:
    from flatcompress.chapter import Chapter

    if job.method == "reproduce":  # the whole chapter notebook (its tasks and seeds narrowed by the job's args)
        from flatcompress.reproduce import reproduce

        rows = reproduce(job.profile, [job.chapter], job.args.get("tasks"), job.args.get("seeds"),
                         results_dir=job.results_dir, progress=False)
        return {"record": f"chapter {job.chapter}", "score": None, "rows": len(rows)}

    chapter = Chapter.open(job.chapter, job.profile, compute=True, results_dir=job.results_dir)
    result = getattr(chapter, job.method)(**job.args)
    record = getattr(result, "record", result)
    return {"record": record.get("path") or str(getattr(result, "path", "")), "score": record.get("score"),
            "wall_time_s": record.get("wall_time_s")}


_MODULES = ("chapter", "claims", "cofi", "dropout_replay", "imp", "oneshot", "quantization_records", "reproduce",
            "sharpness_records", "training")


def work(plan: str | Path, state: str | Path | None = None, threads: int = 1, poll: float = 5.0) -> int:
    """One worker: claim and run jobs until none is left to claim; returns how many it ran.

    It imports every module a job may use, and reads the code's version, before the first job: a worker runs the
    code of its start to the end, even if the checkout is edited meanwhile (restart the queue to run new code)."""
    import importlib

    import torch

    from flatcompress.provenance import code_version

    for module in _MODULES:
        importlib.import_module(f"flatcompress.{module}")
    code_version()
    torch.set_num_threads(threads)
    plan = Path(plan)
    jobs, folder = load_plan(plan), _state_dir(plan, state)
    folder.mkdir(parents=True, exist_ok=True)
    ran = 0
    while True:
        states = job_states(jobs, folder)
        ready = [j for j in jobs if states[j.id] == "waiting" and all(states[a] == "done" for a in j.after)]
        claimed = next((j for j in ready if _claim(j, folder)), None)
        if claimed is None:
            if ready:
                continue  # another worker took them first: look again
            if any(s == "waiting" for s in states.values()) and any(s == "running" for s in states.values()):
                time.sleep(poll)  # what is left waits for jobs that other workers run
                continue
            return ran
        start = time.time()
        print(f"[{claimed.id}] started", flush=True)
        try:
            summary = _execute(claimed)
            summary["seconds"] = time.time() - start
            (folder / f"{claimed.id}.done").write_text(json.dumps(summary, default=str) + "\n")
            print(f"[{claimed.id}] done in {summary['seconds'] / 60:.1f} min: {summary}", flush=True)
        except Exception:  # noqa: BLE001 - a failed run is reported, and independent runs go on
            (folder / f"{claimed.id}.failed").write_text(traceback.format_exc())
            print(f"[{claimed.id}] FAILED (see {folder / (claimed.id + '.failed')})", flush=True)
        finally:
            (folder / f"{claimed.id}.lock").unlink(missing_ok=True)
        ran += 1


def _summary(jobs: Sequence[Job], folder: Path, started: float, workers: int = 1) -> str:
    states = job_states(jobs, folder)
    counts = {s: sum(v == s for v in states.values()) for s in ("done", "running", "waiting", "failed", "blocked")}
    done_now = [json.loads((folder / f"{j}.done").read_text()).get("seconds", 0) for j, s in states.items()
                if s == "done"]
    line = ", ".join(f"{n} {s}" for s, n in counts.items())
    if done_now and counts["waiting"] + counts["running"]:
        mean = sum(done_now) / len(done_now)
        line += f"; about {mean * (counts['waiting'] + counts['running'] / 2) / 60 / workers:.0f} min left"
    return f"[queue {time.strftime('%H:%M')}, {(time.time() - started) / 60:.0f} min] {line}"


def run(plan: str | Path, workers: int = 2, threads: int = 1, state: str | Path | None = None,
        poll: float = 60.0) -> dict[str, str]:
    """Run a plan with `workers` processes of `threads` threads each; print progress; return the final states."""
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be at least 1, got {workers} and {threads}")
    plan = Path(plan)
    jobs, folder = load_plan(plan), _state_dir(plan, state)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    procs = []
    for i in range(workers):
        log = open(folder / f"worker-{i}.log", "a")
        procs.append((subprocess.Popen([sys.executable, "-m", "flatcompress.queue", "work", str(plan), "--state",
                                        str(folder), "--threads", str(threads)], stdout=log, stderr=subprocess.STDOUT,
                                       env=env), log))
    started = time.time()
    try:
        while any(p.poll() is None for p, _ in procs):
            print(_summary(jobs, folder, started, workers), flush=True)
            for _ in range(int(poll)):
                if all(p.poll() is not None for p, _ in procs):
                    break
                time.sleep(1)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.terminate()
            log.close()
    states = job_states(jobs, folder)
    print(_summary(jobs, folder, started), flush=True)
    for job_id, s in states.items():
        if s in ("failed", "blocked"):
            print(f"  {job_id}: {s}" + (f" ({folder / (job_id + '.failed')})" if s == "failed" else ""))
    return states


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m flatcompress.queue")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "work", "status"):
        p = sub.add_parser(name)
        p.add_argument("plan")
        p.add_argument("--state")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "work":
        work(args.plan, args.state, args.threads)
    elif args.command == "status":
        jobs = load_plan(args.plan)
        print(_summary(jobs, _state_dir(Path(args.plan), args.state), time.time()))
    else:
        states = run(args.plan, args.workers, args.threads, args.state)
        return 1 if any(s in ("failed", "blocked") for s in states.values()) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
