"""Sweeps: every run a tier's chapters need, as a plan, run by an engine (`flatcompress plan`, `flatcompress sweep`).

- `jobs`: a job is one chapter call; a plan is a list of them with their prerequisites.
- `plan`: the plan of a tier's chapters (`tier_plan`), and what exists and costs (`describe`).
- `locks`, `runner`: a run's lock on the shared results folder; running one job the same way under every engine.
- engines: `local` (worker processes), `ray_engine` (an embedded or existing Ray cluster), `slurm` (submitit).

A sweep's plan and state live in `<results>/sweeps/<name>.json` and `<name>.json.state/`; running the same sweep
again skips what is done and resumes what was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Sequence

from flatcompress.sweep.jobs import Job, check_plan, load_plan, write_plan
from flatcompress.sweep.plan import describe, tier_plan
from flatcompress.sweep.runner import state_dir

__all__ = ["ENGINES", "Job", "load_plan", "write_plan", "tier_plan", "describe", "sweep_plan", "sweep"]

ENGINES = ("local", "ray", "slurm")


def default_engine() -> str:
    """`ray` when it is installed, else `local`."""
    import importlib.util

    return "ray" if importlib.util.find_spec("ray") is not None else "local"


def sweep_plan(jobs: Sequence[Job], name: str | None = None) -> Path:
    """Write `jobs` (their results folders made absolute, so any worker finds them) to
    `<results>/sweeps/<name>.json`; `name` defaults to the profile and a digest of the jobs."""
    jobs = [Job(**{**j.to_dict(), "after": tuple(j.after), "results_dir": str(j.results().resolve())}) for j in jobs]
    check_plan(jobs)
    if not jobs:
        raise ValueError("the plan is empty: no chapter runs the chosen tasks and seeds")
    digest = hashlib.sha256(json.dumps([j.to_dict() for j in jobs], sort_keys=True).encode()).hexdigest()[:8]
    return write_plan(Path(jobs[0].results_dir) / "sweeps" / f"{name or jobs[0].profile + '-' + digest}.json", jobs)


def sweep(plan: str | Path, engine: str | None = None, workers: int = 2, threads: int = 1, gpus: float = 0.0,
          address: str | None = None, stale_after: float | None = None, poll: float = 60.0,
          slurm: dict[str, Any] | None = None, hours: float | None = None) -> dict[str, str]:
    """Run the plan file `plan` with `engine` (default: `default_engine()`); returns each job's final state.

    `workers` runs at once, `threads` CPU threads and `gpus` GPUs each (Ray: a fraction packs runs on a GPU);
    `address` joins a running Ray cluster; `stale_after` seconds breaks other hosts' older locks; `slurm` holds
    the Slurm options (`partition`, `time_min`, `mem_gb`, `cluster`: "local" or "debug" runs without Slurm).
    `hours` is a time budget (a Colab session, a cluster allocation): no job is started that is expected to end
    later than `hours` after the sweep's start (`flatcompress.sweep.eta`'s estimates), so the time left goes to the
    jobs that fit and none is cut off midway; the rest stays waiting for the next sweep of the same plan."""
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if workers < 1 or threads < 1 or gpus < 0:
        raise ValueError(f"workers and threads must be at least 1 and gpus at least 0, got {workers}, {threads}, "
                         f"{gpus}")
    if address is not None and engine != "ray":
        raise ValueError("--address joins a Ray cluster: it needs --engine ray")
    if slurm and engine != "slurm":
        raise ValueError("Slurm options need --engine slurm")
    if hours is not None and (engine == "slurm" or hours <= 0):
        raise ValueError(f"--hours must be > 0, got {hours}" if hours <= 0 else
                         "--hours is for the local and ray engines; Slurm limits each job itself (--time-min)")
    deadline = None if hours is None else time.time() + 3600 * hours
    plan = Path(plan)
    jobs, state = load_plan(plan), state_dir(plan)
    state.mkdir(parents=True, exist_ok=True)
    if engine == "slurm":
        from flatcompress.sweep import slurm as slurm_engine

        return slurm_engine.run(jobs, state, workers, threads, int(gpus), stale_after=stale_after, poll=poll,
                                **(slurm or {}))
    if engine == "local":
        from flatcompress.sweep import local

        states = local.run(plan, workers, threads, state, poll, stale_after, deadline)
    else:
        from flatcompress.sweep import ray_engine

        states = ray_engine.run(jobs, state, workers, threads, gpus, address, stale_after, poll, deadline)
    left = [j for j, s in states.items() if s == "waiting"]
    if deadline is not None and left:
        print(f"  {len(left)} job(s) not started: expected to end after the {hours:g} h given (--hours); run the same "
              f"sweep again to go on", flush=True)
    return states
