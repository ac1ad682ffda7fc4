import copy
import math

import pytest
import torch

from flatcompress import finetune
from flatcompress.flatness.sam import SAM


def _quadratic(w, a):
    """L(w) = 1/2 w^T diag(a) w, so grad L(w) = a * w."""
    def closure():
        w.grad = None
        loss = 0.5 * (a * w * w).sum()
        loss.backward()
        return loss
    return closure


def test_sam_step_on_a_quadratic_matches_the_hand_derived_value():
    w0, a, rho, lr = [1.0, 2.0], [1.0, 3.0], 0.1, 0.5
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=rho, lr=lr)
    opt.step(_quadratic(w, torch.tensor(a, dtype=torch.float64)))
    # by hand: g = (1, 6), eps = rho g / sqrt(37), g_sam = a * (w + eps), w' = w - lr g_sam
    g = [a[0] * w0[0], a[1] * w0[1]]
    norm = math.sqrt(g[0] ** 2 + g[1] ** 2)
    expected = [w0[i] - lr * a[i] * (w0[i] + rho * g[i] / norm) for i in range(2)]
    assert w.tolist() == pytest.approx(expected, rel=1e-12)


def test_asam_step_on_a_quadratic_matches_the_hand_derived_value():
    w0, a, rho, lr = [1.0, -2.0], [2.0, 1.0], 0.5, 0.1
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=rho, adaptive=True, lr=lr)
    opt.step(_quadratic(w, torch.tensor(a, dtype=torch.float64)))
    # by hand: g = a w = (2, -2); T_w g = |w| g = (2, -4); eps = rho w^2 g / ||T_w g|| = 0.5 (2, -8) / sqrt(20)
    g = [a[i] * w0[i] for i in range(2)]
    norm = math.sqrt(sum((abs(w0[i]) * g[i]) ** 2 for i in range(2)))
    eps = [rho * w0[i] ** 2 * g[i] / norm for i in range(2)]
    expected = [w0[i] - lr * a[i] * (w0[i] + eps[i]) for i in range(2)]
    assert w.tolist() == pytest.approx(expected, rel=1e-12)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))


def _mlp_closure(model, opt, x, y, record=None):
    def closure():
        opt.zero_grad()
        hidden = model[1](model[0](x))
        if record is not None:
            record.append((hidden == 0).clone())
        loss = ((model[2](hidden) - y) ** 2).mean()
        loss.backward()
        return loss
    return closure


def test_rho_zero_equals_a_plain_adamw_step_exactly():
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    plain, sam = _mlp(), _mlp()
    adamw = torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=0.01)
    wrapped = SAM(sam.parameters(), torch.optim.AdamW, rho=0.0, lr=1e-2, weight_decay=0.01)
    for step in range(3):
        torch.manual_seed(100 + step)
        adamw.step(_mlp_closure(plain, adamw, x, y))
        torch.manual_seed(100 + step)
        wrapped.step(_mlp_closure(sam, wrapped, x, y))
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), sam.parameters()))


def test_weights_are_restored_bit_for_bit():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.3, lr=0.0)
    _mlp_closure(model, opt, torch.randn(8, 4), torch.randn(8, 1))()
    opt.first_step()
    assert not all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    opt.second_step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all("old_p" not in opt.state[p] for p in model.parameters())  # no copy held between steps


@pytest.mark.parametrize("replay, same", [(True, True), (False, False)])
def test_both_passes_see_the_same_dropout_masks(replay, same):
    model = _mlp()
    opt = SAM(model.parameters(), torch.optim.AdamW, rho=0.05, replay_dropout=replay, lr=1e-3)
    masks: list[torch.Tensor] = []
    opt.step(_mlp_closure(model, opt, torch.randn(32, 4), torch.randn(32, 1), record=masks))
    assert len(masks) == 2 and torch.equal(masks[0], masks[1]) == same


