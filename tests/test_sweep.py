"""Sweeps: plans are checked, each run is computed once, failures do not stop independent runs, and every engine
(local processes, Ray, Slurm through submitit) writes the same records."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flatcompress.cli import main as cli
from flatcompress.records import iter_records, write_record
from flatcompress.sweep import describe, load_plan, sweep, sweep_plan, tier_plan, write_plan
from flatcompress.sweep.jobs import Job
from flatcompress.sweep.local import run
from flatcompress.sweep.runner import done_summaries, job_states, run_job, run_lock, startable, summary


def _job(i, results, **kw):
    args = {"task": "rotten_tomatoes", "seed": i, **kw.pop("args", {})}
    return Job(f"rt-{i}", "train-flat", "smoke", "finetune", args, results_dir=str(results), **kw)


def _timeless(value):
    """`value` without times and provenance (what may differ between two runs of the same computation)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()
                if not ("seconds" in k or k in ("wall_time_s", "elapsed_s", "provenance", "_path"))}
    return [_timeless(v) for v in value] if isinstance(value, list) else value


def _records(results: Path) -> dict[str, str]:
    """Every record under `results`, less its times and provenance (what must not depend on the engine)."""
    return {str(Path(r["_path"]).relative_to(results)): json.dumps(_timeless(r), sort_keys=True, default=str)
            for r in iter_records(results)}


def _adam_one_shot_part(records: dict[str, str]) -> dict[str, str]:
    """The records of `_adam_one_shot_plan`'s runs: Adam's full fine-tuning run (no masks) and its one-shot sweep."""
    return {name: r for name, r in records.items() if "-adamw-" in name and
            (name.startswith("oneshot/") or (name.startswith("finetune/") and json.loads(r)["masks"] is None))}


def _small_plan(results: Path, runs_only: bool = True,
                chapters=("pruning-without-retraining", "lottery-tickets")) -> list[Job]:
    """The smoke plan of two chapters on one task and seed (IMP chains, with Adam, SAM and SWA, after fine-tuning)."""
    jobs = tier_plan("smoke", seeds=[0], chapters=list(chapters), results_dir=str(results), tasks=["rotten_tomatoes"])
    return [j for j in jobs if j.method != "reproduce"] if runs_only else jobs


def _adam_one_shot_plan(results: Path) -> list[Job]:
    """Two jobs, one waiting for the other: Adam's fine-tuning run and its one-shot sweep (the engines' tests)."""
    return [j for j in _small_plan(results, chapters=["pruning-without-retraining"]) if j.args["optimizer"] == "adamw"]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The small plan's runs with the local engine, one worker: the reference records."""
    results = tmp_path_factory.mktemp("local") / "results"
    plan = sweep_plan(_small_plan(results, runs_only=False), "small")
    runs = write_plan(plan.with_name("runs.json"), [j for j in load_plan(plan) if j.method != "reproduce"])
    states = sweep(runs, "local", workers=1, threads=1, poll=1)
    assert set(states.values()) == {"done"}
    return results, plan


def test_bad_plans_and_bad_input_are_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown method 'train'; valid methods: finetune"):
        Job("a", "train-flat", "smoke", "train")
    write_plan(tmp_path / "dup.json", [_job(0, tmp_path), _job(0, tmp_path)])
    with pytest.raises(ValueError, match="repeated: rt-0"):
        load_plan(tmp_path / "dup.json")
    write_plan(tmp_path / "after.json", [_job(0, tmp_path, after=("nothing",))])
    with pytest.raises(ValueError, match="waits for jobs that are not in the plan: nothing"):
        load_plan(tmp_path / "after.json")
    write_plan(tmp_path / "order.json", [_job(0, tmp_path, after=("rt-1",)), _job(1, tmp_path)])
    with pytest.raises(ValueError, match="waits for jobs listed after it: rt-1"):
        load_plan(tmp_path / "order.json")
    write_plan(tmp_path / "chapter.json", [Job("x", "no-such-chapter", "smoke", "finetune")])
    with pytest.raises(ValueError, match="unknown chapter 'no-such-chapter'"):
        load_plan(tmp_path / "chapter.json")
    plan = write_plan(tmp_path / "ok.json", [_job(0, tmp_path)])
    with pytest.raises(ValueError, match="unknown engine 'dask'; engines: local, ray, slurm"):
        sweep(plan, "dask")
    with pytest.raises(ValueError, match="--address joins a Ray cluster"):
        sweep(plan, "local", address="localhost:6379")
    assert cli(["sweep", "--profile", "smoke", "--chapters", "no-such-chapter"]) == 2
    assert "unknown chapter(s) ['no-such-chapter']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["plan", "--profile", "smoke", "--tasks", "imdb"])
    assert "invalid choice: 'imdb'" in capsys.readouterr().err
    assert not (tmp_path / "rotten_tomatoes").exists() and not (tmp_path / "finetune").exists()


