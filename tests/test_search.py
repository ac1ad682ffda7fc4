"""The recipe search: its plan, its table and the choice it makes."""

from __future__ import annotations

import numpy as np
import pytest

from flatcompress import search
from flatcompress.predictions import evaluation_block
from flatcompress.records import write_record


def _run(root, task, optimizer, lr, rho, accuracy, n=500):
    y = np.array([0, 1] * (n // 2))
    p = np.where(np.arange(n) < accuracy * n, y, 1 - y)
    write_record(root / "finetune" / task / f"{optimizer}-{lr}-{rho}.json", {
        "kind": "finetune", "key": f"{task}{optimizer}{lr}{rho}",
        "config": {"task": task, "optimizer": optimizer, "lr": lr, "optimizer_kwargs": {"rho": rho} if rho else {},
                   "epochs": 2, "holdout": 500, "seed": 0},
        "task": {"main_split": "heldout", "main_metric": "accuracy"}, "steps": 100,
        "data": {"n_train": 1000, "n_eval": {"heldout": n}, "majority_rate": 0.5}, "score": float(np.mean(p == y)),
        "predictions": {"heldout": evaluation_block(y, p, "classification", "f")}})


def test_the_choice_is_the_best_mean_over_tasks_every_setting_ran(tmp_path):
    for task, adam in (("sst2", (0.85, 0.87)), ("mrpc", (0.79, 0.75))):  # mean: 5e-5 0.82, 1e-4 0.81
        _run(tmp_path, task, "adamw", 5e-5, None, adam[0])
        _run(tmp_path, task, "adamw", 1e-4, None, adam[1])
        _run(tmp_path, task, "sam", 5e-5, 0.02, 0.80)
        _run(tmp_path, task, "sam", 5e-5, 0.05, 0.78)
    _run(tmp_path, "rte", "sam", 5e-5, 0.05, 0.99)  # only one SAM setting ran on RTE: it cannot decide the choice
    table = search.search_table(tmp_path)
    assert len(table) == 9 and table.trained.all()
    choice = search.chosen(table)
    assert choice["adamw"]["lr"] == 5e-5 and choice["adamw"]["rho"] is None
    assert choice["sam"] == {"lr": 5e-5, "rho": 0.02, "mean held-out": 80.0, "tasks": ["mrpc", "sst2"]}


def test_a_task_on_which_no_setting_trained_does_not_rank_the_settings(tmp_path):
    _run(tmp_path, "sst2", "adamw", 5e-5, None, 0.85)
    _run(tmp_path, "sst2", "adamw", 1e-4, None, 0.87)
    _run(tmp_path, "rte", "adamw", 5e-5, None, 0.54)  # both within 2 standard errors of the majority rate 0.5
    _run(tmp_path, "rte", "adamw", 1e-4, None, 0.46)  # (500 examples: 2 SE = 4.5 points)
    _run(tmp_path, "sst2", "sam", 5e-5, 0.05, 0.5)   # a SAM setting that did not train where others did
    _run(tmp_path, "sst2", "sam", 5e-5, 0.02, 0.86)
    table = search.search_table(tmp_path)
    assert table.trained.tolist().count(False) == 3
    assert search.chosen(table)["adamw"] == {"lr": 1e-4, "rho": None, "mean held-out": 87.0, "tasks": ["sst2"]}
    with_rte = table[table.task == "rte"]  # RTE alone: its mean would have picked 5e-5
    assert with_rte.loc[with_rte["held-out"].idxmax(), "lr"] == 5e-5
    assert search.untrained_settings(table) == (["rte"], ["sst2 sam lr 5e-05 ρ 0.05, 2 epochs"])
    with pytest.raises(ValueError, match="no task on which every adamw setting ran and one of them trained"):
        search.chosen(table[table.task == "rte"])


def test_the_search_plan_holds_out_training_data_in_every_run():
    jobs = search.search_plan("grid") + search.search_plan("longer")
    assert all(j.args["holdout"] == search.HOLDOUT and j.profile == "cpu" for j in jobs)
    assert len({j.id for j in jobs}) == len(jobs) == 16 + 3  # RTE at rho 0.02 was skipped
    assert not [j for j in jobs if j.args["task"] == "rte" and j.args.get("rho") == 0.02]
    swa = search.search_plan("swa")
    assert [j.args["lr"] for j in swa] == [5e-5, 1e-4, 2e-4] and all(j.args["holdout"] == search.HOLDOUT for j in swa)


def test_a_tier_can_choose_a_learning_rate_per_optimizer():
    from flatcompress.book.chapter import Chapter
    from flatcompress.profiles import get_profile

    tier = get_profile("cpu")
    assert tier.config("sst2", optimizer="sam").lr == tier.lr_by_optimizer["sam"]
    assert tier.config("sst2", optimizer="adamw").lr == tier.lr
    assert tier.config("sst2", optimizer="sam", lr=1e-3).lr == 1e-3  # an explicit setting wins
    config = Chapter.open("train-flat", "cpu").config("mrpc", "sam", 0)
    assert config.optimizer_kwargs == {"rho": tier.rho} and config.max_train_examples is None
