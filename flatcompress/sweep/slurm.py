"""The `slurm` engine, through submitit: one job array per dependency level.

Level 0 holds the jobs that wait for nothing, level k the jobs whose last prerequisite is on level k-1. On a Slurm
cluster every level is submitted at once, each array starting `afterany` the arrays before it (a job whose
prerequisite failed finds it not done and ends `blocked`), and this command then follows their progress; it can be
stopped, the arrays run on. Elsewhere (`cluster="local"`, submitit's process executor, or `"debug"`, in this
process) the levels run one after the other. Logs go to `<state>/slurm/`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from flatcompress.sweep.jobs import Job
from flatcompress.sweep.runner import report, run_job, summary

__all__ = ["levels", "run"]


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ImportError("the slurm engine needs submitit: pip install 'flatcompress[slurm]' "
                          "(or use --engine local)") from None
    return submitit


def levels(jobs: Sequence[Job]) -> list[list[Job]]:
    """The jobs by dependency level: a job's level is one more than its deepest prerequisite's."""
    level: dict[str, int] = {}
    for job in jobs:  # a plan lists a job after what it waits for
        level[job.id] = 1 + max((level[a] for a in job.after), default=-1)
    out: list[list[Job]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for job in jobs:
        out[level[job.id]].append(job)
    return out


def _task(job: dict, state: str, threads: int, stale_after: float | None) -> str:
    return run_job(Job(**{**job, "after": tuple(job["after"])}), Path(state), threads, stale_after)


def run(jobs: Sequence[Job], state: Path, workers: int = 2, threads: int = 1, gpus: int = 0,
        partition: str | None = None, time_min: int = 240, mem_gb: float = 16.0, cluster: str | None = None,
        stale_after: float | None = None, poll: float = 60.0) -> dict[str, str]:
    """Submit `jobs` as arrays (at most `workers` of an array at a time), each job with `threads` CPUs, `gpus`
    GPUs, `mem_gb` and a `time_min` limit, on `partition`; follow them to the end."""
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=state / "slurm" / "%j", cluster=cluster)
    executor.update_parameters(name="flatcompress", timeout_min=time_min, cpus_per_task=threads, mem_gb=mem_gb,
                               gpus_per_node=gpus, slurm_array_parallelism=workers,
                               **({"slurm_partition": partition} if partition else {}))
    on_slurm = executor.cluster == "slurm"
    started, submitted = time.time(), []
    previous: list[Any] = []
    for level in levels(jobs):
        if on_slurm and previous:
            arrays = sorted({str(j.job_id).split("_")[0] for j in previous})
            executor.update_parameters(slurm_additional_parameters={"dependency": "afterany:" + ":".join(arrays)})
        with executor.batch():
            previous = [executor.submit(_task, job.to_dict(), str(state), threads, stale_after) for job in level]
        submitted += previous
        if not on_slurm:
            for job, handle in zip(level, previous):
                try:
                    handle.result()
                except Exception as exc:  # noqa: BLE001 - the job's process died: a failure, the rest go on
                    (state / f"{job.id}.failed").write_text(f"the submitit job ended with an error: {exc}\n")
            print(summary(jobs, state, started, workers), flush=True)
    while not all(h.done() for h in submitted):
        print(summary(jobs, state, started, workers), flush=True)
        time.sleep(poll)
    return report(jobs, state, started)