def test_pruned_weights_stay_zero_through_the_perturbation():
    model = _mlp()
    mask = torch.rand(model[0].weight.shape) > 0.5
    with torch.no_grad():
        model[0].weight.mul_(mask)
    opt = SAM(model.parameters(), torch.optim.AdamW, rho=0.5, lr=1e-2)
    seen = []
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    inner = _mlp_closure(model, opt, x, y)

    def closure():
        seen.append(model[0].weight[~mask].abs().max().item())  # at w, then at w + eps
        loss = inner()
        model[0].weight.grad.mul_(mask)  # what the fine-tuning loop does for masked weights
        return loss

    for _ in range(3):
        opt.step(closure)
        with torch.no_grad():
            model[0].weight.mul_(mask)
    assert seen == [0.0] * 6


def test_nan_gradient_raises_a_clear_error():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = SAM([w], torch.optim.SGD, lr=0.1)

    def closure():
        w.grad = torch.tensor([float("nan"), 1.0])
        return torch.tensor(0.0)

    with pytest.raises(FloatingPointError, match="gradient norm is nan"):
        opt.step(closure)
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="rho must be >= 0"):
        SAM([w], torch.optim.SGD, rho=-1.0, lr=0.1)


def test_per_group_rho_state_dict_round_trip_and_scheduler():
    model = _mlp()
    groups = [{"params": model[0].parameters(), "rho": 0.1}, {"params": model[2].parameters(), "rho": 0.0}]
    opt = SAM(groups, torch.optim.AdamW, rho=0.05, lr=1e-2)
    assert [g["rho"] for g in opt.param_groups] == [0.1, 0.0]
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 10)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    opt.step(_mlp_closure(model, opt, x, y))
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(9e-3) and opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(9e-3)
    clone = _mlp()
    clone.load_state_dict(model.state_dict())
    restored = SAM([{"params": clone[0].parameters()}, {"params": clone[2].parameters()}], torch.optim.AdamW, lr=1.0)
    restored.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if saved to disk
    assert [g["rho"] for g in restored.param_groups] == [0.1, 0.0] and restored.param_groups[0]["lr"] == pytest.approx(9e-3)
    for o, m in ((opt, model), (restored, clone)):
        torch.manual_seed(5)
        o.step(_mlp_closure(m, o, x, y))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), clone.parameters()))


def test_sam_plugs_into_the_fine_tuning_loop(smoke_config):
    adam = finetune(smoke_config(), results_dir=None, progress=False)
    sam = finetune(smoke_config(optimizer="sam", optimizer_kwargs={"rho": 0.05}), results_dir=None, progress=False)
    assert sam.record["config"]["optimizer"] == "sam" and len(sam.record["history"]) == 2
    assert sam.record["history"][0]["train_loss"] != adam.record["history"][0]["train_loss"]
    with pytest.raises(ValueError, match="rho must be >= 0"):
        smoke_config(optimizer="sam", optimizer_kwargs={"rho": -1})  # refused by the config, before any loading


def test_dropout_replay_measures_the_first_order_rise_and_leaves_the_weights_alone():
    from conftest import random_batch, tiny_bert

    from flatcompress.flatness.dropout_replay import loss_rise

    model = tiny_bert(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64)
    for module in model.modules():  # dropout on, strong enough to matter
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.3
    batch = {**random_batch(100, rows=8, length=12, padded_rows=slice(0, 4), pad_from=8),
             "labels": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rho = 1e-3
    torch.manual_seed(7)  # the gradient at w under the masks loss_rise draws with seed 7, by hand
    model.train()
    model.zero_grad()
    model(**batch).loss.backward()
    grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                      if p.grad is not None]))
    at_w, at_perturbed = loss_rise(model, batch, rho, replay=True, seed=7)
    assert at_perturbed - at_w == pytest.approx(rho * float(grad_norm), rel=0.05)  # same masks: L rises by ρ‖g‖
    other_w, other_perturbed = loss_rise(model, batch, rho, replay=False, seed=7)
    assert other_w == at_w  # the first pass is the same; the second draws new masks, which move the loss at w + ε̂
    assert abs(other_perturbed - at_perturbed) > rho * float(grad_norm)  # by more than SAM's whole rise
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # lr 0: the weights never moved
