"""Precision from the device, and fp16 loss scaling: an overflow skips the whole step, for AdamW and for SAM."""

from __future__ import annotations

import pytest
import torch

from flatcompress.device import LossScaler, SkipStep, pick_precision


def test_the_precision_follows_the_device():
    assert pick_precision("cpu") == "fp32"
    assert pick_precision("cpu", "fp16") == "fp16"
    with pytest.raises(ValueError, match="valid precisions: bf16, fp16, fp32"):
        pick_precision("cpu", "int4")


def test_the_loss_scale_halves_on_an_overflow_and_grows_after_finite_steps():
    scaler = LossScaler(init_scale=8.0, growth_interval=3)
    scaler.update(skipped=True)
    assert scaler.scale == 4.0 and scaler.skipped == 1
    for _ in range(3):
        scaler.update(skipped=False)
    assert scaler.scale == 8.0
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([16.0, 8.0])
    scaler.unscale([p])
    assert p.grad.tolist() == [2.0, 1.0]
    p.grad = torch.tensor([float("inf"), 1.0])
    with pytest.raises(SkipStep):
        scaler.unscale([p])


@pytest.mark.parametrize("optimizer, overflow_at", [("adamw", 1), ("sam", 1), ("sam", 2)])
def test_an_overflow_skips_the_whole_step(smoke_config, optimizer, overflow_at):
    """The overflow comes in the first forward pass, or (SAM) in the second, at the perturbed weights: either way
    no weight moves (SAM puts back the weights it perturbed) and the base optimizer takes no step."""
    from flatcompress.data import encode, load_task, pad_collate
    from flatcompress.models import load_tokenizer
    from flatcompress.optim import build_optimizer
    from flatcompress.training import _make_closure, starting_model

    config = smoke_config(optimizer=optimizer, precision="fp16",
                          optimizer_kwargs={"rho": 0.05} if optimizer == "sam" else {})
    model = starting_model(config)
    calls = {"n": 0}

    def overflow(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == overflow_at:
            output.loss = output.loss * float("inf")
        return output

    model.register_forward_hook(overflow)
    features = encode(load_task("rotten_tomatoes", max_train_examples=8).train, load_tokenizer("tiny"), 32)
    batch = pad_collate(features)
    opt = build_optimizer(optimizer, model.parameters(), lr=1e-2, **config.optimizer_kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    closure = _make_closure(model, opt, batch, config, None, torch.device("cpu"), 1, (), "fp16", LossScaler())
    with pytest.raises(SkipStep):
        opt.step(closure)
    assert calls["n"] == overflow_at
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    base = opt.base_optimizer if optimizer == "sam" else opt
    assert not base.state  # AdamW never stepped: no moments, no step count


def test_fp16_training_runs_and_says_so(smoke_config):
    from flatcompress.training import finetune

    record = finetune(smoke_config(precision="fp16"), results_dir=None, progress=False).record
    assert record["precision"] == "fp16" and record["skipped_steps"] == 0
    assert finetune(smoke_config(), results_dir=None, progress=False).record["precision"] == "fp32"
