"""Running one job of a plan, the same way under every engine, and the plan's progress.

A plan's state folder (`<plan>.state/`) holds, per job id, `<id>.done` (its summary), `<id>.failed` (the traceback)
and `<id>.log` (what the run printed). A job runs only when every job it waits for is done, and only while it
holds its run's lock (`flatcompress.sweep.locks`), so two sweeps over the same results folder compute each run
once: the second finds the first one's record.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import traceback
from pathlib import Path
from typing import Iterator, Sequence

from flatcompress.records import weights_path
from flatcompress.sweep.jobs import Job, execute
from flatcompress.sweep.locks import claim, is_held, lock_dir, release

__all__ = ["STATES", "state_dir", "run_lock", "job_states", "try_run", "run_job", "summary", "done_summaries",
           "done_minutes", "job_minutes", "fits", "has_record", "retrains", "startable", "untrained_jobs", "report"]

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
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _thread_env(threads):
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


@contextlib.contextmanager
def _thread_env(threads: int | None) -> Iterator[None]:
    """`threads` for the processes a job starts, too (a chapter notebook's kernel): they read the thread count from
    the environment, not from this process's torch. Restored afterwards."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    if threads:
        os.environ.update({n: str(threads) for n in names})
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def run_job(job: Job, state: Path, threads: int | None = None, stale_after: float | None = None,
            poll: float = 5.0) -> str:
    """`try_run` until the lock is free: when another sweep runs the same call, wait for it, then read its record."""
    while (result := try_run(job, state, threads, stale_after)) is None:
        time.sleep(poll)
    return result


def summary(jobs: Sequence[Job], state: Path, started: float, workers: int = 1) -> str:
    """One progress line: counts per state, and the time left on `workers` (`flatcompress.sweep.eta`: a job that
    runs counts half, one that finds its record (`has_record`) nothing, a run whose weights a waiting job must train
    again (`retrains`) once; a job like none finished yet is counted beside the estimate)."""
    states = job_states(jobs, state)
    counts = {s: sum(v == s for v in states.values()) for s in STATES}
    done = done_summaries(states, state)
    guessed = job_minutes(jobs, done)
    share = {"waiting": 1.0, "running": 0.5}
    by_id = {j.id: j for j in jobs}
    again = set().union(*(retrains(by_id[j], done, by_id) for j, s in states.items() if s == "waiting"))
    left = [(guessed[j], share[s]) for j, s in states.items() if s in share] + [(guessed[a], 1.0) for a in again]
    line = ", ".join(f"{n} {s}" for s, n in counts.items())
    if left:
        known = sum(m * w for m, w in left if m is not None)
        line += f"; about {known / workers:.0f} min left"
        unknown = sum(m is None for m, _ in left)
        line += f" + {unknown} job(s) like none finished yet, not estimated" if unknown else ""
    untrained = untrained_jobs(done)
    if untrained:
        line += f"; DID NOT TRAIN: {', '.join(untrained)}"
    return f"[sweep {time.strftime('%H:%M')}, {(time.time() - started) / 60:.0f} min] {line}"


def done_summaries(states: dict[str, str], state: Path) -> dict[str, dict]:
    """The summaries (`<id>.done`) of the finished jobs among `states`, by job id."""
    return {j: json.loads((state / f"{j}.done").read_text()) for j, s in states.items() if s == "done"}


def done_minutes(job: Job, summary: dict) -> float:
    """A finished job's minutes from its summary (`<id>.done`): its record's compute time, or, for a chapter's
    notebook and a summary written before summaries held it, the job's own wall time (an IMP job's from its
    record)."""
    if summary.get("minutes") is not None:
        return summary["minutes"]
    if job.method == "imp" and summary.get("record") and Path(summary["record"]).is_file():
        return _imp_minutes(summary["record"])
    return (summary.get("wall_time_s") or summary.get("seconds") or 0.0) / 60


def job_minutes(jobs: Sequence[Job], done: dict[str, dict]) -> dict[str, float | None]:
    """Each job's minutes, by id: measured for the finished ones (their summaries `done`, by id), estimated for the
    rest (`flatcompress.sweep.eta.estimates`; None for a job like none finished yet)."""
    from flatcompress.sweep.eta import estimates

    minutes = estimates(jobs, {job.id: done_minutes(job, done[job.id]) for job in jobs if job.id in done})
    return {job.id: 0.0 if job.id not in done and _ready(job, done) and has_record(job) else minutes[job.id]
            for job in jobs}


def _ready(job: Job, done: dict[str, dict]) -> bool:
    return all(a in done for a in job.after)


_FOUND: dict[str, bool] = {}


def has_record(job: Job) -> bool:
    """Whether a job whose prerequisites are done finds its record already (a read-only lookup, as `flatcompress
    plan` makes): such a job only reads it, in seconds, and needs no time and none of its prerequisites' weights.
    Asked once per job and sweep, so a record that appears later (a chapter's notebook or another sweep writes it
    meanwhile) goes unseen here: the sweep then still counts the job's time and the weights it would train again
    (it schedules the job conservatively), and the job, when it runs, reads the record and trains nothing. A
    chapter's notebook always runs; a lookup that fails for another reason counts as no record too."""
    key = json.dumps(job.to_dict(), sort_keys=True)
    if key not in _FOUND:
        try:
            _FOUND[key] = job.method != "reproduce" and bool(execute(job, compute=False))
        except Exception:  # noqa: BLE001 - MissingRecordError, or an error the job itself raises when it runs
            _FOUND[key] = False
    return _FOUND[key]


def fits(minutes: float | None, deadline: float | None) -> bool:
    """Whether a job of `minutes` (estimated), started now, ends by `deadline` (seconds since the epoch; None: no
    deadline). A job like none finished yet (None minutes) is started: its time cannot be judged, and holding it
    back would hold back the sweep for good."""
    return deadline is None or minutes is None or time.time() + 60 * minutes <= deadline


def retrains(job: Job, done: dict[str, dict], by_id: dict[str, Job]) -> set[str]:
    """The fine-tuning jobs `job` waits for whose weights are not kept (their record is there, their checkpoint is
    not: a fresh checkout): `job` trains each of them again first (deterministic) and keeps its weights; none when
    its own record is there (`has_record`), and none for a chapter's closing notebook (it reads its runs' records)."""
    if job.closing or (_ready(job, done) and has_record(job)):
        return set()
    records = {a: done.get(a, {}).get("record") for a in job.after if by_id[a].method == "finetune"}
    return {a for a, rec in records.items() if rec and not weights_path(rec).exists()}


def startable(ready: Sequence[Job], jobs: Sequence[Job], done: dict[str, dict], running: Sequence[Job],
              deadline: float | None = None) -> list[Job]:
    """Of the `ready` jobs (everything they wait for is done; in the plan's order), those to start now, beside the
    `running` ones, in the order to start them: first those that need no weights trained again (a run's weights,
    once trained again, serve every job after it before the sweep ends and they are lost), then the rest; none that
    would train a run's weights again while another job does (it waits, rather than compute them twice at once),
    and none that would end after `deadline` (`fits`; a job's minutes include those of the runs it trains again).
    `done` holds the finished jobs' summaries (`done_summaries`)."""
    minutes = job_minutes(jobs, done) if deadline is not None else {}
    by_id = {j.id: j for j in jobs}
    busy = set().union(*(retrains(j, done, by_id) for j in running))
    out = []
    again = {job.id: retrains(job, done, by_id) for job in ready}
    for job in sorted(ready, key=lambda j: bool(again[j.id])):  # stable: the plan's order within each group
        mine = again[job.id]
        own = minutes.get(job.id)
        if not mine & busy and fits(None if own is None else own + sum(minutes[a] or 0 for a in mine), deadline):
            busy |= mine
            out.append(job)
    return out


@functools.lru_cache(maxsize=None)
def _imp_minutes(record: str) -> float:
    """An IMP record's minutes (read once per sweep: a finished record does not change)."""
    from flatcompress.records import read_record
    from flatcompress.sweep.eta import record_minutes

    return record_minutes(read_record(record)) or 0.0


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
    for job_id, reason in untrained_jobs(done_summaries(states, state)).items():
        print(f"  {job_id}: DID NOT TRAIN ({reason}); the chapters leave its model out of every verdict", flush=True)
    return states
