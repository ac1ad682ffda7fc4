"""The resumable job queue: plans are checked, each job runs once, failures do not stop independent jobs."""

from __future__ import annotations

import json
import os
import socket

import pytest

from flatcompress.queue import Job, job_states, load_plan, run, write_plan


def _job(i, results, **kw):
    return Job(f"rt-{i}", "train-flat", "smoke", "finetune", {"task": "rotten_tomatoes", "seed": i, **kw.pop("args", {})},
               results_dir=str(results), **kw)


def test_bad_plans_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'train'; valid methods: finetune"):
        Job("a", "train-flat", "smoke", "train")
    write_plan(tmp_path / "dup.json", [_job(0, tmp_path), _job(0, tmp_path)])
    with pytest.raises(ValueError, match="repeated: rt-0"):
        load_plan(tmp_path / "dup.json")
    write_plan(tmp_path / "after.json", [_job(0, tmp_path, after=("nothing",))])
    with pytest.raises(ValueError, match="waits for jobs that are not in the plan: nothing"):
        load_plan(tmp_path / "after.json")
    write_plan(tmp_path / "chapter.json", [Job("x", "no-such-chapter", "smoke", "finetune")])
    with pytest.raises(ValueError, match="unknown chapter 'no-such-chapter'"):
        load_plan(tmp_path / "chapter.json")


def test_two_workers_run_every_job_once_and_a_failure_blocks_only_its_dependents(tmp_path):
    results = tmp_path / "results"
    jobs = [_job(0, results), _job(1, results), _job(2, results, args={"lr": -1.0}),  # an invalid run: it fails
            _job(3, results, after=("rt-2",)), _job(4, results, after=("rt-0",))]
    plan = write_plan(tmp_path / "plan.json", jobs)
    states = run(plan, workers=2, threads=1, poll=1)
    assert states == {"rt-0": "done", "rt-1": "done", "rt-2": "failed", "rt-3": "blocked", "rt-4": "done"}
    assert "lr must be > 0" in (tmp_path / "plan.json.state" / "rt-2.failed").read_text()
    records = sorted((results / "finetune" / "rotten_tomatoes").glob("*.json"))
    assert len(records) == 3  # seeds 0, 1 and 4: three runs (the failed one wrote nothing)
    done = json.loads((tmp_path / "plan.json.state" / "rt-0.done").read_text())
    assert done["record"].endswith(".json") and 0 <= done["score"] <= 1
    assert run(plan, workers=2, threads=1, poll=1) == states  # a second run of a finished plan does nothing new


def test_a_lock_left_by_a_dead_worker_is_broken(tmp_path):
    results = tmp_path / "results"
    plan = write_plan(tmp_path / "plan.json", [_job(0, results)])
    state = tmp_path / "plan.json.state"
    state.mkdir()
    dead = 2 ** 22 + 12345  # no such process
    (state / "rt-0.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "started": 0}))
    assert job_states(load_plan(plan), state) == {"rt-0": "waiting"}
    assert run(plan, workers=1, threads=1, poll=1) == {"rt-0": "done"}
    assert not (state / "rt-0.lock").exists()


def test_a_tier_plan_orders_runs_before_what_needs_them():
    from flatcompress.plan import tier_plan
    from flatcompress.reproduce import CHAPTERS

    jobs = tier_plan("smoke", seeds=[0, 1])
    position = {j.id: i for i, j in enumerate(jobs)}
    assert all(position[a] < position[j.id] for j in jobs for a in j.after)  # a job comes after what it waits for
    for j in jobs:
        if j.method in ("sharpness", "one_shot", "cofi", "imp"):
            assert f"ft-{j.args['task']}-{j.args['optimizer']}-{j.args['seed']}" in j.after
    assert {j.chapter for j in jobs if j.method == "reproduce" and "seeds" in j.args} == set(CHAPTERS)
    assert jobs[-1].method == "reproduce" and jobs[-1].args["seeds"] == [0, 1]
    l1 = [j for j in jobs if "-l1-" in j.id]
    assert l1 and all(j.args["l1"] == 1e-5 and j.args["optimizer"] == "adamw" for j in l1)  # the chapter's default
    firsts = [j.id for j in jobs if j.method == "finetune"][:2]
    assert firsts == ["ft-rotten_tomatoes-adamw-0", "ft-rotten_tomatoes-sam-0"]  # seed 0 first: a pilot for free
    with pytest.raises(ValueError, match="unknown chapter"):
        tier_plan("smoke", chapters=["nope"])
