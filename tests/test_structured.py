"""CoFi's building blocks: hard-concrete gates against their closed forms, sparsity accounting, the constraint."""

from __future__ import annotations

import math

import pytest
import torch

from flatcompress.cofi.gates import LIMIT_HIGH, LIMIT_LOW, TEMPERATURE, HardConcrete
from flatcompress.cofi.shapes import CoFiGates, EncoderShape, Lagrangian, check_target
from flatcompress.pruning.magnitude import meta_model


def _cdf(x: float, log_alpha: float) -> float:
    """Q(x) = P(stretched sample <= x), by hand from the stretched binary-concrete CDF."""
    xn = (x - LIMIT_LOW) / (LIMIT_HIGH - LIMIT_LOW)
    return 1 / (1 + math.exp(-(TEMPERATURE * (math.log(xn) - math.log(1 - xn)) - log_alpha)))


@pytest.mark.parametrize("log_alpha", [-2.0, 0.0, 1.5])
def test_hard_concrete_samples_match_the_closed_form(log_alpha):
    gate = HardConcrete(200_000, init_mean=log_alpha, init_std=0.0)
    z = gate.sample(torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() <= 1
    p_zero, p_one = _cdf(0.0, log_alpha), 1 - _cdf(1.0, log_alpha)
    assert float((z == 0).float().mean()) == pytest.approx(p_zero, abs=0.005)
    assert float((z == 1).float().mean()) == pytest.approx(p_one, abs=0.005)
    assert float(gate.prob_nonzero()[0].detach()) == pytest.approx(1 - p_zero, abs=1e-6)  # the expected-L0 term
    assert float(gate.prob_one()[0].detach()) == pytest.approx(p_one, abs=1e-6)


def test_hard_concrete_gradients_reach_log_alpha():
    gate = HardConcrete(10)
    gate.sample().sum().backward()
    assert gate.log_alpha.grad is not None and gate.log_alpha.grad.abs().sum() > 0
    gate.log_alpha.grad = None
    gate.prob_nonzero().sum().backward()
    assert (gate.log_alpha.grad > 0).all()


def test_deterministic_gates_close_the_expected_number_per_row():
    gate = HardConcrete((2, 6))
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([[5.0, -5, 5, -5, 5, 0.1], [-5.0, -5, -5, -5, 5, 5]]))
    z = gate.deterministic()
    expected_closed = torch.round((1 - gate.prob_nonzero()).sum(-1))
    assert ((z == 0).sum(-1).float() == expected_closed).all()
    assert (z[0, [1, 3]] == 0).all() and (z[1, :4] == 0).all()  # the smallest log-alpha close first
    layer = HardConcrete(3, independent=True)
    with torch.no_grad():
        layer.log_alpha.copy_(torch.tensor([5.0, -5.0, 5.0]))
    assert (layer.deterministic() > 0).tolist() == [True, False, True]


def test_cofi_counts_bert_base_as_cofi_does():
    shape = EncoderShape.of(meta_model("bert-base").config)
    assert shape.prunable == 12 * ((4 * 768 ** 2 + 4 * 768) + (2 * 768 * 3072 + 5 * 768)) == 85_017_600
    gates = CoFiGates(shape)
    p_unit = float(gates.gates["intermediate"].prob_nonzero().mean().detach())  # FFN units start at log-alpha 0
    assert 0.8 < p_unit < 0.85
    with torch.no_grad():
        gates.gates["intermediate"].log_alpha.fill_(10.0)
    assert float(gates.expected_sparsity().detach()) == pytest.approx(12 * 5 * 768 / shape.prunable, abs=1e-4)
    masks = {k: torch.ones_like(v) for k, v in gates.deterministic().items()}
    masks["head_layer"][:6] = 0  # half the attention sublayers
    masks["intermediate"][:, :1536] = 0  # half of every FFN
    removed = 6 * shape.attention_params + 12 * 2 * 768 * 1536
    assert gates.sparsity(masks) == pytest.approx((removed + 12 * 5 * 768) / shape.prunable)
    masks["hidden"][:384] = 0  # half the hidden dimension halves what is left
    assert gates.sparsity(masks) == pytest.approx(1 - (shape.prunable - removed - 12 * 5 * 768) / 2 / shape.prunable)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.2, 1.5])
def test_bad_targets_are_rejected(target):
    with pytest.raises(ValueError, match=r"target sparsity must be in \(0, 1\)"):
        check_target(target)
    with pytest.raises(ValueError):
        Lagrangian(target)


def test_the_lagrangian_drives_a_toy_model_to_its_target():
    """Gates on a small encoder's structures, a task loss that wants every structure (some more than others),
    and the constraint:
    the evaluation masks end within 1% of the target sparsity."""
    torch.manual_seed(0)
    shape = EncoderShape(layers=4, heads=8, hidden=256, intermediate=1024)
    gates, constraint, target = CoFiGates(shape), Lagrangian(0.6, warmup_steps=200), 0.6
    model_opt = torch.optim.Adam(gates.parameters(), lr=0.1)
    lambda_opt = torch.optim.Adam(constraint.parameters(), lr=0.1, maximize=True)
    value = {k: torch.rand(g.log_alpha.shape) for k, g in gates.gates.items()}  # structures differ in use
    for step in range(600):
        z = gates.sample()
        task = -sum((value[k] * v).mean() for k, v in z.items())  # every structure helps the task, some more
        loss = task + constraint(gates.expected_sparsity(), step)
        model_opt.zero_grad(); lambda_opt.zero_grad()
        loss.backward()
        model_opt.step(); lambda_opt.step()
    assert float(gates.expected_sparsity().detach()) == pytest.approx(target, abs=0.01)
    assert gates.sparsity() == pytest.approx(target, abs=0.01)
    assert constraint.target_at(100) == pytest.approx(0.3) and constraint.target_at(10_000) == target


def test_uniform_gates_keep_the_same_fraction_in_every_layer():
    from flatcompress.cofi.shapes import uniform_gates

    shape = EncoderShape.of(meta_model("bert-base").config)
    z = uniform_gates(shape, 0.25)
    assert (z["head"].sum(-1) == 3).all() and (z["intermediate"].sum(-1) == 768).all()
    assert CoFiGates(shape).sparsity(z) == pytest.approx(0.75, abs=0.001)
    none = uniform_gates(shape, 0.0)
    assert (none["head_layer"] == 0).all() and CoFiGates(shape).sparsity(none) == 1.0
