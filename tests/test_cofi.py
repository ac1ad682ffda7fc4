"""A CoFi run: its losses, its settings' checks, a smoke run end to end, and resuming an interrupted run."""

from __future__ import annotations

import pytest
import torch

from flatcompress.cofi.run import (CoFiSettings, cofi, layer_distillation_loss, prediction_distillation_loss,
                                   teacher_layers)
from flatcompress.training import finetune


def test_teacher_layers_are_cofis_for_bert_base_and_evenly_spread_otherwise():
    assert teacher_layers(12) == [2, 5, 8, 11]
    assert teacher_layers(6) == [1, 2, 4, 5]


def test_layer_matching_finds_the_copied_layers_and_skips_pruned_ones():
    torch.manual_seed(0)
    teacher = [torch.randn(2, 3, 4) for _ in range(12)]
    student = [teacher[2], torch.randn(2, 3, 4), teacher[5], teacher[8], torch.randn(2, 3, 4), teacher[11]]
    identity = torch.nn.Identity()
    assert float(layer_distillation_loss(student, teacher, identity)) == 0.0
    pruned = torch.tensor([1.0, 1, 0, 1, 1, 1])  # student layer 2 has lost its attention: it may not be matched
    assert float(layer_distillation_loss(student, teacher, identity, pruned)) > 0.0


def test_prediction_distillation_is_zero_only_when_the_outputs_agree():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert float(prediction_distillation_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(prediction_distillation_loss(logits, logits.flip(-1), 2.0)) > 0.0
    assert float(prediction_distillation_loss(torch.ones(3, 1), torch.zeros(3, 1), 2.0)) == pytest.approx(1.0)


@pytest.mark.parametrize("bad, message", [({"target": 1.0}, "target sparsity"), ({"prune_epochs": 0}, "prune_epochs"),
                                          ({"warmup_epochs": 5, "prune_epochs": 2}, "cannot exceed"),
                                          ({"layer_alpha": 1.5}, "layer_alpha"), ({"lr": 0.0}, "positive"),
                                          ({"batch_size": 0}, "batch_size")])
def test_bad_settings_are_rejected_before_any_work(bad, message):
    with pytest.raises(ValueError, match=message):
        CoFiSettings(**bad)


SMOKE = CoFiSettings(target=0.5, distill_epochs=1, prune_epochs=2, warmup_epochs=1, finetune_epochs=2, lr=1e-3,
                     finetune_lr=1e-3, reg_lr=0.1)


def test_a_smoke_run_prunes_and_records_what_is_left(smoke_config, tmp_path):
    teacher = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    record = cofi(teacher, SMOKE, results_dir=tmp_path, progress=False, save_checkpoint=True)
    assert [r["stage"] for r in record["history"]] == ["distill", "prune", "prune", "finetune", "finetune"]
    assert record["parameters"]["student"] < record["parameters"]["teacher"]
    assert 0.0 < record["sparsity"] < 1.0 and record["accepted"] == (abs(record["sparsity"] - 0.5) <= 0.01)
    assert len(record["structure"]) == 2 and record["best_epoch"] in (4, 5)
    assert record["teacher_score"] == teacher.score
    assert cofi(teacher, SMOKE, results_dir=tmp_path, compute=False)["score"] == record["score"]
    assert not list(tmp_path.rglob("*.partial"))
    from flatcompress.cofi.model import load_pruned

    student = load_pruned(record["path"].replace(".json", ".student.json"))
    assert sum(p.numel() for p in student.parameters()) == record["parameters"]["student"]


def _killed_and_resumed(teacher, results_dir, monkeypatch, epochs: int) -> dict:
    """The record of a smoke run killed right after its `epochs`-th snapshot, then run again to the end."""
    import flatcompress.cofi.run as cf

    real, calls = cf._snapshot, {"n": 0}

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(cf, "_snapshot", killed)
    with pytest.raises(KeyboardInterrupt):
        cofi(teacher, SMOKE, results_dir=results_dir, progress=False)
    monkeypatch.setattr(cf, "_snapshot", real)
    return cofi(teacher, SMOKE, results_dir=results_dir, progress=False)


def test_an_interrupted_run_resumes_to_the_same_result(smoke_config, tmp_path, monkeypatch):
    teacher = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    reference = cofi(teacher, SMOKE, results_dir=tmp_path / "ref", progress=False)
    resumed = _killed_and_resumed(teacher, tmp_path / "run", monkeypatch, epochs=2)  # after the first pruning epoch
    keep = ("epoch", "stage", "train_loss", "eval", "score", "sparsity", "expected_sparsity")
    assert [{k: r.get(k) for k in keep} for r in resumed["history"]] == \
        [{k: r.get(k) for k in keep} for r in reference["history"]]
    assert resumed["structure"] == reference["structure"] and resumed["sparsity"] == reference["sparsity"]


def test_a_run_that_prunes_hidden_dimensions_fine_tunes_and_resumes_in_that_stage(smoke_config, tmp_path, monkeypatch):
    """The fine-tuning stage distills through the pruned hidden width (its layer map loses the same inputs), and a
    run killed after its first fine-tuning epoch resumes to the uninterrupted result."""
    import flatcompress.cofi.run as cf

    deterministic = cf.CoFiGates.deterministic

    def without_some_hidden_dimensions(self):
        z = deterministic(self)
        z["hidden"] = z["hidden"].clone()
        z["hidden"][::3] = 0.0
        return z

    monkeypatch.setattr(cf.CoFiGates, "deterministic", without_some_hidden_dimensions)
    teacher = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    reference = cofi(teacher, SMOKE, results_dir=tmp_path / "ref", progress=False)
    assert [r["stage"] for r in reference["history"]][-2:] == ["finetune", "finetune"]
    width = teacher.load_model().config.hidden_size
    assert {layer["hidden"] for layer in reference["structure"]} == {width - len(range(0, width, 3))}
    resumed = _killed_and_resumed(teacher, tmp_path / "run", monkeypatch, epochs=4)  # after the first fine-tuning epoch
    keep = ("epoch", "stage", "train_loss", "score")
    assert [{k: r[k] for k in keep} for r in resumed["history"]] == \
        [{k: r[k] for k in keep} for r in reference["history"]]


def test_the_cli_refuses_a_bad_target_before_any_work(tmp_path, capsys):
    from flatcompress.cli import main

    code = main(["cofi", "--task", "rotten_tomatoes", "--profile", "smoke", "--target", "1.2",
                 "--results-dir", str(tmp_path)])
    assert code == 2 and "target sparsity must be in (0, 1)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