def test_an_unreachable_ray_address_fails_within_seconds(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = write_plan(tmp_path / "ok.json", [_job(0, tmp_path)])
    start = time.time()
    with pytest.raises(ConnectionError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        sweep(plan, "ray", address=f"127.0.0.1:{port}")
    assert time.time() - start < 10


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
    assert done["record"].endswith(".json") and 0 <= done["score"] <= 1 and done["cached"] is False
    assert run(plan, workers=2, threads=1, poll=1) == states  # a second run of a finished plan does nothing new


def test_two_sweeps_of_one_run_on_one_results_folder_compute_it_once(tmp_path):
    results = tmp_path / "results"
    plans = [write_plan(tmp_path / f"{name}.json", [Job(name, "train-flat", "smoke", "finetune",
                                                        {"task": "rotten_tomatoes", "seed": 0, "epochs": 6},
                                                        results_dir=str(results))]) for name in ("a", "b")]
    threads = [threading.Thread(target=run, args=(p,), kwargs={"workers": 2, "threads": 1, "poll": 1}) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [json.loads((tmp_path / f"{n}.json.state" / f"{n}.done").read_text()) for n in ("a", "b")]
    assert sorted(d["cached"] for d in done) == [False, True]  # one trained, the other read its record
    assert len(list((results / "finetune" / "rotten_tomatoes").glob("*.json"))) == 1


def test_a_killed_worker_leaves_a_run_the_next_sweep_resumes_to_the_same_record(tmp_path):
    job = dict(task="rotten_tomatoes", seed=0, epochs=15)
    whole = tmp_path / "whole"
    run(write_plan(tmp_path / "whole.json", [Job("rt", "train-flat", "smoke", "finetune", job,
                                                   results_dir=str(whole))]), workers=1)
    killed = tmp_path / "killed"
    plan = write_plan(tmp_path / "killed.json", [Job("rt", "train-flat", "smoke", "finetune", job,
                                                     results_dir=str(killed))])
    worker = subprocess.Popen([sys.executable, "-m", "flatcompress.sweep.local", str(plan)])
    folder = killed / "finetune" / "rotten_tomatoes"
    deadline = time.time() + 120
    while not list(folder.glob("*.partial.pt")) and time.time() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert list(folder.glob("*.partial.pt")) and not list(folder.glob("*.json")), "killed mid-run"
    jobs = load_plan(plan)
    assert run_lock(jobs[0]).exists()  # the dead worker's lock is left behind...
    assert job_states(jobs, plan.with_name("killed.json.state")) == {"rt": "waiting"}  # ...and seen as dead
    assert run(plan, workers=1) == {"rt": "done"}
    assert _records(killed) == _records(whole)


def test_a_tier_plan_orders_runs_before_what_needs_them():
    from flatcompress.book.reproduce import CHAPTERS

    jobs = tier_plan("smoke", seeds=[0, 1])
    position = {j.id: i for i, j in enumerate(jobs)}
    assert all(position[a] < position[j.id] for j in jobs for a in j.after)  # a job comes after what it waits for
    for j in jobs:
        if j.method in ("sharpness", "one_shot", "cofi", "imp"):
            assert f"ft-{j.args['task']}-{j.args['optimizer']}-{j.args['seed']}" in j.after
    assert {j.chapter for j in jobs if j.method == "reproduce" and "seeds" in j.args} == set(CHAPTERS)
    # a chapter's per-seed notebook waits for the IMP chains of its own tasks only: Table 6 runs on Rotten Tomatoes,
    # ticket transfer on Rotten Tomatoes and Reuters
    by_id = {j.id: j for j in jobs}
    for chapter, tasks in (("mask-or-optimizer", {"rotten_tomatoes"}), ("tickets-travel", {"rotten_tomatoes",
                                                                                           "reuters8"})):
        after = by_id[f"chapter-{chapter}-1"].after
        assert {by_id[a].args["task"] for a in after} == tasks and all(by_id[a].method == "imp" for a in after)
    assert jobs[-1].method == "reproduce" and jobs[-1].args["seeds"] == [0, 1]
    l1 = [j for j in jobs if "-l1-" in j.id]
    assert l1 and all(j.args["l1"] == 1e-5 and j.args["optimizer"] == "adamw" for j in l1)  # the chapter's default
    # Train flat's own runs: sharpness of every model, the full-space search and dropout replay on its first task
    # and seed (replay for SAM only), as the notebook makes them; quantization with the chapter's settings
    ids = {j.id for j in jobs}
    assert {"sharpfull-rotten_tomatoes-adamw-0", "sharpfull-rotten_tomatoes-sam-0", "replay-rotten_tomatoes-sam-0",
            "sharp-rotten_tomatoes-sam-1-0"} <= ids
    assert not {"sharpfull-rotten_tomatoes-adamw-1", "replay-rotten_tomatoes-adamw-0", "replay-reuters8-sam-0"} & ids
    assert next(j for j in jobs if j.id == "quant-rotten_tomatoes-sam-1").args["settings"][0] == "torch-ao"
    assert {"imp-reuters8-sam-1", "ft-reuters8-adamw-0"} <= ids  # ticket transfer's second task
    firsts = [j.id for j in jobs if j.method == "finetune"][:2]
    assert firsts == ["ft-rotten_tomatoes-adamw-0", "ft-rotten_tomatoes-sam-0"]  # seed 0 first: a pilot for free
    with pytest.raises(ValueError, match="unknown chapter"):
        tier_plan("smoke", chapters=["nope"])


def test_a_sweep_names_the_runs_that_did_not_train(local_sweep, tmp_path, capsys):
    from flatcompress.sweep.runner import report

    results, plan = local_sweep
    state = plan.with_name("runs.json.state")
    done = {p.stem: json.loads(p.read_text()) for p in state.glob("ft-*.done")}
    assert done and all(isinstance(d["trained"], bool) for d in done.values())  # every full model's gate, recorded
    assert all("trained" not in json.loads(p.read_text()) for p in state.glob("oneshot-*.done"))
    jobs = [_job(0, results), _job(1, results)]
    (tmp_path / "rt-0.done").write_text(json.dumps({"wall_time_s": 60, "trained": True}))
    (tmp_path / "rt-1.done").write_text(json.dumps({"wall_time_s": 60, "trained": False,
                                                    "untrained": "predicts a single class"}))
    assert summary(jobs, tmp_path, time.time()).endswith("; DID NOT TRAIN: rt-1")
    waiting = [*jobs, _job(2, results), Job("book", "train-flat", "smoke", "reproduce", {"seeds": [0]})]
    line = summary(waiting, tmp_path, time.time())  # one run left like the two done (1 min); a notebook that reads
    assert "2 done, 0 running, 2 waiting" in line
    assert "; about 1 min left;" in line and "not estimated" not in line
    report(jobs, tmp_path, time.time())
    assert "rt-1: DID NOT TRAIN (predicts a single class)" in capsys.readouterr().out


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every process has one thread anyway")
def test_a_job_and_the_processes_it_starts_use_the_sweeps_thread_count(tmp_path, monkeypatch):
    from flatcompress.sweep import runner

    def child_threads(job):  # what a chapter notebook's kernel does: a new process that imports torch
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                             capture_output=True, text=True, check=True).stdout
        return {"record": "", "score": None, "threads": int(out)}

    monkeypatch.setattr(runner, "execute", child_threads)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    job = Job("nb", "tickets-travel", "smoke", "reproduce", {"seeds": [0]}, results_dir=str(tmp_path))
    assert runner.try_run(job, tmp_path / "state", threads=1) == "done"  # a new process gets every core by default
    assert json.loads((tmp_path / "state" / "nb.done").read_text())["threads"] == 1
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "7"  # restored afterwards


def test_the_time_left_counts_imp_rounds_and_the_runs_a_notebook_adds(tmp_path):
    from flatcompress.book.costs import job_passes
    from flatcompress.profiles import get_profile

    results = tmp_path / "results"
    def job(id_, method, chapter="lottery-tickets", **args):
        return Job(id_, chapter, "smoke", method, {"task": "rotten_tomatoes", "optimizer": "adamw", **args},
                   results_dir=str(results))
    ft = [job(f"ft-{i}", "finetune", "train-flat", seed=i) for i in range(3)]
    imp = [job(f"imp-{i}", "imp", seed=i) for i in range(2)]
    notebook = Job("chapter-mask-or-optimizer-0", "mask-or-optimizer", "smoke", "reproduce",
                   {"seeds": [0], "tasks": ["rotten_tomatoes"]}, results_dir=str(results))
    closing = Job("chapter-mask-or-optimizer", "mask-or-optimizer", "smoke", "reproduce", {"seeds": [0]},
                  results_dir=str(results))
    state = tmp_path / "state"
    state.mkdir()
    (state / "ft-0.done").write_text(json.dumps({"wall_time_s": 60}))  # a summary written before "minutes"
    (state / "ft-1.done").write_text(json.dumps({"minutes": 3.0, "wall_time_s": 180}))
    # an IMP record's own time is its pruning (6 s); its pruned rounds trained 120 s and 234 s: 6 minutes in all
    # (round 0 is the full fine-tuning run, a job of its own)
    rounds = [{"round": k, "train_seconds": t} for k, t in enumerate((999, 120, 234))]
    write_record(results / "imp" / "chain.json", {"kind": "imp", "wall_time_s": 6, "rows": rounds})
    (state / "imp-0.done").write_text(json.dumps({"record": str(results / "imp" / "chain.json"), "wall_time_s": 6}))
    jobs = [*ft, *imp, notebook, closing]
    # left: ft-2 at the median of 1 and 3 min; imp-1 at 6 min; the notebook's passes at the median minutes per pass
    # of the finished fine-tuning runs; the closing notebook computes nothing more
    per_pass = 2.0 / job_passes(ft[0], get_profile("smoke"))
    expected = 2.0 + 6.0 + job_passes(notebook, get_profile("smoke")) * per_pass
    assert job_passes(notebook, get_profile("smoke")) > 0
    assert f"about {expected / 2:.0f} min left" in summary(jobs, state, time.time(), workers=2)
    # nothing like a sharpness search has finished: it is estimated from its size, as the notebook is
    sharpness = job("sharp-0", "sharpness", "train-flat", seed=0)
    with_sharpness = expected + job_passes(sharpness, get_profile("smoke")) * per_pass
    assert f"about {with_sharpness / 2:.0f} min left" in summary([*jobs, sharpness], state, time.time(), workers=2)
    replay = job("replay-0", "dropout_replay", "train-flat", seed=0)  # neither measured nor sized
    line = summary([*jobs, replay], state, time.time(), workers=2)
    assert f"about {expected / 2:.0f} min left + 1 job(s) like none finished yet, not estimated" in line


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_time_budget_starts_only_the_jobs_that_fit_and_the_next_sweep_goes_on(tmp_path, monkeypatch, capsys,
                                                                                engine):
    from flatcompress.sweep import ray_engine

    results = tmp_path / "results"
    # two calls, each measured once: a long one (seed 0, 600 min) and a short one (one epoch, 0.01 min); the plan
    # asks for each again with seed 1, the long one first
    def short(seed):
        return Job(f"short-{seed}", "train-flat", "smoke", "finetune",
                   {"task": "rotten_tomatoes", "seed": seed, "epochs": 1}, results_dir=str(results))
    jobs = [_job(0, results), short(0), _job(2, results, args={"seed": 1}), short(1)]
    plan = write_plan(tmp_path / "plan.json", jobs)
    state = tmp_path / "plan.json.state"
    state.mkdir()
    (state / "rt-0.done").write_text(json.dumps({"minutes": 600.0}))
    (state / "short-0.done").write_text(json.dumps({"minutes": 0.01}))
    if engine == "ray":  # the driver's loop, in this process (`_FakeRay`), with the real job runner
        monkeypatch.setattr(ray_engine, "_ray", lambda: _FakeRay(2))
        monkeypatch.setattr(ray_engine, "run_job", lambda job, state, threads, stale: run_job(job, state, threads))
    states = sweep(plan, engine, workers=1, threads=1, poll=1, hours=1.0)
    assert states == {"rt-0": "done", "short-0": "done", "rt-2": "waiting", "short-1": "done"}
    assert "1 job(s) not started: expected to end after the 1 h given (--hours)" in capsys.readouterr().out
    assert sweep(plan, engine, workers=1, threads=1, poll=1, hours=1.0) == states  # still too long: nothing new
    (state / "rt-0.done").write_text(json.dumps({"minutes": 0.01}))  # now it fits
    assert set(sweep(plan, engine, workers=1, threads=1, poll=1, hours=1.0).values()) == {"done"}
    for bad, message in (({"hours": 0}, "--hours must be > 0, got 0"),
                         ({"engine": "slurm", "hours": 1}, "--hours is for the local and ray engines")):
        with pytest.raises(ValueError, match=message):
            sweep(plan, **{"engine": "local", **bad})


def test_every_task_but_question_answering_gets_its_loss_contours_once():
    from flatcompress.profiles import PROFILES

    # the paper tier (SQuAD has no plane) and a tier whose sharpness runs on fewer tasks than it trains
    fewer = next(p.name for p in PROFILES.values() if p.sharpness_tasks and set(p.tasks) - set(p.sharpness_tasks))
    for name in ("paper", fewer):
        contours = [j for j in tier_plan(name) if j.method == "contours"]
        tasks, seed = [t for t in PROFILES[name].tasks if t != "squad"], PROFILES[name].seeds[0]
        expected = [f"contours-{t}-{head}-{seed}" for t in tasks for head in ("adamw", "sam")]
        assert sorted(j.id for j in contours) == sorted(expected)
        assert all(j.after == tuple(f"ft-{j.args['task']}-{o}-{seed}" for o in ("adamw", "sam")) for j in contours)


def test_quantization_aware_training_runs_each_optimizer_on_the_seeds_its_tier_gives_it(monkeypatch):
    from flatcompress.profiles import PROFILES

    smoke = PROFILES["smoke"]
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(smoke, qat_optimizers={"adamw": None, "sam": (1,)}))
    jobs = {j.id: j for j in tier_plan("smoke", seeds=[0, 1, 2], chapters=["quantization"])}
    qat = {i for i, j in jobs.items() if j.args.get("qat")}
    assert qat == {f"{kind}-rotten_tomatoes-{o}-{s}" for kind in ("qat", "quant-qat")
                   for o, seeds in (("adamw", (0, 1, 2)), ("sam", (1,))) for s in seeds}
    assert jobs["quant-qat-rotten_tomatoes-sam-1"].after == ("qat-rotten_tomatoes-sam-1",)
    assert jobs["qat-rotten_tomatoes-sam-1"].args == {"task": "rotten_tomatoes", "optimizer": "sam", "seed": 1,
                                                      "qat": True}
    assert PROFILES["smoke"].qat_seeds("sst2", "adamw") == ()  # not one of the tier's qat_tasks


def test_after_the_plan_the_chapters_compute_nothing_more(local_sweep):
    results, plan = local_sweep
    before = _records(results)
    rows = describe(_small_plan(results))
    assert all(r["record"] for r in rows) and all(r["minutes"] is not None for r in rows)  # every run has its record
    assert set(sweep(plan, "local", workers=1, threads=1, poll=1).values()) == {"done"}  # + the chapters' notebooks
    assert _records(results) == before


def test_the_plan_names_the_runs_to_train_again_for_their_weights(local_sweep, tmp_path, capsys):
    import shutil

    from flatcompress.sweep.plan import trained_again

    results = tmp_path / "results"
    shutil.copytree(local_sweep[0], results)
    rows = {r["id"]: r for r in describe(_small_plan(results))}
    assert trained_again(list(rows.values())) == []  # every run has its record
    # a fresh checkout: no weights; Adam's one-shot sweep is missing, so Adam's run must train again, SAM's need not
    for weights in results.rglob("*.safetensors"):
        weights.unlink()
    (results / rows["oneshot-rotten_tomatoes-adamw-0"]["record"]).unlink()
    rows = describe(_small_plan(results))
    assert [r["id"] for r in trained_again(rows)] == ["ft-rotten_tomatoes-adamw-0"]
    assert cli(["plan", "--profile", "smoke", "--chapters", "pruning-without-retraining", "--seeds", "0",
                "--tasks", "rotten_tomatoes", "--results-dir", str(results)]) == 0
    assert "to train 1 run(s) again for their weights, which the runs after them need (weights are not " \
           "committed): ft-rotten_tomatoes-adamw-0" in capsys.readouterr().out


def test_ray_with_two_workers_writes_the_records_of_the_local_engine(local_sweep, tmp_path):
    pytest.importorskip("ray")
    results = tmp_path / "results"
    plan = sweep_plan(_adam_one_shot_plan(results), "small")
    assert set(sweep(plan, "ray", workers=2, threads=1, poll=1).values()) == {"done"}
    ours, local = _records(results), _records(local_sweep[0])
    assert ours == _adam_one_shot_part(local) and any(name.startswith("oneshot/") for name in ours)


def test_the_slurm_engine_runs_through_submitit_without_a_cluster(local_sweep, tmp_path):
    pytest.importorskip("submitit")
    results = tmp_path / "results"
    plan = sweep_plan(_adam_one_shot_plan(results), "small")
    states = sweep(plan, "slurm", workers=2, threads=1, poll=1, slurm={"cluster": "local", "time_min": 10})
    assert set(states.values()) == {"done"}
    ours, local = _records(results), _records(local_sweep[0])
    assert ours == _adam_one_shot_part(local) and any(name.startswith("oneshot/") for name in ours)
    assert list((plan.with_name("small.json.state") / "slurm").rglob("*_log.out"))  # its logs, in the state folder


class _FakeRay:
    """Ray's calls the engine makes, run in this process: `wait` runs the oldest submitted task."""

    def __init__(self, cpus):
        self.cpus, self.queue, self.started = cpus, [], []

    def init(self, **kw):
        pass

    def shutdown(self):
        pass

    def cluster_resources(self):
        return {"CPU": float(self.cpus)}

    def remote(self, fn=None, **kw):
        if fn is None:  # ray.remote(max_calls=1)(fn)
            self.remote_options = kw
            return self.remote
        fake = self

        class Remote:
            def options(self, **kw):
                return self

            def remote(self, job, *args):
                fake.started.append(job["id"])
                ref = (job["id"], fn, (json.dumps(job), *args))
                fake.queue.append(ref)
                return ref

        return Remote()

    def wait(self, refs, num_returns, timeout):
        ref = self.queue.pop(0)
        self.results = getattr(self, "results", {})
        try:
            self.results[ref[0]] = ref[1](json.loads(ref[2][0]), *ref[2][1:])
        except RuntimeError as exc:
            self.results[ref[0]] = exc
        return [ref], [r for r in refs if r != ref]

    def get(self, ref):
        out = self.results[ref[0]]
        if isinstance(out, Exception):
            raise out
        return out


def test_the_ray_engine_submits_in_the_plans_order_and_records_a_crashed_task(tmp_path, monkeypatch):
    from flatcompress.sweep import ray_engine

    def fake_run_job(job, state, threads, stale_after):
        if job.id == "rt-3":
            raise RuntimeError("worker died")
        (state / f"{job.id}.done").write_text("{}")
        return "done"

    # rt-1 waits for rt-0; rt-2 is independent but listed after rt-1; rt-4 waits for rt-3, which crashes
    jobs = [_job(0, tmp_path), _job(1, tmp_path, after=("rt-0",)), _job(2, tmp_path), _job(3, tmp_path),
            _job(4, tmp_path, after=("rt-3",))]
    for cpus, order in ((1, ["rt-0", "rt-1", "rt-2", "rt-3"]), (2, ["rt-0", "rt-2", "rt-1", "rt-3"])):
        state = tmp_path / f"state{cpus}"
        state.mkdir()
        fake = _FakeRay(cpus)
        monkeypatch.setattr(ray_engine, "_ray", lambda: fake)
        monkeypatch.setattr(ray_engine, "run_job", fake_run_job)
        states = ray_engine.run(jobs, state, workers=cpus)
        assert fake.started == order  # Ray alone would start rt-2 before rt-1 even with one CPU
        assert fake.remote_options == {"max_calls": 1}  # a fresh worker per job: the code of the job's start
        assert states == {"rt-0": "done", "rt-1": "done", "rt-2": "done", "rt-3": "failed", "rt-4": "blocked"}
        assert "worker died" in (state / "rt-3.failed").read_text()
    assert ray_engine.capacity({"CPU": 16.0, "GPU": 1.0}, threads=2, gpus=0.25) == 4
    assert ray_engine.capacity({"CPU": 16.0}, threads=4, gpus=0) == 4
    assert ray_engine.capacity({"CPU": 1.0}, threads=4, gpus=0) == 1


def test_two_jobs_that_would_train_the_same_lost_weights_again_do_not_run_at_once(tmp_path, monkeypatch):
    from flatcompress.sweep import ray_engine

    # ft-a's record is there but not its weights (a fresh checkout): each job after it trains it again first, so
    # x-2 waits for x-1 to keep them; ft-b's weights are kept, so y-1 needs no training and goes first
    records = {}
    for name, kept in (("a", False), ("b", True)):
        records[name] = tmp_path / f"ft-{name}.json"
        records[name].write_text("{}")
        if kept:
            records[name].with_suffix(".safetensors").write_text("")
    state = tmp_path / "state"
    state.mkdir()
    jobs = [Job(f"ft-{n}", "train-flat", "smoke", "finetune", {"task": "rotten_tomatoes", "seed": i},
                results_dir=str(tmp_path))
            for i, n in enumerate("ab")]
    for name, after in (("x-1", "ft-a"), ("x-2", "ft-a"), ("y-1", "ft-b")):
        jobs.append(Job(name, "pruning-without-retraining", "smoke", "one_shot",
                        {"task": "rotten_tomatoes", "seed": int(name[-1])},
                        results_dir=str(tmp_path), after=(after,)))
    for n in "ab":
        (state / f"ft-{n}.done").write_text(json.dumps({"record": str(records[n]), "minutes": 1.0}))

    def fake_run_job(job, state, threads, stale_after):
        (state / f"{job.id}.done").write_text("{}")
        return "done"

    fake = _FakeRay(2)
    monkeypatch.setattr(ray_engine, "_ray", lambda: fake)
    monkeypatch.setattr(ray_engine, "run_job", fake_run_job)
    assert set(ray_engine.run(jobs, state, workers=2).values()) == {"done"}
    assert fake.started == ["y-1", "x-1", "x-2"]  # in the plan's order otherwise: x-1, x-2, y-1
    # a job's time includes the training it does again: with an hour left, a one-minute job after ft-a (100 min to
    # train again) does not fit, one after ft-b does; the time left counts ft-a's training once
    (state / "ft-a.done").write_text(json.dumps({"record": str(records["a"]), "minutes": 100.0}))
    x3, y2 = [Job(name, "pruning-without-retraining", "smoke", "one_shot", {"task": "rotten_tomatoes", "seed": 3},
                  results_dir=str(tmp_path), after=(after,)) for name, after in (("x-3", "ft-a"), ("y-2", "ft-b"))]
    plan = [*jobs, x3, y2]  # x-1, x-2 and y-1 took 1 minute each (their summaries hold no record: their own time)
    for name in ("x-1", "x-2", "y-1"):
        (state / f"{name}.done").write_text(json.dumps({"minutes": 1.0}))
    done = done_summaries(job_states(plan, state), state)
    assert startable([x3, y2], plan, done, [], deadline=time.time() + 3600) == [y2]
    assert startable([x3, y2], plan, done, []) == [y2, x3]  # no deadline: both, the one without training first
    assert "about 102 min left" in summary(plan, state, time.time())  # x-3, y-2 and ft-a's 100 min once


def test_the_paper_tier_runs_imp_on_the_other_models_at_their_cost():
    from flatcompress.book import costs
    from flatcompress.profiles import get_profile

    jobs = {j.id: j for j in tier_plan("paper", seeds=[0], chapters=["lottery-tickets"])}
    large = jobs["imp-bert-large-uncased-rte-sam-0"]
    assert large.args["model"] == "bert-large-uncased" and large.after == ("ft-bert-large-uncased-rte-sam-0",)
    assert {j.args["task"] for j in jobs.values() if j.args.get("model") == "roberta-base"} == {"rte", "mrpc", "sst2",
                                                                                                "qnli", "squad"}
    assert not [j for j in tier_plan("colab", seeds=[0], chapters=["lottery-tickets"]) if "model" in j.args]
    # BERT-large's encoder matrices over BERT-base's (pooler included), each counted from its config by hand
    ratio = (24 * (4 * 1024**2 + 2 * 1024 * 4096) + 1024**2) / (12 * (4 * 768**2 + 2 * 768 * 3072) + 768**2)
    paper = get_profile("paper")
    assert costs.job_passes(large, paper) == pytest.approx(ratio * costs.job_passes(jobs["imp-rte-sam-0"], paper))


def test_a_job_whose_record_is_there_needs_no_time_and_no_weights_trained_again(tmp_path, monkeypatch):
    from flatcompress.errors import MissingRecordError
    from flatcompress.sweep import runner

    # ft-a's weights are gone (100 min to train again); x-1's record is there (it only reads it), x-2's is not
    ft = tmp_path / "ft-a.json"
    ft.write_text("{}")
    state = tmp_path / "state"
    state.mkdir()
    (state / "ft-a.done").write_text(json.dumps({"record": str(ft), "minutes": 100.0}))
    (state / "y-0.done").write_text(json.dumps({"minutes": 1.0}))  # a finished one-shot job: 1 minute
    jobs = [Job("ft-a", "train-flat", "smoke", "finetune", {"task": "rotten_tomatoes", "seed": 0},
                results_dir=str(tmp_path))]
    jobs += [Job(name, "pruning-without-retraining", "smoke", "one_shot", {"task": "rotten_tomatoes", "seed": i},
                 results_dir=str(tmp_path), after=("ft-a",)) for i, name in enumerate(("y-0", "x-1", "x-2"))]
    looked_up = []

    def lookup(job, compute=True):
        assert compute is False  # the scheduler only reads
        looked_up.append(job.id)
        if job.id != "x-1":
            raise MissingRecordError(f"no record for {job.id}")
        return {"record": str(tmp_path / "x-1.json")}

    monkeypatch.setattr(runner, "execute", lookup)
    monkeypatch.setattr(runner, "_FOUND", {})
    done = done_summaries(job_states(jobs, state), state)
    x1, x2 = jobs[2:]
    assert runner.retrains(x1, done, {j.id: j for j in jobs}) == set()
    assert runner.retrains(x2, done, {j.id: j for j in jobs}) == {"ft-a"}
    assert runner.job_minutes(jobs, done)["x-1"] == 0.0 and runner.job_minutes(jobs, done)["x-2"] == 1.0
    # with an hour left, x-1 starts (it reads its record), x-2 does not (1 + 100 min); without a deadline x-1 first
    assert startable([x2, x1], jobs, done, [], deadline=time.time() + 3600) == [x1]
    assert startable([x2, x1], jobs, done, []) == [x1, x2]
    assert "about 101 min left" in summary(jobs, state, time.time())  # x-2 and ft-a's training; x-1 nothing
    assert sorted(looked_up) == ["x-1", "x-2"]  # once each: the finished jobs are not looked up
    # the chapter's closing notebook reads ft-a's and y-0's records: it needs no weights and no time, so it starts
    # with a minute left and while x-2 trains ft-a again, and the time left is unchanged
    closing = Job("chapter-pruning-without-retraining", "pruning-without-retraining", "smoke", "reproduce",
                  {"seeds": [0]}, results_dir=str(tmp_path), after=("ft-a", "y-0"))
    jobs.append(closing)
    assert runner.retrains(closing, done, {j.id: j for j in jobs}) == set()
    assert runner.job_minutes(jobs, done)[closing.id] == 0.0
    assert startable([closing], jobs, done, [x2], deadline=time.time() + 60) == [closing]
    assert "about 101 min left" in summary(jobs, state, time.time())
