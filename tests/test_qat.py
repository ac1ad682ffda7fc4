"""Quantization-aware training (Q8BERT's recipe): fake quantization, the straight-through estimator, the integer
model, masks, the fine-tuning loop, and bad input."""

import pytest
import torch

from flatcompress import FinetuneConfig, finetune
from flatcompress.masks import prunable_names
from flatcompress.models import load_model
from flatcompress.pruning.magnitude import magnitude_masks
from flatcompress.quantization.qat import (Int8Linear, QATLinear, convert_int8, fake_quantize, is_qat,
                                           prepare_qat)
from flatcompress.tasks import get_task


def test_fake_quantization_rounds_to_int8_steps_and_passes_gradients_straight_through():
    x = torch.tensor([0.5, -1.0, 0.26, 2.0], requires_grad=True)
    q = fake_quantize(x, torch.tensor(1.0))  # scale 127: 63.5 -> 64 (half to even), -127, 33.02 -> 33, clamp 254 -> 127
    assert torch.equal(q.detach(), torch.tensor([64.0, -127.0, 33.0, 127.0]) / 127)
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(4))  # ∂q/∂x := 1, the straight-through estimator


def _tiny():
    model = load_model("tiny", get_task("rotten_tomatoes"))
    ids = torch.randint(1, model.config.vocab_size, (4, 12), generator=torch.Generator().manual_seed(0))
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_preparing_keeps_the_parameters_and_their_names():
    model, _ = _tiny()
    before = dict(model.named_parameters())
    prepare_qat(model)
    after = dict(model.named_parameters())
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)  # the same tensors
    assert is_qat(model) and set(model.state_dict()) - set(before) == {
        n for n, _ in model.named_buffers() if n.endswith(("input_amax", "steps"))}
    with pytest.raises(ValueError, match="already prepared"):
        prepare_qat(model)


def test_the_integer_model_computes_what_the_fake_quantized_one_does():
    model, batch = _tiny()
    prepare_qat(model).train()
    with torch.no_grad():
        model(**batch)  # one training batch: every layer learns its input range
    model.eval()
    with torch.no_grad():
        fake = model(**batch).logits
        integer_model = convert_int8(model)
        integer = integer_model(**batch).logits
    assert any(isinstance(m, Int8Linear) for m in integer_model.modules())
    assert not any(isinstance(m, QATLinear) for m in integer_model.modules()) and is_qat(model)  # a copy
    assert integer_model.bert.encoder.layer[0].attention.self.query.weight_int8.dtype == torch.int8
    assert torch.allclose(integer, fake, atol=1e-4, rtol=1e-4)


def test_the_input_range_is_an_exponential_moving_average_and_frozen_in_evaluation():
    layer = QATLinear(torch.nn.Linear(3, 2), decay=0.9)
    layer(torch.tensor([[1.0, -2.0, 0.5]]))  # the first batch sets the range: 2
    layer(torch.tensor([[4.0, 0.0, 0.0]]))  # 2 - 0.1 * (2 - 4) = 2.2
    assert layer.input_amax.item() == pytest.approx(2.2) and int(layer.steps) == 2
    layer.eval()
    layer(torch.tensor([[100.0, 0.0, 0.0]]))
    assert layer.input_amax.item() == pytest.approx(2.2)


def test_qat_layers_live_on_the_device_of_the_layer_they_replace():
    with torch.device("meta"):
        layer = QATLinear(torch.nn.Linear(4, 2))
    assert {t.device.type for t in layer.state_dict().values()} == {"meta"}


def test_a_qat_run_with_masks_keeps_pruned_weights_at_zero_in_the_integer_model(smoke_config):
    base = load_model("tiny", get_task("rotten_tomatoes"))
    masks = magnitude_masks(base, 0.5, prunable_names(base))
    for optimizer, kwargs in (("adamw", {}), ("sam", {"rho": 0.05})):  # SAM's perturbation goes through the fake quant
        result = finetune(smoke_config(qat=True, optimizer=optimizer, optimizer_kwargs=kwargs), masks=masks,
                          results_dir=None, progress=False)
        assert result.record["config"]["qat"] and result.record["precision"] == "fp32"
        integer = dict(convert_int8(result.model).named_buffers())
        for name, mask in masks.items():
            layer = name.removesuffix(".weight")
            assert torch.count_nonzero(integer[f"{layer}.weight_int8"].t()[~mask]) == 0, name


def test_a_qat_runs_quantization_record_scores_its_integer_model(smoke_config, tmp_path):
    from flatcompress.quantization.quantize_records import measure_quantization

    result = finetune(smoke_config(qat=True), results_dir=tmp_path, progress=False, save_checkpoint=True)
    record = measure_quantization(result, ["qat-int8"], results_dir=tmp_path)
    (row,) = record["rows"]
    assert row["setting"] == "qat-int8" and record["fp32_score"] == pytest.approx(result.score)
    assert abs(row["score"] - record["fp32_score"]) <= 1 / 32  # at most one of the 32 dev examples flips
    from flatcompress.training import FinetuneResult

    reloaded = FinetuneResult(result.record, result.path).load_model("cpu")  # from its checkpoint, learned ranges too
    assert is_qat(reloaded) and all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(),
                                                                        result.model.state_dict().values()))
    with pytest.raises(ValueError, match="qat-int8"):
        measure_quantization(result, ["torch-ao"], results_dir=tmp_path)
    plain = finetune(smoke_config(), results_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="only such a run"):
        measure_quantization(plain, ["qat-int8"], results_dir=tmp_path)


def test_the_cli_trains_with_qat_and_scores_the_integer_model(tmp_path, capsys):
    from flatcompress.cli import main

    base = ["--task", "rotten_tomatoes", "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet"]
    assert main(["quantize", *base, "--qat"]) == 0
    assert "qat-int8" in capsys.readouterr().out
    assert main(["quantize", *base, "--qat", "--settings", "torch-ao", "--seed", "5"]) == 2  # before training seed 5
    assert "qat-int8" in capsys.readouterr().err and not list(tmp_path.rglob("*seed5*"))


def test_bad_qat_input_is_refused_before_any_work():
    with pytest.raises(ValueError, match="precision must be fp32 or None"):
        FinetuneConfig(task="rotten_tomatoes", model="tiny", qat=True, precision="bf16")
    model, _ = _tiny()
    with pytest.raises(ValueError, match="trained with quantization-aware training"):
        convert_int8(model)
    from flatcompress.quantization.quantize import quantize

    with pytest.raises(ValueError, match="never saw a training batch"):
        convert_int8(prepare_qat(model))
    with pytest.raises(ValueError, match="its own integer model"):
        quantize(model)
