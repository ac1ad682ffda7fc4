"""Verdicts from records, paper-vs-ours tables, cost estimates and the toy surface."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from flatcompress import claims, costs, report
from flatcompress.records import write_record
from flatcompress.toy import TwoWells, trajectory, worst_case


def _sharpness(root, task, optimizer, phi, dim=100):
    write_record(root / "sharpness" / task / f"{optimizer}-{dim}.json",
                 {"kind": "sharpness", "config": {"task": task, "optimizer": optimizer, "seed": 0},
                  "settings": {"dim": dim}, "sharpness": {"0.005": phi}})


@pytest.mark.parametrize("sam_phis, status", [
    ((1.0, 2.0), "reproduced"),
    ((1.0, 9.0), "not reproduced at this scale"),
    ((9.0, 9.0), "contradicted"),
])
def test_flatness_verdict_counts_tasks_where_sam_is_flatter(tmp_path, sam_phis, status):
    for task, sam_phi in zip(("rte", "mrpc"), sam_phis):
        _sharpness(tmp_path, task, "adamw", 5.0)
        _sharpness(tmp_path, task, "sam", sam_phi)
    _sharpness(tmp_path, "rte", "sam", 99.0, dim=None)  # another measure: must not be mixed in
    verdict = claims.flatness_verdict(tmp_path)
    assert verdict.status == status
    assert claims.flatness_verdict(tmp_path, dim=None) is None  # no Adam record in the full space
    assert claims.flatness_verdict(tmp_path / "nothing") is None


def test_scorecard_has_every_claim_with_a_known_status(tmp_path):
    (tmp_path / "results").mkdir()
    rows = claims.scorecard(tmp_path / "results")
    assert [r["claim"] for r in rows] == list(range(1, 18))
    assert {r["status"] for r in rows} <= set(claims.VERDICTS)
    assert rows[0]["status"] == "not run yet" and rows[2]["status"] == "not testable offline"


def test_paper_vs_ours_puts_the_papers_cell_next_to_ours():
    summary = report.summarize([{"task": "rte", "optimizer": "sam", "seed": s, "score": v} for s, v in
                                enumerate((60.0, 62.0))] +
                               [{"task": "rotten_tomatoes", "optimizer": "adamw", "seed": 0, "score": 78.9}], "score")
    table = report.paper_vs_ours(summary, "table5", ("Full FT",))
    assert table.to_dict("records") == [
        {"task": "rte", "optimizer": "SAM", "paper (BERT-base)": "67.0 ± 0.8", "ours": "61.0 ± 1.4", "seeds": 2},
        {"task": "rotten_tomatoes", "optimizer": "Adam", "paper (BERT-base)": "–", "ours": "78.9", "seeds": 1}]
    assert pd.isna(report.paper_mean("table3", ("5e-3", "SAM"), "rotten_tomatoes"))


def test_gpu_hours_are_examples_times_passes_over_throughput():
    hours = costs.finetune_gpu_hours("colab", tasks=["rte"])  # 10 epochs, Adam (1 pass) + SAM (2), 3 seeds
    assert hours == pytest.approx(2_490 * 10 * 3 * 3 / costs.ASSUMED_EXAMPLES_PER_SECOND / 3600)
    with pytest.raises(ValueError, match="measured"):
        costs.finetune_gpu_hours("cpu")


def test_toy_worst_case_lifts_the_sharp_minimum_above_the_flat_one():
    surface = TwoWells()
    minima = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    plain, worst = surface(minima), worst_case(surface, minima, 0.3)
    assert plain[0] < plain[1]  # the sharp minimum is deeper
    assert worst[0] > worst[1]  # but worse in the worst case over the ball
    assert torch.all(worst >= plain)
    path = trajectory(surface, lambda p: torch.optim.SGD(p, lr=0.05), (-0.8, 0.2), 300)
    assert path.shape == (301, 2) and abs(path[-1, 0] + 1.0) < 0.05  # gradient descent takes the sharp well
