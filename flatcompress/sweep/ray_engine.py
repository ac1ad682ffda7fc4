"""The `ray` engine: one Ray task per job, its prerequisites passed as object references.

`ray.init()` starts an embedded cluster on this machine (nothing to set up), or `address` joins a running one
(`ray start --head` on the head node). Each task asks for `threads` CPUs and `gpus` GPUs (a fraction packs small
models on one large GPU); a task starts as soon as the tasks it waits for have returned, and Ray places it where
its resources are free. Tasks run the same `run_job` as every engine, so a task waits for a run that another sweep
holds, and a failed job leaves its dependents `blocked` without stopping the rest.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Sequence

from flatcompress.sweep.jobs import Job
from flatcompress.sweep.runner import report, run_job, summary

__all__ = ["check_address", "run"]

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


def _task(job: dict, state: str, threads: int, stale_after: float | None, *after: str) -> str:
    """A job as a Ray task: `after` are the states its prerequisites' tasks returned."""
    if any(s != "done" for s in after):
        return "blocked"
    return run_job(Job(**{**job, "after": tuple(job["after"])}), Path(state), threads, stale_after)


def run(jobs: Sequence[Job], state: Path, workers: int = 2, threads: int = 1, gpus: float = 0.0,
        address: str | None = None, stale_after: float | None = None, poll: float = 60.0) -> dict[str, str]:
    """Run `jobs` on Ray: an embedded cluster of `workers` x `threads` CPUs, or the cluster at `address`."""
    ray = _ray()
    if address is not None:
        check_address(address)
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    options = {"address": address} if address else {"num_cpus": workers * threads, "include_dashboard": False,
                                                    "object_store_memory": 100 * 1024 ** 2}
    ray.init(runtime_env={"env_vars": env}, log_to_driver=False, **options)
    started = time.time()
    try:
        # A worker that dies (killed, out of memory) is retried: a job resumes from its last finished epoch.
        task = ray.remote(_task).options(num_cpus=threads, num_gpus=gpus, max_retries=3)
        refs = {}
        for job in jobs:  # a plan lists a job after what it waits for
            refs[job.id] = task.remote(job.to_dict(), str(state), threads, stale_after, *(refs[a] for a in job.after))
        pending = list(refs.values())
        while pending:
            finished, pending = ray.wait(pending, num_returns=len(pending), timeout=poll)
            for job in jobs:
                if refs[job.id] in finished:
                    _record_crash(ray, job, refs[job.id], state)
            print(summary(jobs, state, started, workers), flush=True)
    finally:
        ray.shutdown()
    return report(jobs, state, started)


def _record_crash(ray, job: Job, ref, state: Path) -> None:
    """A task that raised (its worker died more often than it is retried) leaves `<id>.failed`, unless what it
    waits for did not finish (then it is blocked, which the states tell without a file)."""
    try:
        ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - any task error is reported as the job's failure
        if all((state / f"{a}.done").exists() for a in job.after) and not (state / f"{job.id}.done").exists():
            (state / f"{job.id}.failed").write_text(f"the Ray task ended with an error: {exc}\n")
