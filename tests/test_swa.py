"""SWA (A.2): checkpoint steps, the mean of the checkpoints, masks, resuming, and its options."""

import pytest
import torch

from flatcompress import FinetuneConfig, finetune
from flatcompress.flatness.swa import WeightAverage, checkpoint_steps
from flatcompress.masks import prunable_names
from flatcompress.pruning.magnitude import magnitude_masks


def test_checkpoints_are_the_last_half_as_in_the_paper():
    assert checkpoint_steps(100, 10) == [600, 700, 800, 900, 1000]  # 10 epochs: one a epoch, epochs 6-10
    assert checkpoint_steps(100, 3) == [200, 250, 300]  # 3 epochs: one a half epoch, after 2, 2.5 and 3
    assert checkpoint_steps(4, 2, every=0.5) == [6, 8]
    assert checkpoint_steps(4, 2, every=0.5, fraction=1.0) == [2, 4, 6, 8]
    assert checkpoint_steps(5, 3, every=1.0) == [10, 15]  # ceil(0.5 * 3) = 2 of 3


def test_the_average_is_the_mean_of_the_checkpoints_and_keeps_zeros():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    with torch.no_grad():
        model.weight[:, :2] = 0.0  # "pruned": zero at every checkpoint
    average, snapshots = WeightAverage(model, [2, 4, 5]), []
    for step in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.weight[:, :2] = 0.0
        average.update(model, step)
        if step in (2, 4, 5):
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
    weights = average.weights()
    assert average.n_averaged == 3
    for name in ("weight", "bias"):
        expected = sum(s[name] for s in snapshots) / 3
        assert torch.allclose(weights[name], expected, atol=1e-6), name
    assert torch.count_nonzero(weights["weight"][:, :2]) == 0


def test_the_average_and_its_counter_live_on_the_models_device():
    with torch.device("meta"):
        model = torch.nn.Linear(4, 2)
    average = WeightAverage(model, [1])
    assert {t.device.type for t in average.state_dict().values()} == {"meta"}


def test_an_unfinished_average_is_refused():
    model = torch.nn.Linear(2, 2)
    average = WeightAverage(model, [3, 4])
    average.update(model, 3)
    with pytest.raises(RuntimeError, match="averaged 1 of its 2 checkpoints"):
        average.weights()


def test_a_run_ends_on_the_mean_of_its_checkpoints_and_keeps_its_mask(smoke_config, monkeypatch):
    from flatcompress.models import load_model
    from flatcompress.tasks import get_task

    base = load_model("tiny", get_task("rotten_tomatoes"))
    masks = magnitude_masks(base, 0.5, prunable_names(base))
    captured = []
    real_update = WeightAverage.update

    def capture(self, model, step):
        if step in self.steps:
            captured.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        real_update(self, model, step)

    monkeypatch.setattr(WeightAverage, "update", capture)
    config = smoke_config(optimizer="swa", optimizer_kwargs={"every": 0.5})  # 4 steps an epoch, 2 epochs
    result = finetune(config, masks=masks, results_dir=None, progress=False)
    record = result.record
    assert record["average"] == {"steps": [6, 8], "n": 2} and len(captured) == 2
    assert record["best_epoch"] == config.epochs
    params = result.model.state_dict()
    for name in masks:
        expected = (captured[0][name] + captured[1][name]) / 2
        assert torch.allclose(params[name], expected, atol=1e-6), name
        assert torch.count_nonzero(params[name][~masks[name]]) == 0, name
    assert not torch.equal(params[name], captured[1][name])  # the mean, not the last iterate


def test_an_interrupted_swa_run_resumes_to_the_same_average(smoke_config, tmp_path, monkeypatch):
    config = smoke_config(optimizer="swa", epochs=3, optimizer_kwargs={"every": 0.5})  # checkpoints 8, 10, 12
    reference = finetune(config, results_dir=tmp_path / "ref", progress=False)
    import flatcompress.training as ft

    real_evaluate, calls = ft.evaluate_splits, {"n": 0}

    def crash_in_epoch_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # after checkpoint 8 was averaged and epoch 2's snapshot was written
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(ft, "evaluate_splits", crash_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        finetune(config, results_dir=tmp_path / "run", progress=False)
    monkeypatch.setattr(ft, "evaluate_splits", real_evaluate)
    resumed = finetune(config, results_dir=tmp_path / "run", progress=False)
    assert resumed.record["average"] == reference.record["average"] == {"steps": [8, 10, 12], "n": 3}
    assert resumed.record["predictions"] == reference.record["predictions"]
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(),
                                                 reference.model.state_dict().values()))


@pytest.mark.parametrize("kwargs, message", [({"every": 0}, "every .* must be > 0"),
                                             ({"fraction": 1.5}, r"fraction .* must be in \(0, 1\]"),
                                             ({"rho": 0.05}, "does not take \\['rho'\\]; its options: every")])
def test_bad_swa_options_are_refused_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(task="rotten_tomatoes", model="tiny", optimizer="swa", optimizer_kwargs=kwargs)


def test_the_mean_replaces_the_parameters_and_the_model_keeps_its_buffers(smoke_config):
    """SWA averages parameters only: a QAT model keeps the input ranges it learned (a stale copy would be zeros)."""
    from flatcompress.quantization.qat import QATLinear, convert_int8

    result = finetune(smoke_config(optimizer="swa", optimizer_kwargs={"every": 0.5}, qat=True), results_dir=None,
                      progress=False)
    layers = [m for m in result.model.modules() if isinstance(m, QATLinear)]
    assert layers and all(int(m.steps) == 8 and float(m.input_amax) > 0 for m in layers)  # 2 epochs of 4 steps
    convert_int8(result.model)
