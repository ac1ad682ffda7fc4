"""Device-correct code, checked on the CPU: what a GPU run needs placed once, and what it must not fall back to."""

from __future__ import annotations

import pytest
import torch

from flatcompress.config import FinetuneConfig
from flatcompress.masks import _resolve, masks_on
from flatcompress.profiles import PROFILES


def test_every_tier_lists_only_tasks_it_can_train():
    for profile in PROFILES.values():
        for task in profile.tasks:
            assert isinstance(profile.config(task), FinetuneConfig), (profile.name, task)  # SQuAD would raise here


def test_masks_are_moved_once_and_then_applied_without_copies():
    model = torch.nn.Linear(4, 3)
    masks = masks_on({"weight": torch.tensor([[1, 0, 1, 1]] * 3)}, "cpu")
    assert masks["weight"].dtype == torch.bool
    (param, mask), = _resolve(model, masks)
    assert mask is masks["weight"]  # already on the parameter's device: no copy per step


def test_measurements_load_the_model_on_the_device_they_are_given(smoke_config, tmp_path, monkeypatch):
    from flatcompress.pruning.oneshot import one_shot_sweep
    from flatcompress.training import FinetuneResult, finetune

    run = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    asked = []
    real = FinetuneResult.load_model

    def load_model(self, device=None):
        asked.append(device)
        return real(self, device)

    monkeypatch.setattr(FinetuneResult, "load_model", load_model)
    stored = FinetuneResult(run.record, run.path)
    model = stored.load_model("cpu")
    assert all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    one_shot_sweep(stored, (0.0, 0.5), results_dir=tmp_path, device="cpu")
    assert asked[-1] == "cpu"


def test_a_full_space_search_that_cannot_fit_stops_before_it_starts(smoke_config, tmp_path, monkeypatch):
    import flatcompress.flatness.sharpness_records as sr
    from flatcompress.training import finetune

    run = finetune(smoke_config(), results_dir=tmp_path, progress=False, save_checkpoint=True)
    monkeypatch.setattr(sr, "_available_bytes", lambda: 1024)
    with pytest.raises(MemoryError, match="needs about .* GiB of host memory"):
        sr.measure_sharpness(run, results_dir=tmp_path, dim=None, n_examples=8)
    assert sr.full_space_bytes(110_000_000) / 2 ** 30 == pytest.approx(22.5, abs=0.1)  # BERT-base: ~24 GB
    assert sr.full_space_fits(22_700_000) and not sr.full_space_fits(110_000_000)
