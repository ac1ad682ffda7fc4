"""The `ray` engine: one Ray task per job, submitted in the plan's order.

`ray.init()` starts an embedded cluster on this machine (nothing to set up), or `address` joins a running one
(`ray start --head` on the head node). Each task asks for `threads` CPUs and `gpus` GPUs (a fraction packs small
models on one large GPU), and Ray places it where its resources are free. The driver keeps as many tasks in flight
as the cluster has room for and submits the first jobs of the plan whose prerequisites are done
(`runner.startable`), so the plan's order is the order of work, as under every engine (Ray alone would start
independent jobs before dependent ones that come earlier). Tasks run the same `run_job` as every engine, so a task
waits for a run that another sweep holds, and a failed job leaves its dependents `blocked` without stopping the rest.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Sequence

from flatcompress.sweep.jobs import Job
from flatcompress.sweep.runner import done_summaries, job_states, report, run_job, startable, summary

__all__ = ["capacity", "check_address", "run"]

_PASSED_ENV = ("FLATCOMPRESS_GLUE_DIR", "FLATCOMPRESS_RESULTS_DIR", "HF_HUB_OFFLINE", "HF_HOME",
               "TOKENIZERS_PARALLELISM")


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the ray engine needs Ray: pip install 'flatcompress[ray]' (or use --engine local)") from None
    return ray


def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail within `timeout` seconds when nothing listens at `address` (`host:port` or `ray://host:port`); Ray's
    own connection attempts retry for a minute or more. `auto` (the cluster started on this node) is Ray's to find."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a Ray address is host:port, ray://host:port or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster answers at {address} ({exc}); start one with `ray start --head`, "
                              f"or leave out --address to start one on this machine") from None


def _task(job: dict, state: str, threads: int, stale_after: float | None) -> str:
    """A job as a Ray task (the driver submits it once everything it waits for is done)."""
    return run_job(Job(**{**job, "after": tuple(job["after"])}), Path(state), threads, stale_after)


def capacity(resources: dict[str, float], threads: int, gpus: float) -> int:
    """How many tasks of `threads` CPUs and `gpus` GPUs the cluster's `resources` run at once (at least one)."""
    slots = resources.get("CPU", 0) // threads
    if gpus > 0:
        slots = min(slots, resources.get("GPU", 0) // gpus)
    return max(1, int(slots))


def run(jobs: Sequence[Job], state: Path, workers: int = 2, threads: int = 1, gpus: float = 0.0,
        address: str | None = None, stale_after: float | None = None, poll: float = 60.0,
        deadline: float | None = None) -> dict[str, str]:
    """Run `jobs` on Ray: an embedded cluster of `workers` x `threads` CPUs, or the cluster at `address`; the jobs
    started are `runner.startable`'s (none expected to end after `deadline`, seconds since the epoch)."""
    ray = _ray()
    if address is not None:
        check_address(address)
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    options = {"address": address} if address else {"num_cpus": workers * threads, "include_dashboard": False,
                                                    "object_store_memory": 100 * 1024 ** 2}
    ray.init(runtime_env={"env_vars": env}, log_to_driver=False, **options)
    started = time.time()
    try:
        # A worker that dies (killed, out of memory) is retried: a job resumes from its last finished epoch. Each job
        # gets a fresh worker process (max_calls=1), so it runs the code of the checkout as it was when the job
        # started: a reused worker would mix the modules it imported earlier with ones edited since.
        task = ray.remote(max_calls=1)(_task).options(num_cpus=threads, num_gpus=gpus, max_retries=3)
        room = capacity(ray.cluster_resources(), threads, gpus)
        todo = [job for job in jobs if not (state / f"{job.id}.done").exists()]
        running: dict = {}  # object reference -> job
        ended: dict[str, str] = {}  # job id -> its state when its task returned in this sweep
        while todo or running:
            for job in list(todo):
                if any(ended.get(a) in ("failed", "blocked") for a in job.after):
                    ended[job.id] = "blocked"
                    todo.remove(job)
            ready = [job for job in todo if all((state / f"{a}.done").exists() for a in job.after)]
            done = done_summaries(job_states(jobs, state), state)
            for job in startable(ready, jobs, done, list(running.values()), deadline)[:max(0, room - len(running))]:
                running[task.remote(job.to_dict(), str(state), threads, stale_after)] = job
                todo.remove(job)
            if not running:  # what is left waits for jobs that ended without a `.done`, or would end too late
                break
            finished, _ = ray.wait(list(running), num_returns=1, timeout=poll)
            for ref in finished:
                job = running.pop(ref)
                ended[job.id] = _outcome(ray, job, ref, state)
            print(summary(jobs, state, started, workers), flush=True)
    finally:
        ray.shutdown()
    return report(jobs, state, started)


def _outcome(ray, job: Job, ref, state: Path) -> str:
    """The state a finished task returned; a task that raised (its worker died more often than it is retried)
    leaves `<id>.failed`."""
    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - any task error is reported as the job's failure
        if not (state / f"{job.id}.done").exists():
            (state / f"{job.id}.failed").write_text(f"the Ray task ended with an error: {exc}\n")
            return "failed"
        return "done"
