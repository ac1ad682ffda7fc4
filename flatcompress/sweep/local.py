"""The `local` engine: worker processes on this machine, no other software.

`run(plan, workers=2, threads=1)` starts `workers` processes of `threads` torch threads each (one worker runs in
this process). A worker takes the first job whose prerequisites are done and whose run's lock it can claim, so a
plan's order is the order of work. Killing the sweep loses only the runs in progress, and those resume from their
last finished epoch: run the same plan again and finished jobs are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flatcompress.sweep.jobs import load_plan
from flatcompress.sweep.runner import done_summaries, job_states, report, startable, state_dir, summary, try_run

__all__ = ["work", "run"]

_MODULES = ("book.chapter", "book.claims", "book.reproduce", "cofi.run", "flatness.dropout_replay",
            "flatness.sharpness_records", "pruning.imp", "pruning.oneshot", "quantization.quantize_records", "training")


def _import_everything() -> None:
    """Import every module a job may use and read the code's version: a worker runs the code of its start to the
    end, even if the checkout is edited meanwhile (restart the sweep to run new code)."""
    import importlib

    from flatcompress.provenance import code_version

    for module in _MODULES:
        importlib.import_module(f"flatcompress.{module}")
    code_version()


def work(plan: str | Path, state: str | Path | None = None, threads: int = 1, poll: float = 1.0,
         stale_after: float | None = None, deadline: float | None = None) -> int:
    """One worker: run jobs until none is left that it could run (`runner.startable`: none that would end after
    `deadline`, seconds since the epoch); returns how many it ran."""
    _import_everything()
    plan = Path(plan)
    jobs, folder = load_plan(plan), state_dir(plan, state)
    folder.mkdir(parents=True, exist_ok=True)
    ran, started = 0, time.time()
    while True:
        states = job_states(jobs, folder, stale_after)
        ready = [j for j in jobs if states[j.id] == "waiting" and all(states[a] == "done" for a in j.after)]
        running = [j for j in jobs if states[j.id] == "running"]
        ready = startable(ready, jobs, done_summaries(states, folder), running, deadline)
        for job in ready:
            print(f"[{job.id}] started", flush=True)
            outcome = try_run(job, folder, threads, stale_after)
            if outcome is not None:
                print(f"[{job.id}] {outcome}; {summary(jobs, folder, started)}", flush=True)
                ran += 1
                break
            print(f"[{job.id}] taken by another worker", flush=True)
        else:
            if "running" in states.values() or (deadline is None and "waiting" in states.values()):
                time.sleep(poll)  # runs that other workers (or sweeps) hold, and what waits for them
                continue
            return ran


def run(plan: str | Path, workers: int = 2, threads: int = 1, state: str | Path | None = None,
        poll: float = 60.0, stale_after: float | None = None, deadline: float | None = None) -> dict[str, str]:
    """Run a plan with `workers` processes of `threads` threads each, starting no job expected to end after
    `deadline` (seconds since the epoch); print progress; return the final states."""
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be at least 1, got {workers} and {threads}")
    plan = Path(plan)
    jobs, folder = load_plan(plan), state_dir(plan, state)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if workers == 1:
        work(plan, folder, threads, min(poll, 1.0), stale_after, deadline)
        return report(jobs, folder, started)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    extra = ["--break-locks-after", str(stale_after / 3600)] if stale_after is not None else []
    extra += ["--until", repr(deadline)] if deadline is not None else []
    procs = []
    for i in range(workers):
        log = open(folder / f"worker-{i}.log", "a")
        procs.append((subprocess.Popen([sys.executable, "-m", "flatcompress.sweep.local", str(plan), "--state",
                                        str(folder), "--threads", str(threads), *extra],
                                       stdout=log, stderr=subprocess.STDOUT, env=env), log))
    try:
        while any(p.poll() is None for p, _ in procs):
            print(summary(jobs, folder, started, workers), flush=True)
            for _ in range(int(poll)):
                if all(p.poll() is not None for p, _ in procs):
                    break
                time.sleep(1)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.terminate()
            log.close()
    return report(jobs, folder, started)


def main(argv: list[str] | None = None) -> int:
    """`python -m flatcompress.sweep.local PLAN --state S --threads T`: one worker (what `run` starts)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m flatcompress.sweep.local")
    parser.add_argument("plan")
    parser.add_argument("--state")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--break-locks-after", type=float, help="hours")
    parser.add_argument("--until", type=float, help="start no job expected to end after this time (epoch seconds)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    hours = args.break_locks_after
    work(args.plan, args.state, args.threads, stale_after=hours * 3600 if hours is not None else None,
         deadline=args.until)
    return 0


if __name__ == "__main__":
    sys.exit(main())
