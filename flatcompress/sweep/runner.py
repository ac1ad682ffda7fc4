"""Running one job of a plan, the same way under every engine, and the plan's progress.

A plan's state folder (`<plan>.state/`) holds, per job id, `<id>.done` (its summary), `<id>.failed` (the traceback)
and `<id>.log` (what the run printed). A job runs only when every job it waits for is done, and only while it
holds its run's lock (`flatcompress.sweep.locks`), so two sweeps over the same results folder compute each run
once: the second finds the first one's record.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from pathlib import Path
from typing import Sequence

from flatcompress.sweep.jobs import Job, execute
from flatcompress.sweep.locks import claim, is_held, lock_dir, release

__all__ = ["STATES", "state_dir", "run_lock", "job_states", "try_run", "run_job", "summary", "untrained_jobs", "report"]

STATES = ("done", "running", "waiting", "failed", "blocked")


def state_dir(plan: Path, state: str | Path | None = None) -> Path:
    return Path(state) if state is not None else plan.with_name(plan.name + ".state")


def run_lock(job: Job) -> Path:
    return lock_dir(job.results()) / f"{job.run_key()}.lock"


def job_states(jobs: Sequence[Job], state: Path, stale_after: float | None = None) -> dict[str, str]:
    """`done`, `failed`, `running` (its run's lock is held, by this sweep or another), `blocked` (a job it waits
    for failed) or `waiting`, per job id."""
    out: dict[str, str] = {}
    for job in jobs:
        if (state / f"{job.id}.done").exists():
            out[job.id] = "done"
        elif (state / f"{job.id}.failed").exists():
            out[job.id] = "failed"
        elif is_held(run_lock(job), stale_after):
            out[job.id] = "running"
        else:
            out[job.id] = "waiting"
    for job in jobs:  # a plan lists a job after what it waits for: one pass spreads `blocked`
        if out[job.id] == "waiting" and any(out[a] in ("failed", "blocked") for a in job.after):
            out[job.id] = "blocked"
    return out


def try_run(job: Job, state: Path, threads: int | None = None, stale_after: float | None = None) -> str | None:
    """Run `job` if it is not done, everything it waits for is done, and its run's lock is free; return its state
    afterwards (`done`, `failed`, `blocked`), or None when another process holds the lock (try again later)."""
    state.mkdir(parents=True, exist_ok=True)
    if (state / f"{job.id}.done").exists():
        return "done"
    if not all((state / f"{a}.done").exists() for a in job.after):
        return "blocked"
    lock = run_lock(job)
    if not claim(lock, stale_after):
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    (state / f"{job.id}.failed").unlink(missing_ok=True)  # a rerun of a failed job
    start = time.time()
    try:
        with open(state / f"{job.id}.log", "a") as log:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                result = execute(job)
        result["seconds"] = time.time() - start
        (state / f"{job.id}.done").write_text(json.dumps(result, default=str) + "\n")
        return "done"
    except Exception:  # noqa: BLE001 - a failed run is reported, and independent runs go on
        (state / f"{job.id}.failed").write_text(traceback.format_exc())
        return "failed"
    finally:
        release(lock)
        torch.set_num_threads(before)


def run_job(job: Job, state: Path, threads: int | None = None, stale_after: float | None = None,
            poll: float = 5.0) -> str:
    """`try_run` until the lock is free: when another sweep runs the same call, wait for it, then read its record."""
    while (result := try_run(job, state, threads, stale_after)) is None:
        time.sleep(poll)
    return result


def summary(jobs: Sequence[Job], state: Path, started: float, workers: int = 1) -> str:
    """One progress line: counts per state, and the time left at the mean time the records of the jobs done so far
    took to compute. A chapter's notebook (a `reproduce` job) computes whatever runs the plan does not list, so its
    time is not estimated: the line says how many are left beside the estimate."""
    states = job_states(jobs, state)
    counts = {s: sum(v == s for v in states.values()) for s in STATES}
    runs = {j.id for j in jobs if j.method != "reproduce"}
    done = {j: json.loads((state / f"{j}.done").read_text()) for j, s in states.items() if s == "done"}
    seconds = [d.get("wall_time_s") or d.get("seconds", 0) for j, d in done.items() if j in runs]  # a record's own time
    left = {s: sum(v == s for j, v in states.items() if j in runs) for s in ("waiting", "running")}
    notebooks = sum(v in ("waiting", "running") for j, v in states.items() if j not in runs)
    line = ", ".join(f"{n} {s}" for s, n in counts.items())
    if seconds and left["waiting"] + left["running"]:
        mean = sum(seconds) / len(seconds)
        line += f"; about {mean * (left['waiting'] + left['running'] / 2) / 60 / workers:.0f} min left"
    if notebooks:
        line += f" + {notebooks} chapter notebook(s), not estimated (the runs they add are not in the plan)"
    untrained = untrained_jobs(done)
    if untrained:
        line += f"; DID NOT TRAIN: {', '.join(untrained)}"
    return f"[sweep {time.strftime('%H:%M')}, {(time.time() - started) / 60:.0f} min] {line}"


def untrained_jobs(done: dict[str, dict]) -> dict[str, str]:
    """Of the finished jobs' summaries (`<id>.done`, by job id), those whose full fine-tuned model did not clear the
    health gate, with the reason."""
    return {j: d.get("untrained", "") for j, d in done.items() if d.get("trained") is False}


def report(jobs: Sequence[Job], state: Path, started: float) -> dict[str, str]:
    """Print the final summary, with each failure's traceback and log path; return the states."""
    states = job_states(jobs, state)
    print(summary(jobs, state, started), flush=True)
    for job_id, s in states.items():
        if s == "failed":
            print(f"  {job_id}: failed ({state / (job_id + '.failed')}; log {state / (job_id + '.log')})", flush=True)
        elif s == "blocked":
            print(f"  {job_id}: blocked (a job it waits for failed)", flush=True)
    done = {j: json.loads((state / f"{j}.done").read_text()) for j, s in states.items() if s == "done"}
    for job_id, reason in untrained_jobs(done).items():
        print(f"  {job_id}: DID NOT TRAIN ({reason}); the chapters leave its model out of every verdict", flush=True)
    return states
