"""How long a plan's jobs take: measured for the finished ones, estimated for the rest.

- A finished run's minutes are its record's own compute time, an IMP chain's with the training of its pruned
  rounds (`record_minutes`).
- A run without a record is estimated at the median of the measured runs like it: the same call but for the seed
  if there are any (an IMP chain's rewinding and ℓ1, a full-space sharpness search), else the same method, task
  and optimizer, else the same method (`estimates`).
- Otherwise a job is estimated from its size: the example passes that `flatcompress.book.costs.job_passes` counts
  for it, at the minutes per pass the tier's finished fine-tuning runs took. So is a chapter's per-seed notebook (a
  `reproduce` job), which makes runs the plan does not list (the masked fine-tunes of Table 6, the ticket
  transfers). A chapter's closing notebook computes nothing that its runs and per-seed notebooks did not: 0 minutes.
"""

from __future__ import annotations

import json
from statistics import median
from typing import Mapping, Sequence

from flatcompress.sweep.jobs import Job

__all__ = ["record_minutes", "estimates"]


def record_minutes(record: dict) -> float | None:
    """A record's compute minutes. An IMP record's `wall_time_s` is its pruning only: the training of its pruned
    rounds is added (`rows[k]["train_seconds"]`, k ≥ 1; round 0 is the full fine-tuning run, a job of its own)."""
    seconds = record.get("wall_time_s")
    if seconds is None:
        return None
    if record.get("kind") == "imp":
        seconds += sum(row.get("train_seconds") or 0.0 for row in record.get("rows", []) if row.get("round", 0) > 0)
    return seconds / 60


def _passes(job: Job) -> float:
    from flatcompress.book.costs import job_passes
    from flatcompress.profiles import get_profile

    return job_passes(job, get_profile(job.profile))


def estimates(jobs: Sequence[Job], measured: Mapping[str, float]) -> dict[str, float | None]:
    """Minutes per job id: `measured[id]` where a job has them, else the estimate of the module docstring; None where
    nothing like the job has finished yet."""
    like: dict[tuple, list[float]] = {}
    per_pass = []
    for job in jobs:
        if job.id in measured and job.method != "reproduce":
            for kind in _kinds(job):
                like.setdefault(kind, []).append(measured[job.id])
            size = _passes(job) if job.method == "finetune" else 0.0
            if size > 0:
                per_pass.append(measured[job.id] / size)
    out: dict[str, float | None] = {}
    for job in jobs:
        same = None if job.method == "reproduce" else next((like[k] for k in _kinds(job) if k in like), None)
        if job.id in measured:
            out[job.id] = measured[job.id]
        elif job.closing:
            out[job.id] = 0.0
        elif same is not None:
            out[job.id] = median(same)
        else:
            size = _passes(job)
            out[job.id] = size * median(per_pass) if per_pass and (size > 0 or job.method == "reproduce") else None
    return out


def _kinds(job: Job) -> list[tuple]:
    """What a run is like, closest first: the same call but for the seeds; the same method, task and optimizer; the
    same method."""
    call = json.dumps({k: v for k, v in job.args.items() if k not in ("seed", "subspace_seed")}, sort_keys=True)
    return [(job.method, call), (job.method, job.args.get("task"), job.args.get("optimizer")), (job.method,)]
